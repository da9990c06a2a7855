"""Boundary checks and conversions for tables entering the offline store.

Everything that reaches a join or a Delta write passes through here first:
inputs become Ray Datasets, columns and types are checked against what the
caller named, and naive timestamps are either localized (when a default
zone is configured) or refused. Errors name the table and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
import pyarrow as pa
import ray
import ray.data

from mlray.errors import SchemaError
from mlray.features.times import utc_column


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


def _is_int(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
