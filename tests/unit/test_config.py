"""Settings: defaults, YAML file, env overrides, and errors that name the source."""

from pathlib import Path

import pytest

from mlray.config import Settings, load_settings
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


def test_settings_and_load_settings_agree_on_env_only(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLRAY_REDIS_URL", "redis://h:1")
    monkeypatch.setenv("MLRAY_RAY__NUM_CPUS", "3")
    monkeypatch.setenv("MLRAY_STORAGE_OPTIONS", "{region: eu-west-1}")
    s = Settings()
    assert s == load_settings()
    assert (s.redis.url, s.ray.num_cpus, s.storage_options) == (
        "redis://h:1",
        3,
        {"region": "eu-west-1"},
    )


def test_settings_and_load_settings_agree_on_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    (tmp_path / "mlray.yaml").write_text("project: local\nredis:\n  key_prefix: f\n")
    assert Settings() == load_settings() and Settings().project == "local"
    other = tmp_path / "other.yaml"
    other.write_text("project: named\n")
    monkeypatch.setenv("MLRAY_CONFIG", str(other))
    assert Settings() == load_settings() == load_settings(other)
    assert Settings().project == "named"


def test_env_overrides_one_nested_key_of_the_file_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cfg = tmp_path / "mlray.yaml"
    cfg.write_text("project: p1\nredis:\n  url: redis://file:1\n  key_prefix: fromfile\n")
    monkeypatch.setenv("MLRAY_REDIS__URL", "redis://env:2")
    monkeypatch.setenv("MLRAY_PROJECT", "p2")
    s = Settings()
    assert s == load_settings() == load_settings(cfg)
    assert (s.project, s.redis.url, s.redis.key_prefix) == ("p2", "redis://env:2", "fromfile")
    assert Settings(project="p3") == load_settings(project="p3")
    assert Settings(project="p3").project == "p3"


def test_unknown_online_store_type_names_the_choices(tmp_path: Path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("redis:\n  type: memcached\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*redis\.type.*'memcached'.*'redis'"):
        load_settings(cfg)
    assert load_settings(redis={"type": "redis"}).redis.type == "redis"


def test_an_object_store_data_root_needs_a_tracking_server():
    s = load_settings(config_file=None, data_root="s3://bucket/mlray")
    with pytest.raises(ConfigError, match="set mlflow_tracking_uri"):
        _ = s.tracking_uri
    s = load_settings(
        config_file=None, data_root="s3://bucket/mlray", mlflow_tracking_uri="http://mlflow:5000"
    )
    assert s.tracking_uri == "http://mlflow:5000"
