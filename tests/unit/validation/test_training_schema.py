"""The pandera schema derived from feature definitions."""

from __future__ import annotations

import pandera.pandas as pdr
import pyarrow as pa
import pytest

from mlray.features.feature_view import Field
from mlray.validation.schema import (
    derive_schema,
    describe_schema,
    may_be_null,
    to_frame,
)

FIELDS = {
    "u__ctr": Field("ctr", pa.float64(), nullable=False, ge=0, le=1),
    "u__count": Field("count", pa.int64(), nullable=False, ge=0),
    "c__category": Field("category", pa.string(), nullable=False, default="unknown"),
}
TS = pa.timestamp("us", tz="UTC")


def table(**over) -> pa.Table:
    cols = {
        "u__ctr": pa.array([0.1, None], pa.float64()),
        "u__count": pa.array([3, 0], pa.int64()),
        "c__category": pa.array(["toys", "books"], pa.large_string()),
        "clicked": pa.array([True, False]),
        "event_time": pa.array([1, 2], TS),
    }
    cols.update(over)
    return pa.table(cols)


def validate(t: pa.Table) -> set[tuple[str, str]]:
    try:
        derive_schema(FIELDS, "clicked", "event_time").validate(to_frame(t), lazy=True)
        return set()
    except pdr.errors.SchemaErrors as e:
        return {(str(r.column), str(r.check)) for r in e.failure_cases.itertuples()}


def test_valid_rows_pass_and_join_nulls_are_allowed_without_a_default():
    assert validate(table()) == set()
    assert may_be_null(FIELDS["u__ctr"]) and not may_be_null(FIELDS["c__category"])


@pytest.mark.parametrize(
    "over, column",
    [
        ({"u__ctr": pa.array([0.1, 1.5])}, "u__ctr"),
        ({"u__count": pa.array([-1, 0])}, "u__count"),
        ({"u__count": pa.array([1.0, 2.0])}, "u__count"),
        ({"c__category": pa.array(["toys", None])}, "c__category"),
        ({"clicked": pa.array([True, None])}, "clicked"),
        ({"event_time": pa.array([1, None], TS)}, "event_time"),
    ],
)
def test_violations_name_the_column(over, column):
    assert column in {c for c, _ in validate(table(**over))}


def test_missing_feature_column_fails():
    assert ("training_set", "column_in_dataframe") in validate(table().drop_columns(["u__count"]))


def test_describe_schema_lists_checks():
    rows = {r["column"]: r for r in describe_schema(derive_schema(FIELDS, "clicked", "event_time"))}
    assert (
        rows["u__ctr"]["checks"] == "ctr >= 0, ctr <= 1" and rows["c__category"]["nullable"] == "no"
    )
