"""Incremental materialization sees late batches; a run whose rows all expired says why.

Real Ray, Delta and Redis.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from online_helpers import TS, make_view, repo_of
from test_materialize import offline_rows
from typer.testing import CliRunner

from mlray.cli import app
from mlray.store import FeatureStore


def _ingest(fs, view, rows, with_available=True):
    """``(user_id, event_time, available_time, score)`` rows; without the column if asked."""
    table = {
        "user_id": pa.array([r[0] for r in rows], pa.int64()),
        "event_time": pa.array([r[1] for r in rows], TS),
        "score": [r[3] for r in rows],
        "count": [1] * len(rows),
        "label": ["x"] * len(rows),
    }
    if with_available:
        table["available_time"] = pa.array([r[2] for r in rows], TS)
    fs.ingest(view, pa.table(table))


def test_incremental_picks_batches_ingested_after_the_watermark(online_settings):
    view = make_view("late", ttl=timedelta(days=30))
    fs = FeatureStore(online_settings, repo_of(view))
    t = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=5)
    end = (t + pd.Timedelta(hours=2)).to_pydatetime()
    _ingest(fs, view, [(1, t, t, 1.0), (2, t, t, 2.0)])
    first = fs.materialize_incremental(end)[0]
    assert (first.since, first.entities, first.written) == (None, 2, 2)
    # Late batches: visible at or before the watermark, so the visibility window misses them.
    m = pd.Timedelta(minutes=1)
    _ingest(fs, view, [(1, t + 60 * m, t + 60 * m, 1.5), (3, t + 30 * m, t + 90 * m, 3.0)])
    _ingest(fs, view, [(4, t + 20 * m, None, 4.0)], with_available=False)
    second = fs.materialize_incremental(end)[0]
    assert second.since == end
    assert (second.entities, second.written, second.unchanged) == (3, 3, 0)
    assert second.table_version == first.table_version + 2
    users = [{"user_id": u} for u in (1, 2, 3, 4)]
    online = fs.get_online_features(users, ["late:score"], request_time=end)
    labels = pd.DataFrame({"user_id": [1, 2, 3, 4], "event_time": end})
    offline = offline_rows(fs.get_training_data(labels, ["late:score"]), ["user_id"])
    assert (
        [r["late__score"] for r in online.rows]
        == [r["late__score"] for r in offline]
        == [1.5, 2.0, 3.0, 4.0]
    )
    # Nothing new since: a later run picks nobody.
    third = fs.materialize_incremental(end + timedelta(hours=1))[0]
    assert (third.since, third.entities) == (end, 0)


@pytest.fixture
def old_demo_config(demo_root, redis_url, tmp_path):
    """The session's January 2026 demo features, with this session's Redis."""
    path = tmp_path / "mlray.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data_root": str(demo_root.data_root),
                "project": "expired_cli",
                "num_buckets": 4,
                "redis": {"url": redis_url, "key_prefix": f"exp{os.getpid()}"},
            }
        )
    )
    return path


def test_materialize_says_why_everything_expired(old_demo_config):
    runner = CliRunner(env={"COLUMNS": "200"})
    config = ["-c", str(old_demo_config)]
    done = runner.invoke(
        app, ["materialize", "--end", "2026-01-11T00:00:00Z", "--view", "user_activity", *config]
    )
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    assert "user_activity: all " in text and "past the view's TTL of 8 days" in text, text
    assert "mlray demo generate" in text
    got = runner.invoke(
        app,
        ["features", "get", "--entity", "user_id=3", "--features", "user_activity:ctr_7d", *config],
    )
    assert got.exit_code == 0, got.output
    assert "user_activity: materialized, but no value was written" in " ".join(got.output.split())
    never = runner.invoke(
        app,
        ["features", "get", "--entity", "item_id=3", "--features", "item_stats:ctr_24h", *config],
    )
    assert "item_stats: never materialized" in " ".join(never.output.split()), never.output
