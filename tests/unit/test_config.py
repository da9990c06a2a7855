"""Settings: defaults, YAML file, env overrides, and errors that name the source."""

from pathlib import Path

import pytest

from mlray.config import load_settings
from mlray.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(__import__("os").environ):
        if k.startswith("MLRAY_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


def test_embedded_defaults():
    s = load_settings()
    assert s.data_root == "mlray-data" and s.redis.url is None and s.ray.address is None
    assert s.tracking_uri.startswith("sqlite:///") and s.tracking_uri.endswith(
        "mlray-data/mlflow.db"
    )


def test_yaml_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = tmp_path / "mlray.yaml"
    cfg.write_text("project: p1\nnum_buckets: 8\nredis:\n  key_prefix: fromfile\n  timeout_s: 2\n")
    assert load_settings().project == "p1"  # ./mlray.yaml is picked up
    monkeypatch.setenv("MLRAY_REDIS_URL", "redis://127.0.0.1:1")
    monkeypatch.setenv("MLRAY_NUM_BUCKETS", "32")
    s = load_settings(cfg, project="p3")
    assert (s.project, s.num_buckets, s.redis.url, s.redis.key_prefix, s.redis.timeout_s) == (
        "p3",
        32,
        "redis://127.0.0.1:1",
        "fromfile",
        2.0,
    )


def test_invalid_value_names_file_and_field(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("num_buckets: 0\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*num_buckets"):
        load_settings(cfg)


def test_unknown_key_and_zone_are_refused(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("nmu_buckets: 3\n")
    with pytest.raises(ConfigError, match="nmu_buckets"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_settings(default_timezone="Mars/Olympus")


def test_object_store_root_keeps_uri():
    s = load_settings(data_root="s3://bucket/mlray")
    assert s.table_uri("features", "v") == "s3://bucket/mlray/features/v"
