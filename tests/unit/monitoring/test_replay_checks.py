"""``mlray replay``'s checks before Ray (log table, request id, feature names) and its time travel.

The replay itself (a join on Ray, a registered model) runs in
tests/integration/monitoring/test_skew_replay.py.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake
from typer.testing import CliRunner

from mlray.cli import app
from mlray.config import Settings, load_settings
from mlray.errors import NotFoundError
from mlray.features.repository import FeatureRepository
from mlray.features.times import to_us
from mlray.monitoring.replay import read_logged, replay, version_at
from mlray.serving.prediction_log import DeltaLogWriter, LogRow

T = datetime(2026, 3, 2, 10, tzinfo=UTC)
REPO = FeatureRepository.from_module("mlray.demo.features")


def row(rid: str, at: datetime, features: dict, score: float = 0.5) -> LogRow:
    return LogRow(
        request_id=rid,
        request_time_us=to_us(at),
        route="/predict",
        model_name="ctr_model",
        entities={"user_id": 1, "item_id": 2},
        context={"device": "mobile", "price": 10.0},
        features=features,
        feature_event_times={"user_activity": to_us(at - timedelta(hours=1))},
        missing_features=[],
        score=score,
        model_version="1",
        latency_ms=1.0,
        degraded=False,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = load_settings(config_file=None, data_root=str(tmp_path / "data"))
    DeltaLogWriter(s.table_uri("predictions", "predictions")).append(
        [
            row("a", T, {"user_activity__ctr_7d": 0.1}, 0.1),
            row("a", T + timedelta(minutes=5), {"user_activity__ctr_7d": 0.2}, 0.2),
            row("gone", T, {"old_view__feature": 1.0}),
        ]
    )
    return s


def test_a_missing_table_or_request_id_is_named(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="table 'elsewhere' does not exist"):
        read_logged(settings, "elsewhere", "a")
    with pytest.raises(NotFoundError, match="request id 'nope' in the log table 'predictions'"):
        read_logged(settings, "predictions", "nope")


def test_a_reused_request_id_replays_the_latest(settings: Settings) -> None:
    df, notes = read_logged(settings, "predictions", "a")
    assert len(df) == 1 and df["score"].iloc[0] == 0.2
    assert df["features"].iloc[0] == {"user_activity__ctr_7d": 0.2}
    assert notes == [
        "request id 'a' was logged 2 times (a reused X-Request-ID); replaying the latest."
    ]


def test_a_feature_no_definition_has_is_refused_before_ray(settings: Settings) -> None:
    # Unit tests refuse ray.init: reaching Ray (or the registry) would fail differently.
    with pytest.raises(
        NotFoundError, match=r"no definition .* has any more: \['old_view__feature'\]"
    ):
        replay(settings, "gone", repo=REPO)


def test_the_cli_reports_an_unknown_request_id_in_one_line_and_exits_2(settings: Settings) -> None:
    env = {"MLRAY_DATA_ROOT": settings.data_root, "MLRAY_CONFIG": None, "COLUMNS": "2000"}
    got = CliRunner().invoke(app, ["replay", "nope"], env=env)
    assert got.exit_code == 2, got.output
    first = got.output.strip().splitlines()[0]
    assert first.startswith("NotFoundError: No prediction with request id 'nope' in the log")
    assert "Traceback" not in got.output


def test_the_table_version_current_at_a_time(settings: Settings) -> None:
    uri = settings.table_uri("features", "user_activity")
    before = datetime.now(UTC) - timedelta(seconds=1)
    write_deltalake(uri, pa.table({"x": [1]}))
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    write_deltalake(uri, pa.table({"x": [2]}), mode="append")

    assert version_at(settings, REPO, "user_activity", between) == 0
    assert version_at(settings, REPO, "user_activity", datetime.now(UTC)) == 1
    with pytest.raises(NotFoundError, match="no offline table version committed by"):
        version_at(settings, REPO, "user_activity", before)
    with pytest.raises(NotFoundError, match="'item_stats' has no offline table"):
        version_at(settings, REPO, "item_stats", between)
