"""Boundary checks and conversions for tables entering the offline store.

Everything that reaches a join or a Delta write passes through here first:
inputs become Ray Datasets, columns and types are checked against what the
caller named, and naive timestamps are either localized (when a default
zone is configured) or refused. Errors name the table and column.
:class:`PrepareRows` shapes a view's rows for its offline table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

from mlray.errors import SchemaError
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.features.times import duration_us, utc_column
from mlray.offline.bucketing import BUCKET, with_bucket


def as_dataset(data: object, what: str) -> ray.data.Dataset:
    """Accept a Ray Dataset, pandas DataFrame or Arrow Table."""
    if isinstance(data, ray.data.Dataset):
        return data
    if isinstance(data, pd.DataFrame):
        return ray.data.from_arrow(pa.Table.from_pandas(data, preserve_index=False))
    if isinstance(data, pa.Table):
        return ray.data.from_arrow(data)
    raise SchemaError(
        f"{what} must be a ray.data.Dataset, pandas.DataFrame or pyarrow.Table, "
        f"got {type(data).__name__}."
    )


def arrow_schema(ds: ray.data.Dataset, what: str) -> pa.Schema:
    schema = ds.schema(fetch_if_missing=True)
    if schema is None:
        raise SchemaError(
            f"{what} has no schema (is it empty?). Pass at least one row or an Arrow table "
            "with a schema."
        )
    base = getattr(schema, "base_schema", schema)
    if isinstance(base, pa.Schema):
        return base
    # Pandas-backed blocks (e.g. ray.data.from_pandas): read the Arrow schema off one converted row.
    sample = ds.limit(1).to_arrow_refs()
    return (
        ray.get(sample[0]).schema
        if sample
        else pa.schema(list(zip(schema.names, schema.types, strict=True)))
    )


def require_columns(schema: pa.Schema, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise SchemaError(
            f"{what} is missing column(s) {missing}; it has {schema.names}. "
            "Add them or name the right columns in the call."
        )


def check_time_column(
    schema: pa.Schema, column: str, what: str, default_timezone: str | None
) -> None:
    """A time column must be a timestamp with a zone, or naive with a configured default zone."""
    typ = schema.field(column).type
    if not pa.types.is_timestamp(typ):
        raise SchemaError(
            f"{what} column {column!r} must be a timestamp, got {typ}. "
            "Convert it, e.g. pd.to_datetime(df[col], utc=True)."
        )
    if typ.tz is None and default_timezone is None:
        raise SchemaError(
            f"{what} column {column!r} is a timestamp without a time zone. Make it zone-aware "
            "(e.g. df[col].dt.tz_localize('UTC')) or set default_timezone in the settings."
        )


def check_key_types(schema: pa.Schema, keys: Sequence[str], expected: pa.Schema, what: str) -> None:
    for k in keys:
        got, want = schema.field(k).type, expected.field(k).type
        if (
            got != want
            and not (_is_int(got) and _is_int(want))
            and not (_is_str(got) and _is_str(want))
        ):
            raise SchemaError(
                f"{what} join key {k!r} has type {got}, the feature view expects {want}. "
                "Cast the column to the entity's key type."
            )


def normalize_times(
    table: pa.Table, columns: Sequence[str], default_timezone: str | None
) -> pa.Table:
    """Convert the named timestamp columns to UTC microseconds, localizing naive ones."""
    for c in columns:
        arr = utc_column(table.column(c), default_timezone)
        table = table.set_column(table.schema.get_field_index(c), c, arr)
    return table


def check_not_null(table: pa.Table, columns: Sequence[str], what: str) -> None:
    for c in columns:
        n = table.column(c).null_count
        if n:
            raise SchemaError(
                f"{what} column {c!r} has {n} null value(s); join keys and times may not be null. "
                "Drop or fill those rows first."
            )


class PrepareRows:
    """Check and shape a batch of feature rows for a view's table (a ``map_batches`` fn).

    Casts to the view's table schema, fills ``available_time`` from the
    view's availability delay when absent, adds the bucket and sorts by
    (bucket, keys, event_time, available_time): each bucket's slice is in the
    order the join reads without sorting.
    """

    def __init__(self, view: FeatureView, num_buckets: int, default_timezone: str | None) -> None:
        self.view, self.num_buckets, self.tz = view, num_buckets, default_timezone

    def __call__(self, batch: pa.Table) -> pa.Table:
        view, what = self.view, f"rows for feature view {self.view.name!r}"
        if AVAILABLE_TIME not in batch.column_names:
            batch = batch.append_column(AVAILABLE_TIME, batch.column(EVENT_TIME))
            delay_us = duration_us(view.availability_delay)
            if delay_us:
                shifted = pc.add(batch.column(EVENT_TIME).cast(pa.int64()), delay_us).cast(
                    batch.column(EVENT_TIME).type
                )
                batch = batch.set_column(
                    batch.schema.get_field_index(AVAILABLE_TIME), AVAILABLE_TIME, shifted
                )
        batch = normalize_times(batch, [EVENT_TIME, AVAILABLE_TIME], self.tz)
        check_not_null(batch, [*view.join_keys, EVENT_TIME, AVAILABLE_TIME], what)
        target = view.table_schema()
        cols = []
        for f in target:
            try:
                cols.append(batch.column(f.name).cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise SchemaError(
                    f"{what}: column {f.name!r} has type {batch.schema.field(f.name).type}, "
                    f"which cannot be cast to the declared {f.type}: {e}"
                ) from e
        out = with_bucket(
            pa.Table.from_arrays(cols, schema=target), view.join_keys, self.num_buckets
        )
        order = (
            [(BUCKET, "ascending")]
            + [(k, "ascending") for k in view.join_keys]
            + [(EVENT_TIME, "ascending"), (AVAILABLE_TIME, "ascending")]
        )
        return out.sort_by(order)


def check_rows_schema(view: FeatureView, schema: pa.Schema, default_timezone: str | None) -> None:
    """Boundary check of rows offered to a view: names and time types, before any work starts."""
    what = f"rows for feature view {view.name!r}"
    required = [*view.join_keys, EVENT_TIME, *view.feature_names]
    require_columns(schema, required, what)
    extra = sorted(set(schema.names) - set(required) - {AVAILABLE_TIME, BUCKET})
    if extra:
        raise SchemaError(
            f"{what} have column(s) {extra} that the view does not declare "
            f"(features: {list(view.feature_names)}). Drop them or add them to the view's schema."
        )
    for t in [EVENT_TIME] + ([AVAILABLE_TIME] if AVAILABLE_TIME in schema.names else []):
        check_time_column(schema, t, what, default_timezone)
    check_key_types(schema, view.join_keys, view.key_schema(), what)


def _is_int(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
