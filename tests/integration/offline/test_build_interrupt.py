"""Ctrl-C during ``mlray features build`` commits nothing (a real process, a real SIGINT)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import deltalake
import pytest
import ray

from mlray.config import Settings, load_settings

# The demo's user_activity view, its transform slowed down and announcing that it runs.
SLOW_REPO = """\
import dataclasses
import pathlib
import sys
import time

import ray.cloudpickle

from mlray.demo import features as demo

STARTED = pathlib.Path({marker!r})


def slow_user_activity(events):
    STARTED.touch()
    time.sleep(4)
    return demo.user_activity_transform(events)


user_activity = dataclasses.replace(demo.user_activity, transform=slow_user_activity)
# The cluster's workers cannot import this module: ship its code with the tasks.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
"""


def _commits(settings: Settings, view: str) -> list[str]:
    """The commit files of the view's Delta log."""
    return sorted(
        p.name for p in Path(settings.table_uri("features", view), "_delta_log").glob("*.json")
    )


@pytest.mark.timeout(300)
def test_ctrl_c_during_the_ray_work_of_a_build_commits_nothing(demo_root: Settings, tmp_path: Path):
    root = tmp_path / "data"
    shutil.copytree(demo_root.data_root, root)
    settings = load_settings(config_file=None, data_root=str(root))
    uri = settings.table_uri("features", "user_activity")
    version, log = deltalake.DeltaTable(uri).version(), _commits(settings, "user_activity")
    marker = tmp_path / "transform-started"
    (tmp_path / "slow_repo_interrupt.py").write_text(SLOW_REPO.format(marker=str(marker)))
    env = {k: v for k, v in os.environ.items() if k != "MLRAY_CONFIG"}
    env.update(
        MLRAY_DATA_ROOT=str(root),
        MLRAY_NUM_BUCKETS="4",
        MLRAY_FEATURE_REPO="slow_repo_interrupt",
        # Join the tests' cluster rather than start a second one.
        MLRAY_RAY__ADDRESS=ray.get_runtime_context().gcs_address,
        PYTHONPATH=os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")]),
    )
    start, end = "2026-01-01T00:00:00Z", "2026-01-11T00:00:00Z"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlray.cli", "features", "build", "--start", start, "--end", end],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the transform never ran"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert deltalake.DeltaTable(uri).version() == version
    assert _commits(settings, "user_activity") == log
    assert "nothing committed for user_activity" in output, output
