"""``MLRAY_*`` overrides that do not make sense are one ConfigError naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlray.config import load_settings
from mlray.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if k.startswith("MLRAY_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    "name,value,problem",
    [
        ("MLRAY_REDIS", "{bad", "expected ',' or '}', but got '<stream end>'"),
        ("MLRAY_STORAGE_OPTIONS", "{a: [1}", "expected ',' or ']', but got '}'"),
        ("MLRAY_NUM_BUCKETS", "[1", "expected ',' or ']', but got '<stream end>'"),
    ],
)
def test_a_value_that_is_not_yaml_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.message == (
        f"Environment variable {name}={value!r} starts with '{value[0]}', so it is read as "
        f"YAML, and it does not parse ({problem}). Write a complete YAML mapping or list, "
        "e.g. MLRAY_REDIS='{url: redis://localhost:6379, timeout_s: 1}', or set single keys "
        "with __, e.g. MLRAY_REDIS__URL=redis://localhost:6379."
    )


def test_a_key_inside_a_plain_value_is_a_config_error_naming_both(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("MLRAY_REDIS__URL", "redis://h:1")
    monkeypatch.setenv("MLRAY_REDIS", "redis://h:2")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.message == (
        "Environment variable MLRAY_REDIS__URL sets a key inside MLRAY_REDIS, which holds "
        "'redis://h:2' (not a mapping); unset one of them."
    )


@pytest.mark.parametrize("deep_first", [True, False])
def test_a_nested_variable_overrides_its_key_of_a_mapping_whatever_the_order(
    monkeypatch: pytest.MonkeyPatch, deep_first: bool
):
    pairs = [
        ("MLRAY_REDIS__URL", "redis://deep:1"),
        ("MLRAY_REDIS", "{url: redis://m:2, timeout_s: 3}"),
    ]
    for k, v in pairs if deep_first else pairs[::-1]:
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert (s.redis.url, s.redis.timeout_s) == ("redis://deep:1", 3.0)


def test_an_invalid_value_names_the_variable_that_set_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLRAY_RAY__NUM_CPUS", "many")
    monkeypatch.setenv("MLRAY_REDIS", "redis://h:1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.message == (
        "Invalid settings (from MLRAY_* environment): "
        "ray.num_cpus (from MLRAY_RAY__NUM_CPUS): Input should be a valid integer, unable to "
        "parse string as an integer; "
        "redis (from MLRAY_REDIS): Input should be a valid dictionary or instance of RedisConfig"
    )


def test_the_cli_reports_a_bad_variable_in_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    import tempfile

    from mlray.cli import app

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = CliRunner().invoke(app, ["features", "list"], env={"MLRAY_REDIS": "{bad"})
    assert r.exit_code == 2, r.output
    first, second = r.output.splitlines()
    assert first.startswith("ConfigError: Environment variable MLRAY_REDIS='{bad' starts with")
    assert second.startswith(f"full traceback: {tmp_path}/mlray-logs/error-")
