"""Serving under change: a promotion during a load, Redis killed and restarted, the GPU shape."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import redis
import requests
from serving_support import MODEL, Served, deploy, wait_for

from mlray.registry.tracking import registry_client
from mlray.registry.versions import set_alias

BODY = {"entities": {"user_id": 3, "item_id": 7}, "context": {"device": "mobile", "price": 19.9}}


@dataclass
class Load:
    """A bounded stream of /predict calls from a thread: (sent at, status, body or error)."""

    url: str
    max_requests: int = 2_000
    max_seconds: float = 40.0
    answers: list[tuple[float, int, dict]] = field(default_factory=list)
    received: list[float] = field(default_factory=list)  # when each answer came back
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + self.max_seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            if len(self.answers) >= self.max_requests:
                break
            sent = time.monotonic()
            try:
                r = session.post(f"{self.url}/predict", json=BODY, timeout=10)
                answer = (sent, r.status_code, r.json())
            except requests.RequestException as e:
                answer = (sent, 0, {"error": str(e)})
            self.received.append(time.monotonic())
            self.answers.append(answer)
            time.sleep(0.02)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def since(self, t: float) -> list[tuple[float, int, dict]]:
        return [a for a in self.answers if a[0] >= t]


@pytest.fixture
def reload_app(served: Served) -> Iterator[str]:
    from ray import serve

    client = registry_client(served.settings)
    yield deploy(served, name="reload", reload_interval_s=1.0, shadow=None)
    serve.delete("reload")
    set_alias(client, MODEL, "champion", "1")  # the other modules expect v1 as champion


def test_promotion_under_load_swaps_the_model_within_the_interval_without_a_failure(
    served: Served, reload_app: str
) -> None:
    client = registry_client(served.settings)
    with Load(reload_app) as load:
        wait_for(lambda: len(load.answers) >= 20, 20)
        promoted_at = time.monotonic()
        set_alias(client, MODEL, "champion", "2")
        wait_for(lambda: any(a[2].get("model_version") == "2" for a in load.answers), 15)
    assert load.answers and all(status == 200 for _, status, _ in load.answers), [
        a for a in load.answers if a[1] != 200
    ][:3]
    versions = [a[2]["model_version"] for a in load.answers]
    assert versions[0] == "1" and versions[-1] == "2"
    first_v2 = next(t for t, _, body in load.answers if body["model_version"] == "2")
    assert first_v2 - promoted_at < 1.0 + 2.0  # the poll interval, plus a load of the new version
    # Once swapped, never back: the swap is atomic.
    assert "1" not in versions[versions.index("2") :]


@dataclass
class RedisHandle:
    served: Served

    def kill(self) -> None:
        client = redis.Redis.from_url(self.served.redis.url)
        client.save()  # what a restart will load: the materialized features
        client.close()
        pid = self.served.redis.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.served.redis.running(), 5)

    def restart(self) -> None:
        self.served.redis.start()


@pytest.mark.parametrize("policy", ["degraded", "fail"])
def test_redis_down_applies_the_policy_within_the_bound_and_serving_recovers(
    served: Served, policy: str
) -> None:
    from ray import serve

    name = f"redis-{policy}"
    url = deploy(served, name=name, store_down=policy, store_retry_s=0.5, shadow=None)
    handle = RedisHandle(served)
    try:
        with Load(url) as load:
            # A steady state first: a slow store (over redis.timeout_s on a busy machine)
            # rightly answers degraded too, which is not what this test is about.
            wait_for(lambda: _clean_streak(load) >= 10, 30)
            # Answers received so far (one in flight at the kill may rightly be degraded).
            before = list(load.answers)[-10:]
            killed_at = time.monotonic()
            handle.kill()
            time.sleep(2.0)
            handle.restart()
            restarted_at = time.monotonic()
            wait_for(lambda: _healthy_since(load, restarted_at), 10)
            time.sleep(1.0)  # a little more traffic once recovered
        # Sent after the kill and answered before the restart: a slow replica may answer a
        # request sent while Redis was down after it is back, rightly from the store.
        during = [
            a
            for a, got in zip(load.answers, load.received, strict=True)
            if a[0] >= killed_at + 0.05 and got <= restarted_at
        ]
        assert before and all(a[1] == 200 and not a[2]["degraded"] for a in before)
        assert during, "no request was sent while Redis was down"
        if policy == "degraded":
            assert all(a[1] == 200 and a[2]["degraded"] for a in during)
            assert all(a[2]["missing_features"] for a in during)
        else:
            assert all(a[1] == 503 and "online store" in a[2]["detail"] for a in during)
        # Never a hang: every answer came back well within the client's timeout.
        gaps = [b[0] - a[0] for a, b in zip(load.answers, load.answers[1:], strict=False)]
        assert max(gaps) < 2.0
        first_ok = next(a[0] for a in load.answers if a[0] >= restarted_at and _ok(a))
        assert first_ok - restarted_at < 5.0
        after = load.since(first_ok)
        assert len(after) > 5 and all(_ok(a) for a in after), [
            (round(a[0] - first_ok, 3), a[1], a[2].get("degraded", a[2].get("detail")))
            for a in after
        ]
    finally:
        if not served.redis.running():
            handle.restart()
        serve.delete(name)


def _ok(answer: tuple[float, int, dict]) -> bool:
    return answer[1] == 200 and not answer[2].get("degraded", True)


def _clean_streak(load: Load) -> int:
    """How many answers in a row, up to the latest, were clean (200, not degraded)."""
    n = 0
    for a in reversed(list(load.answers)):
        if not _ok(a):
            break
        n += 1
    return n


def _healthy_since(load: Load, t: float) -> bool:
    return any(_ok(a) for a in load.since(t))


def test_the_model_deployment_shape_scores_like_the_inprocess_one(served: Served) -> None:
    from ray import serve

    url = deploy(
        served,
        name="gpu-shape",
        shape="model_deployment",
        shadow=None,
        model_deployment={"num_cpus": 0.25},
    )
    try:
        inproc = deploy(served, name="cpu-shape", shadow=None)
        bodies = [{**BODY, "entities": {"user_id": u, "item_id": 7}} for u in range(5)]
        got = requests.post(f"{url}/predict/batch", json={"requests": bodies}, timeout=10).json()
        ref = requests.post(f"{inproc}/predict/batch", json={"requests": bodies}, timeout=10).json()
        assert [p["score"] for p in got["predictions"]] == pytest.approx(
            [p["score"] for p in ref["predictions"]], abs=1e-6
        )
        assert {p["model_version"] for p in got["predictions"]} == {"1"}
    finally:
        serve.delete("gpu-shape")
        serve.delete("cpu-shape")


@pytest.mark.gpu
def test_the_model_deployment_runs_on_the_gpu(served: Served) -> None:
    from ray import serve

    url = deploy(
        served,
        name="on-gpu",
        shape="model_deployment",
        shadow=None,
        model_deployment={"num_gpus": 1, "num_cpus": 0.5},
    )
    try:
        info = requests.get(f"{url}/model", timeout=5).json()
        got = requests.post(f"{url}/predict", json=BODY, timeout=10)
        assert got.status_code == 200 and 0 < got.json()["score"] < 1
        assert info["model_version"] == "1"
    finally:
        serve.delete("on-gpu")
