"""The retrain trigger's decisions: which breaches submit, the cooldown, dry runs, failures.

A small recording client stands in for Ray's JobSubmissionClient here; the real
submission to a real cluster is tests/integration/monitoring/test_monitor_job.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mlray.config import Settings, load_settings
from mlray.errors import BackendUnavailable, ConfigError
from mlray.monitoring.alerts import Alert
from mlray.monitoring.config import RetrainConfig
from mlray.monitoring.trigger import maybe_retrain, runtime_env, state_path, submission_address

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADDRESS = "http://127.0.0.1:8265"
DRIFT = Alert("feature_drift", "user_activity:ctr_7d", 0.31, 0.25, "breach", "PSI 0.31 >= 0.25")
STALE = Alert("freshness", "item_stats", 9000.0, 7200.0, "breach", "item_stats 2.5 h old")
WARN = Alert("score_drift", "score", 0.12, 0.1, "warn", "score PSI 0.12 >= 0.1")


class RecordingClient:
    """Records what it was asked to submit; answers job ids job-1, job-2, ..."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.addresses: list[str] = []
        self.fail = fail

    def __call__(self, address: str) -> RecordingClient:
        self.addresses.append(address)
        return self

    def submit_job(self, **kwargs: Any) -> str:
        if self.fail:
            raise RuntimeError("Request failed with status code 500: no agent")
        self.calls.append(kwargs)
        return f"job-{len(self.calls)}"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(config_file=None, data_root=str(tmp_path / "data"))


def cfg(**kw: Any) -> RetrainConfig:
    return RetrainConfig(address=ADDRESS, entrypoint="python -c 'print(1)'", cooldown_s=3600, **kw)


def test_no_breach_or_only_warnings_or_checks_not_in_on_submit_nothing(settings: Settings) -> None:
    client = RecordingClient()
    for alerts in ([], [WARN], [STALE]):  # freshness is not in retrain.on by default
        d = maybe_retrain(settings, cfg(), alerts, now=T0, client_for=client)
        assert d.action == "none" and d.job_id is None and d.triggers == []
    assert client.addresses == [] and client.calls == []
    assert not state_path(settings, cfg()).parent.exists()


def test_a_breach_submits_once_then_the_cooldown_holds_until_it_has_passed(
    settings: Settings,
) -> None:
    client = RecordingClient()
    first = maybe_retrain(settings, cfg(), [DRIFT, WARN], now=T0, client_for=client)
    assert first.action == "submitted" and first.job_id == "job-1" and first.submissions == 1
    assert first.triggers == ["feature_drift:user_activity:ctr_7d"]
    assert client.addresses == [ADDRESS]
    (call,) = client.calls
    assert call["entrypoint"] == "python -c 'print(1)'"
    assert call["runtime_env"]["env_vars"]["MLRAY_DATA_ROOT"] == str(
        Path(settings.data_root).resolve()
    )
    assert call["metadata"]["mlray.breaches"] == "feature_drift:user_activity:ctr_7d"
    state = json.loads(state_path(settings, cfg()).read_text())
    assert state["job_id"] == "job-1" and state["submitted_at"] == T0.isoformat()
    assert state["reason"] == "PSI 0.31 >= 0.25" and state["submissions"] == 1

    # 59 minutes later the same breach (or another) starts nothing.
    later = maybe_retrain(
        settings, cfg(), [DRIFT], now=T0 + timedelta(minutes=59), client_for=client
    )
    assert later.action == "cooldown" and later.job_id == "job-1"
    assert later.last_submitted_at == T0.isoformat() and "59 min ago" in later.reason
    assert len(client.calls) == 1

    # Once cooldown_s has passed, a breach submits again.
    after = maybe_retrain(settings, cfg(), [DRIFT], now=T0 + timedelta(hours=1), client_for=client)
    assert after.action == "submitted" and after.job_id == "job-2" and after.submissions == 2
    assert json.loads(state_path(settings, cfg()).read_text())["job_id"] == "job-2"


def test_dry_run_says_what_it_would_submit_and_writes_nothing(settings: Settings) -> None:
    client = RecordingClient()
    d = maybe_retrain(settings, cfg(), [DRIFT], dry_run=True, now=T0, client_for=client)
    assert d.action == "would_submit" and d.address == ADDRESS and d.job_id is None
    assert d.entrypoint == "python -c 'print(1)'" and d.runtime_env == runtime_env(cfg(), settings)
    assert client.addresses == [] and client.calls == []
    assert not Path(settings.data_root).exists()  # no state file, no lock file, no folder


def test_dry_run_within_the_cooldown_reports_the_cooldown(settings: Settings) -> None:
    client = RecordingClient()
    maybe_retrain(settings, cfg(), [DRIFT], now=T0, client_for=client)
    d = maybe_retrain(settings, cfg(), [DRIFT], dry_run=True, now=T0, client_for=client)
    assert d.action == "cooldown" and d.job_id == "job-1" and len(client.calls) == 1


def test_retrain_disabled_reports_the_breach_and_submits_nothing(settings: Settings) -> None:
    client = RecordingClient()
    d = maybe_retrain(settings, cfg(enabled=False), [DRIFT], now=T0, client_for=client)
    assert d.action == "disabled" and "PSI 0.31" in d.reason and client.calls == []


def test_a_refused_submission_raises_naming_the_address_and_records_nothing(
    settings: Settings,
) -> None:
    with pytest.raises(BackendUnavailable, match=r"cluster at 'http://127.0.0.1:8265' refused"):
        maybe_retrain(settings, cfg(), [DRIFT], now=T0, client_for=RecordingClient(fail=True))
    assert not state_path(settings, cfg()).exists()  # the next run tries again


def test_an_unreadable_state_file_is_a_config_error_naming_it(settings: Settings) -> None:
    path = state_path(settings, cfg())
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="retrain_state.json is not readable"):
        maybe_retrain(settings, cfg(), [DRIFT], now=T0, client_for=RecordingClient())


def test_address_comes_from_the_config_then_ray_address_then_fails_without_a_cluster(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert submission_address(cfg(), settings) == ADDRESS
    joined = load_settings(config_file=None, ray={"address": "10.0.0.5:6379"})
    assert submission_address(RetrainConfig(), joined) == "10.0.0.5:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    assert submission_address(RetrainConfig(), settings) == "10.0.0.9:6379"
    monkeypatch.delenv("RAY_ADDRESS")
    with pytest.raises(BackendUnavailable, match="set retrain.address"):
        submission_address(RetrainConfig(), settings)  # Ray is not running in unit tests


def test_a_remote_data_root_needs_a_state_file(tmp_path: Path) -> None:
    remote = load_settings(config_file=None, data_root="s3://bucket/mlray")
    with pytest.raises(ConfigError, match="set retrain.state_file"):
        state_path(remote, RetrainConfig())
    own = RetrainConfig(state_file=str(tmp_path / "state.json"))
    assert state_path(remote, own) == tmp_path / "state.json"
    assert runtime_env(own, remote)["env_vars"]["MLRAY_DATA_ROOT"] == "s3://bucket/mlray"


def test_jobs_monitor_yaml_spells_out_the_defaults_and_an_unquoted_on_key_parses() -> None:
    from mlray.monitoring.config import MonitorConfig, load_monitor_config

    path = Path(__file__).resolve().parents[3] / "jobs" / "monitor.yaml"
    assert "\n  on: [" in path.read_text()  # YAML 1.1 reads a bare `on` key as True
    assert load_monitor_config(path).model_dump() == MonitorConfig().model_dump()
