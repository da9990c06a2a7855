"""A real ``ray start --head`` of a test's own, on free loopback ports, stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ray_head(temp_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start the head (2 CPUs, auth off); yield its dashboard address once it answers.

    Every port is a free one (GCS, dashboard, dashboard agent, Ray Client), so the
    head never collides with another Ray on the machine.
    """
    dash = free_port()
    ports = {
        "--port": free_port(),
        "--dashboard-port": dash,
        "--dashboard-agent-listen-port": free_port(),
        "--ray-client-server-port": free_port(),
    }
    proc = subprocess.Popen(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--block",
            *[f"{flag}={port}" for flag, port in ports.items()],
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            "--num-cpus=2",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env={**(env or os.environ), "RAY_AUTH_MODE": "disabled"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.monotonic() + 90
        while not _answers(address):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise TimeoutError(f"ray start --head did not answer at {address} within 90 s")
            time.sleep(0.5)
        yield address
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)  # a head that ran jobs ignores SIGTERM for ~30 s: a test cluster
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what `ray stop` left behind in the group


def _answers(address: str) -> bool:
    try:
        return requests.get(f"{address}/api/jobs/", timeout=2).ok
    except requests.RequestException:
        return False
