"""Multi-node fixtures: one run of ``multinode_driver.py`` on a two-node loopback cluster.

The data is the serving tests' (``served``: demo tables up to now, a champion
and a challenger in MLflow), read only; materialization writes to a Redis of
this module's own and the prediction log to a table of its own. The
single-node references run the same steps (:mod:`multinode_steps`) on the test
session's Ray, while the driver runs (two cores: much of either run is waiting
on process start-up).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import multinode_steps as steps
import pytest
from multinode_steps import MULTI, REQUESTS, settings_args
from serving_support import Served

from mlray.config import load_settings
from mlray.online.embedded import EmbeddedRedis

HERE = Path(__file__).resolve().parent
DRIVER_TIMEOUT_S = 400


@pytest.fixture(scope="module")
def mn_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server both materializations write to, each under its own key prefix."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("mn-redis"))
    server.start()
    yield server
    server.stop(save=False)


@dataclass
class Driver:
    """The running ``multinode_driver.py`` and where it writes."""

    proc: subprocess.Popen[bytes]
    work: Path


@pytest.fixture(scope="module")
def driver(
    served: Served, mn_redis: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Driver]:
    """``multinode_driver.py`` started in the background (the references run meanwhile)."""
    work = tmp_path_factory.mktemp("multinode")
    # Ray's socket paths must stay under 107 bytes: a short temp dir of our own.
    temp_dir = tempfile.mkdtemp(prefix="mn", dir="/tmp")
    cfg = {
        "settings": settings_args(served.settings),
        "serve_settings": settings_args(served.settings),
        "end": served.end.isoformat(),
        "redis_url": mn_redis.url,
        "prefix": MULTI,
        "temp_dir": temp_dir,
        "work": str(work),
        "requests": REQUESTS,
    }
    (work / "in.json").write_text(json.dumps(cfg))
    with open(work / "driver.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "multinode_driver.py"), "in.json", "out.json"],
            cwd=work,
            env={**os.environ, "RAY_AUTH_MODE": "disabled"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Driver(proc, work)
    finally:
        if proc.poll() is None:  # a failed test stopped waiting: the cluster goes too
            os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def single_node(
    driver: Driver, served: Served, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The steps on the test session's single-node Ray, while the driver runs its cluster.

    Materialization is not among them: its reference runs after the cluster's (see its test).
    """
    settings = load_settings(config_file=None, **settings_args(served.settings))
    return {
        "pit_join": steps.pit_join_result(),
        "training_data": steps.training_data_result(settings, served.end),
        "train": steps.train_result(
            settings,
            steps.train_config(2, 1, served.end),
            tmp_path_factory.mktemp("single-train"),
            "single",
        ),
    }


@pytest.fixture(scope="module")
def cluster_run(driver: Driver, single_node: dict[str, Any]) -> dict[str, Any]:
    """The driver's JSON: every step's result on the cluster and the nodes it ran on."""
    try:
        rc = driver.proc.wait(timeout=DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        rc = None
    log = (driver.work / "driver.log").read_text(errors="replace")
    assert rc == 0, f"multinode_driver.py exited with {rc}:\n{log[-4000:]}"
    out: dict[str, Any] = json.loads((driver.work / "out.json").read_text())
    print(f"multinode driver seconds: {out['seconds']}")  # shown with -s / -rP
    return out
