"""One UTC-microsecond time type, one conversion each way, one TTL rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from mlray.errors import DefinitionError, SchemaError
from mlray.features import Entity, FeatureView, Field
from mlray.features.times import (
    TIMESTAMP,
    duration_us,
    epoch_us,
    to_datetime,
    to_us,
    ttl_to_us,
    utc_column,
)
from mlray.offline.pit_join import point_in_time_join


def test_datetimes_round_trip_exactly_and_naive_ones_are_refused():
    t = datetime(2026, 3, 1, 12, 30, 5, 123_456, tzinfo=UTC)
    assert to_datetime(to_us(t)) == t and to_datetime(None) is None
    assert to_us(t.astimezone(timezone(timedelta(hours=-5)))) == to_us(t)
    assert to_us(datetime(2300, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) % 1_000_000 == 1  # no float drift
    with pytest.raises(SchemaError, match="no time zone"):
        to_us(datetime(2026, 1, 1))


def test_columns_become_utc_microseconds():
    naive = pa.array([datetime(2026, 1, 1, 12)], pa.timestamp("s"))
    paris = utc_column(naive, "Europe/Paris")
    assert paris.type == TIMESTAMP and paris[0].as_py() == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert utc_column(naive, None)[0].as_py() == datetime(2026, 1, 1, 12, tzinfo=UTC)
    ms = pa.array([1_000], pa.timestamp("ms", tz="Asia/Tokyo"))
    assert epoch_us(ms).to_pylist() == [1_000_000] and epoch_us(naive).type == pa.int64()


def test_ttl_none_means_forever_and_zero_or_negative_is_refused():
    assert ttl_to_us(None, "x") is None
    assert ttl_to_us(timedelta(hours=1), "x") == 3_600_000_000 == duration_us(timedelta(hours=1))
    for bad in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(DefinitionError, match="'stats'.*ttl must be positive.*ttl=None"):
            ttl_to_us(bad, "feature view 'stats'")
    user = Entity("user", ("user_id",))
    view = FeatureView("stats", [user], [Field("a", pa.float64())], ttl=timedelta(minutes=2))
    assert view.ttl_us == 120_000_000
    assert FeatureView("forever", [user], [Field("a", pa.float64())]).ttl_us is None
    with pytest.raises(DefinitionError, match="feature view 'neg'.*ttl must be positive"):
        FeatureView("neg", [user], [Field("a", pa.float64())], ttl=timedelta(days=-1))


def test_point_in_time_join_follows_the_same_ttl_rule():
    # Refused before any Ray work (unit tests cannot start Ray).
    with pytest.raises(DefinitionError, match=r"point_in_time_join\(ttl=...\).*ttl=None"):
        point_in_time_join(
            None,
            None,
            entity_keys=["user_id"],
            label_time="t",
            feature_time="t",
            ttl=timedelta(0),
        )
