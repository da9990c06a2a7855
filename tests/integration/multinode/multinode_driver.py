"""Driver of the multi-node checks: a two-node Ray cluster on loopback, the steps, JSON out.

    python multinode_driver.py IN.json OUT.json

The head ``node_a`` (with the GCS, the dashboard, the Serve controller and
this driver) and a worker node ``node_b``, 3 CPUs each, run as
``ray.cluster_utils.Cluster`` processes on 127.0.0.1. The steps are
:mod:`multinode_steps`'s, the same the pytest process runs on one node;
per step the driver records the nodes its tasks and actors ran on (Ray's
state API), so a test can tell the work was spread.

It runs in a process of its own because the pytest process is the driver of
the test session's shared single-node Ray, and a process drives one cluster.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import multinode_steps as steps
import requests
import yaml

BIN = Path(sys.executable).parent
NODE_CPUS = 3  # one 2-CPU train worker per node, and 1 CPU left for Ray Data
STORE_MB = 300 * 2**20
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(temp_dir: str) -> tuple[Any, str, dict[str, str]]:
    """The head (``node_a``) and a worker node (``node_b``).

    Returns the cluster, its dashboard URL and the node name per node id.
    """
    import ray
    from ray.cluster_utils import Cluster

    dash = free_port()
    # Ray Train's placement-group cleaner and the state API find this cluster's dashboard by
    # it, never another Ray on the machine (the pytest session's); node processes inherit it.
    os.environ["RAY_API_SERVER_ADDRESS"] = f"http://127.0.0.1:{dash}"
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": NODE_CPUS,
            "resources": {"node_a": 1},
            "node_ip_address": "127.0.0.1",
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": dash,
            "dashboard_agent_listen_port": free_port(),
            "ray_client_server_port": free_port(),
            "object_store_memory": STORE_MB,
            "temp_dir": temp_dir,
        },
    )
    cluster.add_node(
        num_cpus=NODE_CPUS,
        resources={"node_b": 1},
        node_ip_address="127.0.0.1",
        object_store_memory=STORE_MB,
    )
    cluster.wait_for_nodes(timeout=60)
    ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    names = {
        n["NodeID"]: next(r for r in ("node_a", "node_b") if r in n["Resources"])
        for n in ray.nodes()
        if n["Alive"]
    }
    return cluster, f"http://127.0.0.1:{dash}", names


def timed(windows: dict[str, tuple[float, float]], name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn``, remembering the wall-clock window (ms) its tasks started in."""
    started = time.time() * 1000
    try:
        return fn()
    finally:
        windows[name] = (started, time.time() * 1000)


def task_nodes(windows: dict[str, tuple[float, float]], names: dict[str, str]) -> dict[str, Any]:
    """Per step: the nodes its normal tasks ran on and how many tasks each, from the state API.

    Task events reach the GCS within about a second; the listing is retried until
    every step's tasks are listed (at most 20 s).
    """
    from ray.util.state import list_tasks

    deadline = time.monotonic() + 20
    while True:
        tasks = list_tasks(
            filters=[("type", "=", "NORMAL_TASK")],
            detail=True,
            limit=10_000,
            raise_on_missing_output=False,
        )
        per_step: dict[str, dict[str, int]] = {}
        for t in tasks:
            start = t.start_time_ms or 0
            for step, (lo, hi) in windows.items():
                if lo <= start <= hi and t.node_id:
                    node = names.get(t.node_id, t.node_id)
                    counts = per_step.setdefault(step, {})
                    counts[node] = counts.get(node, 0) + 1
        if set(per_step) >= set(windows) or time.monotonic() > deadline:
            return per_step
        time.sleep(1)


def actor_nodes(class_name: str, names: dict[str, str], alive: bool = False) -> list[str]:
    """The node name of every actor of ``class_name`` (dead ones too unless ``alive``)."""
    from ray.util.state import list_actors

    filters: list[tuple[str, str, str | bool | int | float]] = [("class_name", "=", class_name)]
    if alive:
        filters.append(("state", "=", "ALIVE"))
    actors = list_actors(filters=filters, limit=1000, raise_on_missing_output=False)
    return sorted(names.get(a.node_id or "", str(a.node_id)) for a in actors)


def serve_check(cfg: dict[str, Any], dashboard: str, names: dict[str, str]) -> dict[str, Any]:
    """``serve deploy`` of the adapted production config; requests over HTTP; replica nodes."""
    body = steps.cpu_production_config(
        free_port(), cfg["serve_settings"], yaml.safe_load(steps.PRODUCTION.read_text())
    )
    path = Path(cfg["work"]) / "production-cpu.yaml"
    path.write_text(yaml.safe_dump(body))
    done = subprocess.run(
        [str(BIN / "serve"), "deploy", str(path), "--address", dashboard],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        return {"deploy_rc": done.returncode, "deploy_err": done.stderr[-3000:]}
    url = f"http://127.0.0.1:{body['http_options']['port']}"
    health = wait_healthy(url, 150)
    answers = []
    for i, request in enumerate(cfg["requests"]):
        got = requests.post(
            f"{url}/predict", json=request, headers={"X-Request-ID": f"mn-{i}"}, timeout=30
        )
        answers.append({"status": got.status_code, "body": got.json()})
    return {
        "deploy_rc": 0,
        "health": health,
        "answers": answers,
        "model": requests.get(f"{url}/model", timeout=10).json(),
        "ingress_nodes": actor_nodes("ServeReplica:mlray:Ingress", names, alive=True),
        "model_nodes": actor_nodes("ServeReplica:mlray:ModelDeployment", names, alive=True),
        "proxy_nodes": actor_nodes("ProxyActor", names, alive=True),
    }


def wait_healthy(url: str, timeout_s: float) -> int:
    """Poll ``/healthz`` until it answers 200 (at most ``timeout_s``); the last status."""
    deadline, status = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        try:
            status = requests.get(f"{url}/healthz", timeout=2).status_code
        except requests.RequestException:
            status = 0
        if status == 200:
            break
        time.sleep(0.5)
    return status


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Every step on the cluster; the results, the nodes each step used and its seconds."""
    from mlray.config import load_settings

    settings = load_settings(config_file=None, **cfg["settings"])
    end = datetime.fromisoformat(cfg["end"])
    online = steps.online_settings(settings, cfg["redis_url"], cfg["prefix"])
    started = time.monotonic()
    cluster, dashboard, names = start_cluster(cfg["temp_dir"])
    out: dict[str, Any] = {"nodes": sorted(names.values()), "seconds": {}}
    out["seconds"]["cluster_start"] = time.monotonic() - started
    windows: dict[str, tuple[float, float]] = {}
    steps_to_run: list[tuple[str, Callable[[], Any]]] = [
        ("pit_join", steps.pit_join_result),
        ("training_data", lambda: steps.training_data_result(settings, end)),
        ("materialize", lambda: steps.materialize_result(online, end)),
        ("train", lambda: train_step(cfg, settings, end, names)),
    ]
    try:
        for name, fn in steps_to_run:
            record(out, name, partial(timed, windows, name, fn))
        out["task_nodes"] = task_nodes(windows, names)
        record(out, "serve", lambda: serve_check(cfg, dashboard, names))
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    return out


def record(out: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    """``out[name] = fn()`` and its seconds; a failure's traceback in ``out["errors"]``."""
    t0 = time.monotonic()
    try:
        out[name] = fn()
    except Exception:  # noqa: BLE001 - recorded for the test that checks this step
        out.setdefault("errors", {})[name] = traceback.format_exc()
    out["seconds"][name] = time.monotonic() - t0


def train_step(
    cfg: dict[str, Any], settings: Any, end: datetime, names: dict[str, str]
) -> dict[str, Any]:
    """Two Ray Train workers of 2 CPUs: one fits per worker node; where they ran."""
    result = steps.train_result(
        settings, steps.train_config(2, 2, end), Path(cfg["work"]) / "ray_results", "multinode"
    )
    return {**result, "worker_nodes": actor_nodes("RayTrainWorker", names)}


def main() -> None:
    # On Linux Ray turns a loopback address into the host's other IP before it connects, while
    # nodes started on 127.0.0.1 listen there only: this keeps every address on loopback.
    # Set before Ray is imported (it reads it once); the nodes inherit it.
    os.environ[LOOPBACK_ONLY] = "0"
    cfg = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run(cfg), indent=1, default=str))


if __name__ == "__main__":
    main()
