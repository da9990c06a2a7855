"""When a training set may start: every joined view's first source event plus its lookback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from mlray.config import load_settings
from mlray.demo import features as demo
from mlray.demo.generate import generate_clickstream
from mlray.features import Entity, FeatureView, Field
from mlray.offline.lookback import lookback_filled
from mlray.training.config import TrainConfig

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_latest_first_event_plus_lookback_of_the_views_wins(tmp_path: Path):
    settings = load_settings(config_file=None, data_root=str(tmp_path))
    generate_clickstream(settings.raw_root, users=30, items=10, days=2, seed=3, progress=False)
    first = DeltaTable(settings.table_uri("raw", "impressions")).to_pyarrow_table(
        columns=["event_time"]
    )
    first_event = min(first.column("event_time").to_pylist())
    filled = lookback_filled(settings, [demo.item_catalog, demo.user_activity, demo.item_stats])
    assert filled is not None
    # user_activity and item_stats read the same source with the same lookback: the first wins.
    assert (filled.view, filled.first_event, filled.lookback) == (
        "user_activity",
        first_event,
        timedelta(days=7, hours=1),
    )
    assert filled.start == first_event + timedelta(days=7, hours=1)
    assert "needs 7 days, 1:00:00 of history" in filled.describe()
    # The catalog has no lookback: it sets nothing.
    assert lookback_filled(settings, [demo.item_catalog]) is None


def test_a_view_without_a_source_table_uses_its_offline_table(tmp_path: Path):
    settings = load_settings(config_file=None, data_root=str(tmp_path))
    view = FeatureView(
        name="scores",
        entities=[Entity("user", ("user_id",))],
        schema=[Field("score", pa.float64())],
        lookback=timedelta(days=2),
    )
    assert lookback_filled(settings, [view]) is None  # no rows anywhere yet
    times = [START + timedelta(hours=5), START + timedelta(hours=3)]
    write_deltalake(
        settings.table_uri("features", "scores"),
        pa.table(
            {
                "user_id": [1, 2],
                "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
                "score": [0.1, 0.2],
            }
        ),
    )
    filled = lookback_filled(settings, [view])
    assert filled is not None and filled.start == START + timedelta(days=2, hours=3)


def test_training_sets_start_after_the_lookback_by_default():
    assert TrainConfig().labels.start_after_lookback is True
    off = TrainConfig.model_validate({"labels": {"start_after_lookback": False}})
    assert off.labels.start_after_lookback is False
