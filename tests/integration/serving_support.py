"""Serving fixtures: recent demo features in a Redis of our own, a champion and a challenger, Serve.

Shared by the serving and the monitoring tests: ``tests/integration/conftest.py``
registers the fixtures (one ``served`` per run), and tests import the helpers
(``deploy``, ``wait_for``, ``Served``...) from here.

The data ends in the future (online values expire by the wall clock), the
features are materialized as of now, and two pipeline runs register version 1
(champion) and version 2 (challenger). Serve runs in the session's Ray with
its HTTP proxy on a free port of 127.0.0.1; each test module deploys the
application it needs and deletes it (a graceful shutdown) at the end.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from mlray.config import Settings, load_settings
from mlray.online.embedded import EmbeddedRedis

MODEL = "ctr_model"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A trained, materialized data root and where Serve listens."""

    settings: Settings
    redis: EmbeddedRedis
    url: str
    end: datetime


@pytest.fixture(scope="session")
def serving_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server of the serving tests' own: the fault tests stop and restart it."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("serve-redis"))
    server.start()
    yield server
    server.stop(save=False)


@pytest.fixture(scope="session")
def served(
    tmp_path_factory: pytest.TempPathFactory, ray_session: None, serving_redis: EmbeddedRedis
) -> Iterator[Served]:
    """Demo data up to now, features built and materialized, champion v1 and challenger v2.

    Serve is up.
    """
    from ray import serve

    from mlray.demo.generate import generate_clickstream
    from mlray.pipeline import run_pipeline
    from mlray.store import FeatureStore
    from mlray.training.config import load_train_config

    root = tmp_path_factory.mktemp("serving") / "data"
    s = load_settings(
        config_file=None,
        data_root=str(root),
        num_buckets=4,
        project="serving",
        redis={"url": serving_redis.url, "key_prefix": f"serve{os.getpid()}"},
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    demo = generate_clickstream(
        s.raw_root,
        users=150,
        items=40,
        days=11,
        seed=5,
        progress=False,
        # Nine days before now: training starts once the views' 7-day windows are full
        # (labels.start_after_lookback), which leaves the last two days before now to train on.
        start=hour - timedelta(days=9),
    )
    fs = FeatureStore(s)
    fs.build_features(demo.start, demo.end)
    fs.materialize(datetime.now(UTC))
    fs.close()
    body = {
        "experiment": "it-serving",
        "tune": {"num_samples": 0},
        "training": {"epochs": 1, "batch_size": 256},
        "labels": {"end": hour.isoformat()},
    }
    run_pipeline(s, load_train_config(None, **body), echo=lambda line: None)
    body["promotion"] = {"margin": 0.5}  # no retrain beats the champion by that: a challenger
    run_pipeline(s, load_train_config(None, **body), echo=lambda line: None)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield Served(s, serving_redis, f"http://127.0.0.1:{port}", hour)
    serve.shutdown()


def deploy(served: Served, name: str = "mlray", **args: Any) -> str:
    """Run the serving app with ``args`` (small CPU reservations); wait until /healthz says ok."""
    from ray import serve

    from mlray.serving.app import build_app

    body = {
        "model_name": MODEL,
        "ingress_cpus": 0.25,
        "settings": {
            "data_root": served.settings.data_root,
            "project": served.settings.project,
            "num_buckets": 4,
            "redis": served.settings.redis.model_dump(),
        },
        **args,
    }
    serve.run(build_app(body), name=name, route_prefix=f"/{name}" if name != "mlray" else "/")
    url = served.url + ("" if name == "mlray" else f"/{name}")
    wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).status_code == 200, 60)
    return url


def wait_for(check: Any, timeout_s: float, every_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - not ready yet
            last = e
        time.sleep(every_s)
    raise TimeoutError(f"not ready after {timeout_s} s (last error: {last})")
