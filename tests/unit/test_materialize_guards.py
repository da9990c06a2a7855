"""Materialize refuses what it cannot do well before any Ray work: a far-future end, a dead Redis.

Unit tests: ``ray.init`` raises here (tests/unit/conftest.py), so reaching Ray fails the test.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import deltalake
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from mlray.cli import app
from mlray.config import load_settings
from mlray.errors import BackendUnavailable, ConfigError
from mlray.features import Entity, FeatureRepository, FeatureView, Field
from mlray.offline.bucketing import BUCKET, with_bucket
from mlray.offline.delta_store import OfflineStore
from mlray.store.materialize import MAX_AHEAD, check_end_time, materialize

TS = pa.timestamp("us", tz="UTC")
VIEW = FeatureView(
    name="scores",
    entities=[Entity("user", ("user_id",))],
    ttl=timedelta(days=1),
    schema=[Field("score", pa.float64())],
)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}"  # nothing listens there once the socket is closed


@pytest.fixture
def settings(tmp_path):
    """Settings with a dead Redis and one offline table (written without Ray)."""
    s = load_settings(
        config_file=None, data_root=str(tmp_path / "data"), num_buckets=2, redis={"url": dead_url()}
    )
    now = datetime.now(UTC)
    rows = pa.table(
        {
            "user_id": pa.array([1, 2], pa.int64()),
            "event_time": pa.array([now, now], TS),
            "available_time": pa.array([now, now], TS),
            "score": [0.5, 0.7],
        },
        schema=VIEW.table_schema(),
    )
    prepared = with_bucket(rows, VIEW.join_keys, 2)
    offline = OfflineStore(s)
    deltalake.write_deltalake(
        offline.uri(VIEW),
        prepared,
        partition_by=[BUCKET],
        description='{"mlray_view": "scores", "num_buckets": 2}',
    )
    return s


def test_an_end_more_than_a_day_ahead_is_refused(settings):
    repo = FeatureRepository([VIEW], origin="tests")
    later = datetime.now(UTC) + MAX_AHEAD + timedelta(minutes=5)
    with pytest.raises(ConfigError, match=r"more than 1 day, 0:00:00 past now.*watermark"):
        materialize(settings, repo, later)
    with pytest.raises(ConfigError, match="past now"):
        materialize(settings, repo, later, incremental=True)
    with pytest.raises(ConfigError, match=r"more than 2:00:00 past now"):
        check_end_time(datetime.now(UTC) + timedelta(hours=3), timedelta(hours=2))
    soon = datetime.now(UTC) + timedelta(hours=23)
    assert check_end_time(soon) == (soon - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    )
    # A deliberate future end passes with a larger limit (then fails on the dead Redis).
    with pytest.raises(BackendUnavailable):
        materialize(settings, repo, later, max_ahead=timedelta(days=2))
    with pytest.raises(ConfigError, match="no time zone"):
        check_end_time(datetime(2026, 1, 1))


def test_a_dead_redis_is_reported_before_any_ray_work(settings):
    repo = FeatureRepository([VIEW], origin="tests")
    t0 = time.monotonic()
    for incremental in (False, True):
        with pytest.raises(BackendUnavailable, match="unreachable"):
            materialize(settings, repo, datetime.now(UTC), incremental=incremental)
    assert time.monotonic() - t0 < 5


def test_cli_refuses_a_far_future_end(tmp_path):
    runner = CliRunner(env={"MLRAY_DATA_ROOT": str(tmp_path / "data"), "COLUMNS": "200"})
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat().replace("+00:00", "Z")
    r = runner.invoke(app, ["materialize", "--end", later])
    assert r.exit_code == 2 and "ConfigError" in r.output and "watermark" in r.output, r.output
    r = runner.invoke(app, ["materialize", "--end", later, "--max-ahead-hours", "1"])
    assert r.exit_code == 2 and "more than 1:00:00 past now" in r.output, r.output
