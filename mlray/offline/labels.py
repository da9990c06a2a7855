"""Label tables: the one reader of the rows a training set is built for.

A label table is a Delta table (read at a pinned version, recorded for
lineage) or Parquet files, named by path/URI or by a bare name under
``<data_root>/raw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from mlray.config import Settings
from mlray.errors import NotFoundError, SchemaError
from mlray.features.times import epoch_us, to_us


@dataclass(frozen=True)
class LabelTable:
    """Label rows and where they came from.

    Attributes:
        dataset: the rows (only the asked-for columns and time window).
        uri: the table's location.
        version: the Delta version read (None for Parquet).
    """

    dataset: ray.data.Dataset
    uri: str
    version: int | None

    @property
    def source(self) -> dict[str, Any]:
        """``{"uri": ..., "version": ...}``, for lineage."""
        return {"uri": self.uri, "version": self.version}


def labels_location(settings: Settings, table: str) -> str:
    """A labels table given by name (under ``<data_root>/raw``) or by path/URI."""
    if "/" in table or "://" in table or table.startswith("."):
        return table
    return settings.table_uri("raw", table)


def read_labels(
    settings: Settings,
    table: str,
    *,
    columns: Sequence[str] | None = None,
    required: Sequence[str] = (),
    time_column: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    fix: str = "Name columns the table has.",
) -> LabelTable:
    """Read a label table, pinning the Delta version it read.

    Args:
        settings: for the data root and storage options.
        table: a Delta table or Parquet path/URI, or a table name under ``<data_root>/raw``.
        columns: the columns to keep (default: all).
        required: columns that must exist (kept too).
        time_column: the label time (required and kept), needed when ``start`` or ``end`` is given.
        start, end: keep rows with ``start <= time < end`` (either bound optional).
        fix: how to fix a missing column, appended to the error.

    Raises:
        NotFoundError: the table does not exist.
        SchemaError: a named column is missing, or a bound has no time zone.
    """
    uri = labels_location(settings, table)
    opts = settings.storage_options or None
    if "://" not in uri and not Path(uri).exists():
        raise NotFoundError(
            f"Labels table {uri} does not exist; give a Delta table directory, a Parquet path "
            f"or the name of a table under {settings.raw_root} (run `mlray demo generate` "
            "for the demo's)."
        )
    version = None
    if _is_delta(uri, opts):
        version = deltalake.DeltaTable(uri, storage_options=opts).version()
        ds = ray.data.read_delta(uri, version=version, storage_options=opts)
    else:
        ds = ray.data.read_parquet(uri)
    names = ds.schema().names
    time = [time_column] if time_column else []
    needed = list(dict.fromkeys([*(columns or []), *required, *time]))
    missing = [c for c in needed if c not in names]
    if missing:
        raise SchemaError(f"Labels table {uri} lacks columns {missing}; it has {names}. {fix}")
    if columns is not None:
        ds = ds.select_columns(needed)
    if start is not None or end is not None:
        if time_column is None:
            raise SchemaError("Give the label time column to read labels between two times.")
        ds = ds.map_batches(TimeSlice(time_column, start, end), batch_format="pyarrow")
    return LabelTable(ds, uri, version)


def _is_delta(uri: str, opts: dict[str, str] | None) -> bool:
    if "://" not in uri:
        return Path(uri, "_delta_log").is_dir()
    try:
        return deltalake.DeltaTable.is_deltatable(uri, storage_options=opts)
    except OSError:  # a single Parquet object, not a table directory
        return False


class TimeSlice:
    """``map_batches`` filter keeping rows with ``start <= time < end`` (either bound optional).

    Raises:
        SchemaError: a bound has no time zone.
    """

    def __init__(self, column: str, start: datetime | None, end: datetime | None) -> None:
        self.column = column
        self.start = None if start is None else to_us(start)
        self.end = None if end is None else to_us(end)

    def __call__(self, batch: pa.Table) -> pa.Table:
        t = epoch_us(batch.column(self.column))
        mask = pc.is_valid(t)
        if self.start is not None:
            mask = pc.and_(mask, pc.greater_equal(t, self.start))
        if self.end is not None:
            mask = pc.and_(mask, pc.less(t, self.end))
        return batch.filter(mask)
