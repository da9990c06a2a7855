"""The README's ``ray job submit`` commands against a real ``ray start --head`` of their own.

The jobs run in Ray's uploaded copy of the working directory, so the data
root goes in as an absolute path through the runtime env; a relative one is
refused with the fix in the message.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlray.config import Settings, load_settings
from mlray.demo.generate import GenerateSummary, generate_clickstream
from mlray.online.embedded import EmbeddedRedis, embedded_dir
from mlray.store import FeatureStore

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The head's processes (and so the jobs' `python`) find the test's interpreter first.
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def head(ray_head_address: str) -> str:
    """The shared ``ray start --head`` on free loopback ports (conftest); its dashboard address."""
    return ray_head_address


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, GenerateSummary]]:
    """Raw demo tables under an absolute data root; its embedded Redis stopped at the end."""
    root = tmp_path_factory.mktemp("jobs") / "data"
    settings = load_settings(config_file=None, data_root=str(root), num_buckets=4)
    summary = generate_clickstream(
        settings.raw_root, users=120, items=30, days=3, seed=5, progress=False
    )
    yield settings, summary
    EmbeddedRedis(embedded_dir(settings)).stop(save=False)


def submit(head: str, data_root: str, *entrypoint: str) -> subprocess.CompletedProcess[str]:
    """The README's command: ``ray job submit --address ... --working-dir . --runtime-env-json``."""
    env_vars = {"MLRAY_DATA_ROOT": data_root, "MLRAY_NUM_BUCKETS": "4"}
    cmd = [
        str(BIN / "ray"),
        "job",
        "submit",
        "--address",
        head,
        "--working-dir",
        ".",
        "--runtime-env-json",
        json.dumps({"env_vars": env_vars}),
        "--",
        "python",
        *entrypoint,
    ]
    for _ in range(10):
        done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=180)
        if "No available agent" not in done.stdout + done.stderr:  # the agent is still starting
            return done
        time.sleep(2)
    return done


def test_submitted_jobs_build_and_materialize_the_features_under_the_given_data_root(
    head: str, demo: tuple[Settings, GenerateSummary]
) -> None:
    import deltalake

    settings, summary = demo
    window = ["--start", summary.start.isoformat(), "--end", summary.end.isoformat()]
    views = sorted(FeatureStore(settings).repo.views)

    refused = submit(head, "mlray-data", "jobs/build_features.py", *window)
    assert refused.returncode != 0
    assert "ConfigError: data_root 'mlray-data' is relative" in refused.stdout

    built = submit(head, settings.data_root, "jobs/build_features.py", *window)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    for view in views:
        table = deltalake.DeltaTable(settings.table_uri("features", view))
        assert table.version() == 0 and table.to_pyarrow_table().num_rows > 0
        assert f"{view}: " in built.stdout

    done = submit(head, settings.data_root, "jobs/materialize.py", "--end", window[3])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    fs = FeatureStore(settings)
    try:
        fresh = {f.view: f for f in fs.online_freshness(now=summary.end)}
        # Demo rows lie in the past, so Redis may have expired most of them by now:
        # the per-view state the job wrote is what shows it ran against this data root.
        assert sorted(fresh) == views
        assert all(f.watermark == summary.end and f.table_version == 0 for f in fresh.values())
        assert fresh["item_catalog"].last_applied == 30  # one row per item
    finally:
        fs.close()
