"""Commands join the cluster ``ray.address`` names before any Ray Data work, or fail fast.

Each command runs in a process of its own (this process already has Ray up);
the address is a closed port, so joining fails: within seconds, naming it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mlray.config import Settings

BIN = Path(sys.executable).parent


def closed_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    "command",
    [
        ["training-set", "--labels", "impressions", "--features", "ctr_model_v1"],
        ["features", "build", "--start", "2026-01-02T00:00:00Z", "--end", "2026-01-03T00:00:00Z"],
    ],
    ids=["training-set", "features-build"],
)
def test_a_command_with_a_dead_ray_address_fails_fast_naming_it(
    demo_root: Settings, tmp_path: Path, command: list[str]
) -> None:
    address = closed_address()
    config = tmp_path / "mlray.yaml"
    config.write_text(
        yaml.safe_dump(
            {"data_root": demo_root.data_root, "num_buckets": 4, "ray": {"address": address}}
        )
    )
    if command[0] == "training-set":
        command = [*command, "--out", str(tmp_path / "ts")]
    env = {**os.environ, "COLUMNS": "300"}
    env.pop("RAY_ADDRESS", None)
    t0 = time.monotonic()
    done = subprocess.run(
        [str(BIN / "mlray"), *command, "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out[-3000:]
    assert f"BackendUnavailable: Cannot join the Ray cluster at ray.address '{address}'" in out
    assert time.monotonic() - t0 < 40  # process start-up and imports included
    assert not (tmp_path / "ts").exists()
