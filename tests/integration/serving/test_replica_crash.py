"""A killed ingress replica loses at most its own buffer of log rows, and Serve brings it back."""

from __future__ import annotations

import os
import signal
import time

import deltalake
import psutil
import requests
from serving_support import Served, deploy, wait_for

BODY = {"entities": {"user_id": 4, "item_id": 9}, "context": {"device": "desktop", "price": 12.5}}
BATCH_ROWS = 16  # the replica's buffer: rows held before they go to the committer


def ingress_pid(app: str) -> int | None:
    """The pid of the app's one ingress replica (its title: ``ray::ServeReplica:APP:Ingress``)."""
    title = f"ServeReplica:{app}:Ingress"
    pids = []
    for p in psutil.process_iter(["cmdline"]):
        if title in " ".join(p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE:
            pids.append(p.pid)
    assert len(pids) <= 1, pids
    return pids[0] if pids else None


def send(url: str, tag: str, n: int) -> list[str]:
    """``n`` sequential /predict calls with request ids ``tag-i``; every one must answer 200."""
    ids = []
    for i in range(n):
        rid = f"{tag}-{i}"
        r = requests.post(f"{url}/predict", json=BODY, headers={"X-Request-ID": rid}, timeout=10)
        assert r.status_code == 200 and r.json()["request_id"] == rid, r.text
        ids.append(rid)
    return ids


def test_a_killed_replica_loses_at_most_its_buffer_and_serving_comes_back(
    served: Served,
) -> None:
    from ray import serve

    name = "crash"
    # Rows leave the replica at BATCH_ROWS or after 0.3 s; the committer holds them 60 s.
    url = deploy(
        served,
        name=name,
        shadow=None,
        log={
            "replica_batch_rows": BATCH_ROWS,
            "replica_flush_s": 0.3,
            "commit_interval_s": 60,
            "table": "crash_log",
        },
    )
    try:
        settled = send(url, "settled", 40)  # older than replica_flush_s at the kill: handed off
        time.sleep(1.0)
        at_risk = send(url, "at-risk", 10)  # may still sit in the replica's buffer
        pid = ingress_pid(name)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: ingress_pid(name) not in (pid, None), 60, every_s=0.5)
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).status_code == 200, 60)
        after = send(url, "after", 20)
    finally:
        serve.delete(name)  # graceful: the new replica and the committer flush what they hold
    table = deltalake.DeltaTable(served.settings.table_uri("predictions", "crash_log"))
    logged = table.to_pyarrow_table(columns=["request_id"]).column("request_id").to_pylist()
    assert len(logged) == len(set(logged)), "a row was logged twice"
    got = set(logged)
    assert set(settled) <= got, sorted(set(settled) - got)
    assert set(after) <= got, sorted(set(after) - got)
    lost = set(at_risk) - got
    assert len(lost) <= BATCH_ROWS
    assert got <= set(settled) | set(at_risk) | set(after)
