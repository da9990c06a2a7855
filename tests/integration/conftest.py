"""Integration fixtures: one real local Ray session for the whole run, real Delta in tmp dirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlray.config import Settings, load_settings


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """A local Ray with 2 CPUs shared by every integration test, shut down at the end."""
    import ray.data

    ray.init(
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
