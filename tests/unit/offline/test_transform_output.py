"""What a view's transform receives, and how its output is checked before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlray.errors import DefinitionError, SchemaError
from mlray.features import Entity, FeatureView, Field
from mlray.features.times import TIMESTAMP
from mlray.offline.feature_build import RunTransform

START, END = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
user = Entity("user", ("user_id",))


def parity(events: pd.DataFrame) -> pd.DataFrame:
    # Plain NumPy dtypes: arithmetic on them works (Arrow-backed ints raised NotImplementedError).
    assert events.user_id.dtype == np.int64 and events.price.dtype == np.float64
    assert events.clicked.dtype == np.bool_
    assert str(events.event_time.dtype) == "datetime64[us, UTC]"
    return pd.DataFrame(
        {
            "user_id": events.user_id,
            "event_time": events.event_time,
            "parity": events.user_id % 2,
            "spent": events.price * events.clicked,
        }
    )


VIEW = FeatureView(
    name="parities",
    entities=[user],
    source="events",
    transform=parity,
    schema=[Field("parity", pa.int64()), Field("spent", pa.float64())],
)


def events() -> pa.Table:
    times = [START - timedelta(hours=1), START, START + timedelta(hours=5), END]
    return pa.table(
        {
            "user_id": pa.array([3, 4, 5, 6], pa.int64()),
            "event_time": pa.array(times, TIMESTAMP),
            "price": [1.5, 2.0, 4.0, 8.0],
            "clicked": [True, False, True, True],
        }
    )


def run(transform, tz: str | None = None) -> pa.Table:
    view = FeatureView(
        name="parities",
        entities=[user],
        source="events",
        transform=transform,
        schema=[Field("parity", pa.int64()), Field("spent", pa.float64())],
    )
    return RunTransform(view, START, END, tz)(events())


def test_the_transform_gets_numpy_dtypes_and_its_rows_are_cut_to_the_window():
    out = RunTransform(VIEW, START, END, None)(events())
    assert out.column_names == ["user_id", "event_time", "parity", "spent"]
    assert out.column("user_id").to_pylist() == [4, 5]
    assert out.column("parity").to_pylist() == [0, 1]
    assert out.column("spent").to_pylist() == [0.0, 4.0]
    assert out.schema.field("event_time").type == TIMESTAMP


def test_a_naive_event_time_is_a_schema_error_naming_the_view():
    def naive(ev: pd.DataFrame) -> pd.DataFrame:
        return parity(ev).assign(event_time=ev.event_time.dt.tz_localize(None))

    with pytest.raises(SchemaError) as e:
        run(naive)
    assert str(e.value).startswith(
        "Output of the transform of feature view 'parities' (defined at "
    )
    assert "column 'event_time' is a timestamp without a time zone" in str(e.value)


def test_a_naive_event_time_is_read_in_the_configured_default_zone():
    def naive(ev: pd.DataFrame) -> pd.DataFrame:
        return parity(ev).assign(event_time=ev.event_time.dt.tz_localize(None))

    # 01:00 in Paris is midnight UTC: the first row moves out of the window.
    out = run(naive, tz="Europe/Paris")
    assert out.column("user_id").to_pylist() == [5, 6]
    assert out.column("event_time").to_pylist()[0] == START + timedelta(hours=4)


@pytest.mark.parametrize(
    "transform,error,needle",
    [
        (lambda ev: parity(ev).to_dict(), SchemaError, "returned dict; it must return a pandas"),
        (lambda ev: None, SchemaError, "returned NoneType; it must return a pandas DataFrame"),
        (
            lambda ev: parity(ev).assign(event_time=ev.event_time.astype(str)),
            SchemaError,
            "column 'event_time' must be a timestamp, got large_string",
        ),
        (
            lambda ev: parity(ev).assign(event_time=ev.event_time.astype("int64")),
            SchemaError,
            "column 'event_time' must be a timestamp, got int64",
        ),
        (
            lambda ev: parity(ev).assign(parity=[1, "a", 2.5, None]),
            SchemaError,
            "returned a column Arrow cannot read",
        ),
        (lambda ev: parity(ev).drop(columns="spent"), DefinitionError, "no column(s) ['spent']"),
    ],
)
def test_a_wrong_output_is_a_typed_error_naming_the_view(transform, error, needle):
    with pytest.raises(error) as e:
        run(transform)
    assert "feature view 'parities'" in str(e.value)
    assert needle in str(e.value)


def test_an_empty_output_is_an_empty_table_of_the_view_types():
    out = run(lambda ev: pd.DataFrame(columns=["user_id", "event_time", "parity", "spent"]))
    assert out.num_rows == 0
    assert out.schema == VIEW.table_schema().empty_table().select(out.column_names).schema
