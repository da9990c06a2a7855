"""The prediction log's rows as Arrow, and appends to a Delta table partitioned by day."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import deltalake
import numpy as np

from mlray.serving.prediction_log import SCHEMA, DeltaLogWriter, LogRow, to_table

# 23:30 on 1 March at UTC-5 is 04:30 on 2 March in UTC: the day is the UTC one.
LATE = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
NOON = datetime(2026, 3, 3, 12, tzinfo=UTC)


def us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def row(request_id: str, t: datetime = LATE, **kw: object) -> LogRow:
    values: dict = {
        "request_id": request_id,
        "request_time_us": us(t),
        "route": "/predict",
        "model_name": "ctr_model",
        "entities": {"user_id": 3, "item_id": 7},
        "context": {"device": "mobile", "price": 19.9},
        "features": {"user_activity__ctr_7d": np.float32(0.25), "item_catalog__category": "toys"},
        "feature_event_times": {"user_activity": us(t) - 60_000_000, "item_catalog": None},
        "missing_features": ["item_catalog:category"],
        "score": 0.125,
        "model_version": "1",
        "latency_ms": 2.5,
        "degraded": False,
        "logged_at_us": us(t) + 1_000,
        **kw,
    }
    return LogRow(**values)


def test_to_table_has_the_schema_and_the_values() -> None:
    table = to_table([row("a"), row("b", shadow_score=0.5, shadow_version="2", degraded=True)])
    assert table.schema == SCHEMA
    got = table.to_pylist()
    assert got[0] == {
        "request_id": "a",
        "request_time": LATE,
        "logged_at": datetime(2026, 3, 2, 4, 30, 0, 1_000, tzinfo=UTC),
        "route": "/predict",
        "model_name": "ctr_model",
        "entities": '{"user_id": 3, "item_id": 7}',
        "context": '{"device": "mobile", "price": 19.9}',
        "features": '{"user_activity__ctr_7d": 0.25, "item_catalog__category": "toys"}',
        "feature_event_times": json.dumps(
            {"user_activity": us(LATE) - 60_000_000, "item_catalog": None}
        ),
        "missing_features": ["item_catalog:category"],
        "score": 0.125,
        "model_version": "1",
        "shadow_score": None,
        "shadow_version": None,
        "latency_ms": 2.5,
        "degraded": False,
        "day": "2026-03-02",
    }
    assert (got[1]["shadow_score"], got[1]["shadow_version"], got[1]["degraded"]) == (
        0.5,
        "2",
        True,
    )


def test_json_columns_round_trip_and_non_json_values_become_plain() -> None:
    features = {"a": np.int64(4), "b": np.float64(0.5), "c": None, "d": np.bool_(True)}
    table = to_table([row("a", features=features, context={"t": datetime(2026, 1, 1)})])
    assert json.loads(table["features"][0].as_py()) == {"a": 4, "b": 0.5, "c": None, "d": True}
    assert json.loads(table["context"][0].as_py()) == {"t": "2026-01-01 00:00:00"}


def test_a_row_without_logged_at_is_stamped_now() -> None:
    before = time.time_ns() // 1000
    logged = to_table([row("a", logged_at_us=0)])["logged_at"][0].as_py()
    assert before <= us(logged) <= time.time_ns() // 1000


def test_no_rows_make_an_empty_table_of_the_schema() -> None:
    table = to_table([])
    assert table.num_rows == 0 and table.schema == SCHEMA


def test_appends_make_one_table_partitioned_by_day(tmp_path: Path) -> None:
    uri = str(tmp_path / "predictions")
    writer = DeltaLogWriter(uri)
    assert writer.append([]) == 0
    assert writer.append([row("a"), row("b", NOON)]) == 2
    assert writer.append([row("c", NOON)]) == 1
    table = deltalake.DeltaTable(uri)
    assert table.version() == 1  # one commit per non-empty append
    assert table.metadata().partition_columns == ["day"]
    got = table.to_pyarrow_table().sort_by("request_id")
    assert got.column("request_id").to_pylist() == ["a", "b", "c"]
    assert got.column("day").to_pylist() == ["2026-03-02", "2026-03-03", "2026-03-03"]
    assert got.column("request_time").to_pylist() == [LATE, NOON, NOON]
    assert got.column("shadow_score").to_pylist() == [None, None, None]
    assert sorted(p.name for p in Path(uri).iterdir() if p.name.startswith("day=")) == [
        "day=2026-03-02",
        "day=2026-03-03",
    ]
    assert table.to_pyarrow_table(partitions=[("day", "=", "2026-03-03")]).num_rows == 2
    assert sorted(got.column_names) == sorted(SCHEMA.names)


def test_a_row_the_schema_cannot_hold_is_left_out_and_the_others_are_written(tmp_path) -> None:
    bad = row("bad-1")
    bad.request_time_us = 10**20  # beyond year 9999: no day partition for it
    written = DeltaLogWriter(str(tmp_path / "log")).append([row("good-1"), bad, row("good-2")])
    assert written == 2
    ids = deltalake.DeltaTable(str(tmp_path / "log")).to_pyarrow_table()["request_id"].to_pylist()
    assert sorted(ids) == ["good-1", "good-2"]
