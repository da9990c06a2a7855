"""Integration fixtures: one real local Ray session for the whole run, real Delta in tmp dirs.

Tests that submit Ray jobs share one real ``ray start --head`` (``ray_head_address``):
they run back to back, and the head is stopped after the last of them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ray_head import ray_head
from serving_support import served, serving_redis  # noqa: F401 - session fixtures, shared

from mlray.config import Settings, load_settings

HEAD_FIXTURE = "ray_head_address"
# The head's processes (and so the jobs' `python`) find the test's interpreter first.
HEAD_ENV = {
    **os.environ,
    "RAY_AUTH_MODE": "disabled",
    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
}


class _SharedHead:
    """One ``ray start --head``: started on first use, stopped after its last test."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self._address: str | None = None

    def start(self, temp_dir: Path) -> str:
        if self._address is None:
            self._stack = contextlib.ExitStack()
            self._address = self._stack.enter_context(ray_head(temp_dir, HEAD_ENV))
        return self._address

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._address = None


_HEAD = _SharedHead()


@pytest.fixture(scope="session")
def ray_head_address(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> str:
    """The dashboard address of the shared ``ray start --head`` (free loopback ports, 2 CPUs)."""
    request.addfinalizer(_HEAD.stop)  # in case the run ends before its last test
    return _HEAD.start(tmp_path_factory.mktemp("ray-head"))


def _uses_head(item: pytest.Item | None) -> bool:
    return item is not None and HEAD_FIXTURE in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the shared head run back to back, where the last of them was."""
    users = [i for i in items if _uses_head(i)]
    if len(users) < 2:
        return
    others = [i for i in items if not _uses_head(i)]
    at = sum(1 for i in items[: items.index(users[-1])] if not _uses_head(i))
    items[:] = others[:at] + users + others[at:]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared head once the next test does not use it (none later does)."""
    if _uses_head(item) and not _uses_head(nextitem):
        _HEAD.stop()


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray with 2 CPUs shared by every integration test, shut down at the end."""
    import ray.data

    ray.init(
        address="local",  # always its own cluster, even when another runs on this machine
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        object_store_memory=1_500_000_000,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    ray.data.DataContext.get_current().raise_original_map_exception = True
    yield
    ray.shutdown()


@pytest.fixture
def settings(tmp_path: Path, ray_session: None) -> Settings:
    """Settings with a fresh data root (Delta tables, MLflow SQLite) under tmp_path."""
    return load_settings(config_file=None, data_root=str(tmp_path / "data"), num_buckets=4)


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory, ray_session: None) -> Settings:
    """A small demo click stream, features built once for the session (read-only for tests)."""
    from mlray.demo.generate import generate_clickstream
    from mlray.store import FeatureStore

    root = tmp_path_factory.mktemp("demo")
    s = load_settings(config_file=None, data_root=str(root / "data"), num_buckets=4)
    summary = generate_clickstream(s.raw_root, users=300, items=60, days=10, seed=7, progress=False)
    FeatureStore(s).build_features(summary.start, summary.end)
    return s
