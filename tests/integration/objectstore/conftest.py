"""Object-store fixtures: one S3-compatible server (moto's server mode) on 127.0.0.1 per session.

The server runs as a child process (``python -m moto.server``), so its request handling
never competes with the test's own Python for the GIL; it keeps everything in memory and
serves S3 conditional puts (``If-None-Match``), which deltalake's commits rely on.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pyarrow.fs as pafs
import pytest
import requests
from objectstore_support import BUCKET, s3_options

from mlray.config import Settings, load_settings
from mlray.offline.filesystems import s3_filesystem_args

_NAMES = itertools.count()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> bool:
    """Whether the server at ``url`` answers HTTP before it exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return True
        except requests.ConnectionError:
            time.sleep(0.1)
    return False


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server holding the bucket :data:`BUCKET`."""
    for _ in range(3):  # another process may take the free port before the server binds it
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        if _answers(url, proc):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail("The moto S3 server did not start on 127.0.0.1 (python -m moto.server).")
    args = s3_filesystem_args(s3_options(url))
    pafs.S3FileSystem(**args, allow_bucket_creation=True).create_dir(BUCKET)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_settings(s3_endpoint: str, ray_session: None) -> Settings:
    """Settings whose data root is a fresh prefix of the bucket on the moto server."""
    return load_settings(
        config_file=None,
        data_root=f"s3://{BUCKET}/t{next(_NAMES)}/data",
        num_buckets=4,
        storage_options=s3_options(s3_endpoint),
    )
