"""Label tables: the one reader of the rows a training set is built for.

A label table is a Delta table (read at a pinned version, recorded for
lineage), one Parquet file or a directory of Parquet files, named by a
path/URI or by a bare name under ``<data_root>/raw``. :func:`find_labels`
looks at it without Ray (format, files, schema, and null counts from the
files' own statistics), so every cheap check runs before Ray starts;
:meth:`LabelSource.read` then reads the rows with Ray Data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import deltalake
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import ray
import ray.data
from ray import ObjectRef

from mlray.config import Settings
from mlray.errors import NotFoundError, SchemaError
from mlray.features.times import epoch_us, to_us
from mlray.offline.filesystems import is_remote, open_filesystem

_NOT_PARQUET = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".xlsx", ".xls", ".feather", ".arrow")


@dataclass(frozen=True)
class LabelSource:
    """A label table found and inspected without Ray.

    Attributes:
        uri: the table's location.
        format: ``"delta"`` or ``"parquet"``.
        schema: its Arrow schema.
        version: the Delta version pinned (None for Parquet).
        files: the Parquet files read, as paths in :meth:`filesystem` (empty for Delta).
        null_counts: column -> nulls over the whole table, for the columns
            every file has statistics for.
        storage_options: for a table on object storage (``Settings.storage_options``).
    """

    uri: str
    format: str
    schema: pa.Schema
    version: int | None = None
    files: tuple[str, ...] = ()
    null_counts: dict[str, int] | None = None
    storage_options: dict[str, str] | None = None

    @property
    def source(self) -> dict[str, Any]:
        """``{"uri": ..., "version": ...}``, for lineage."""
        return {"uri": self.uri, "version": self.version}

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """The file system ``files`` are in, and the table's path in it."""
        return open_filesystem(self.uri, self.storage_options)

    def check_not_null(self, columns: Sequence[str]) -> None:
        """Refuse nulls in ``columns`` where the files' statistics show them (before Ray work).

        Raises:
            SchemaError: a column has null values; the message names it and the table.
        """
        for c in dict.fromkeys(columns):
            n = (self.null_counts or {}).get(c, 0)
            if n:
                raise SchemaError(
                    f"Labels table {self.uri}: column {c!r} has {n} null value(s); label times "
                    "and join keys may not be null. Drop or fill those rows first."
                )

    def blocks(self) -> list[ObjectRef]:
        """The rows as Arrow blocks in the object store, one per Parquet file.

        Parquet files are read by plain tasks (a one-pass read needs no Ray
        Data execution to start and stream); Delta tables through Ray Data.
        """
        if self.format != "parquet":
            return list(self.read().to_arrow_refs())
        _, root = self.filesystem()  # resolved here: a worker's directory is not the caller's
        return [_read_parquet_file.remote(self, root, f) for f in self.files]

    def read(self) -> ray.data.Dataset:
        """The rows, as a Ray Dataset (the pinned Delta version, or exactly ``files``)."""
        if self.format == "delta":
            return ray.data.read_delta(
                self.uri, version=self.version, storage_options=self.storage_options
            )
        fs, _ = self.filesystem()
        return ray.data.read_parquet(list(self.files), filesystem=fs, file_extensions=None)


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


@ray.remote
def _read_parquet_file(source: LabelSource, root: str, path: str) -> pa.Table:
    """One file, with the string columns of hive directories (``day=2026-01-02/``) added."""
    fs, _ = source.filesystem()
    table = pq.read_table(path, filesystem=fs)
    if path == root:
        return table
    parts = PurePosixPath(path).relative_to(root).parent.parts
    values = dict(p.split("=", 1) for p in parts if "=" in p)
    for name in source.schema.names:
        if name not in table.column_names:  # a hive key; null for files outside its directories
            value = values.get(name)
            column = pa.array([None if value is None else unquote(value)] * table.num_rows)
            table = table.append_column(pa.field(name, pa.string()), column.cast(pa.string()))
    return table


def labels_location(settings: Settings, table: str) -> str:
    """A labels table by path/URI, or by name under ``<data_root>/raw``.

    A bare name that exists as a local path (``labels.parquet`` in the
    current directory) is that path; otherwise it names a table under raw.
    """
    if "/" in table or "://" in table or table.startswith(".") or Path(table).exists():
        return table
    return settings.table_uri("raw", table)


def find_labels(settings: Settings, table: str) -> LabelSource:
    """Find a label table and read its schema and null counts, without Ray.

    Args:
        settings: for the data root and storage options.
        table: a Delta table, a Parquet file or directory (path or URI), or a
            table name under ``<data_root>/raw``.

    Raises:
        NotFoundError: the table does not exist.
        SchemaError: it is neither Delta nor Parquet (e.g. a CSV file), or holds no Parquet files.
    """
    uri = labels_location(settings, table)
    opts = settings.storage_options or None
    if not is_remote(uri) and not Path(uri.removeprefix("file://")).exists():
        raise NotFoundError(
            f"Labels table {uri} does not exist; give a Delta table directory, a Parquet file "
            f"or directory, or the name of a table under {settings.raw_root} (run "
            "`mlray demo generate` for the demo's)."
        )
    return open_source(uri, opts)


def open_source(uri: str, storage_options: Mapping[str, str] | None = None) -> LabelSource:
    """A Delta table, Parquet file or directory of Parquet files: schema and nulls, without Ray.

    Raises:
        NotFoundError: nothing is there.
        SchemaError: it is neither Delta nor Parquet, or a directory without Parquet files.
    """
    opts = dict(storage_options) if storage_options else None
    if _is_delta(uri, opts):
        return _delta_source(uri, opts)
    return _parquet_source(uri, opts)


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
        SchemaError: not Delta or Parquet, a named column is missing, or a bound has no time zone.
    """
    src = find_labels(settings, table)
    names = src.schema.names
    time = [time_column] if time_column else []
    needed = list(dict.fromkeys([*(columns or []), *required, *time]))
    missing = [c for c in needed if c not in names]
    if missing:
        raise SchemaError(f"Labels table {src.uri} lacks columns {missing}; it has {names}. {fix}")
    if (start is not None or end is not None) and time_column is None:
        raise SchemaError("Give the label time column to read labels between two times.")
    ds = src.read()
    if columns is not None:
        ds = ds.select_columns(needed)
    if start is not None or end is not None:
        assert time_column is not None
        ds = ds.map_batches(TimeSlice(time_column, start, end), batch_format="pyarrow")
    return LabelTable(ds, src.uri, src.version)


def _is_delta(uri: str, opts: dict[str, str] | None) -> bool:
    if not is_remote(uri):
        return Path(uri.removeprefix("file://"), "_delta_log").is_dir()
    try:
        return deltalake.DeltaTable.is_deltatable(uri, storage_options=opts)
    except OSError:  # a single Parquet object, not a table directory
        return False


def _delta_source(uri: str, opts: dict[str, str] | None) -> LabelSource:
    dt = deltalake.DeltaTable(uri, storage_options=opts)
    schema = pa.schema(dt.schema().to_arrow())
    adds = pa.table(dt.get_add_actions(flatten=True))
    nulls: dict[str, int] = {}
    for name in schema.names:
        col = f"null_count.{name}"
        if adds.num_rows == 0:
            nulls[name] = 0
        elif col in adds.column_names and adds.column(col).null_count == 0:
            nulls[name] = int(pc.sum(adds.column(col)).as_py() or 0)
    return LabelSource(uri, "delta", schema, dt.version(), (), nulls, opts)


def _parquet_source(uri: str, opts: dict[str, str] | None) -> LabelSource:
    """One Parquet file, or each Parquet file under a directory (hidden and ``_`` names skipped)."""
    try:
        fs, path = open_filesystem(uri, opts)
        info = fs.get_file_info(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise NotFoundError(f"Labels table {uri} cannot be opened: {e}") from e
    if info.type == pafs.FileType.NotFound:
        raise NotFoundError(f"Labels table {uri} does not exist.")
    if info.type == pafs.FileType.File:
        files = [path]
    else:
        found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        files = sorted(
            f.path
            for f in found
            if f.type == pafs.FileType.File
            and not any(p.startswith((".", "_")) for p in Path(f.path).relative_to(path).parts)
        )
        others = [f for f in files if f.lower().endswith(_NOT_PARQUET)]
        files = [f for f in files if f not in others]
        if not files:
            kinds = sorted({Path(f).suffix for f in others}) or ["no files"]
            raise SchemaError(
                f"Labels directory {uri} holds no Parquet files (found: {', '.join(kinds)}); "
                "give a Delta table, a Parquet file or a directory of Parquet files."
            )
    nulls: dict[str, int] = {}
    schema = None
    for i, f in enumerate(files):
        meta = _parquet_metadata(fs, f, uri)
        if i == 0:
            schema = meta.schema.to_arrow_schema()
            nulls = dict.fromkeys(schema.names, 0)
        _add_null_counts(meta, nulls)
    assert schema is not None
    if info.type != pafs.FileType.File:  # hive directories (``day=2026-01-01/``) add string columns
        parts = (Path(f).relative_to(path).parent.parts for f in files)
        for key in dict.fromkeys(p.split("=", 1)[0] for ps in parts for p in ps if "=" in p):
            if key not in schema.names:
                schema = schema.append(pa.field(key, pa.string()))
    return LabelSource(uri, "parquet", schema, None, tuple(files), nulls, opts)


def _parquet_metadata(fs: pafs.FileSystem, path: str, uri: str) -> pq.FileMetaData:
    if path.lower().endswith(_NOT_PARQUET):
        kind = Path(path).suffix.lstrip(".").upper()
        raise SchemaError(
            f"Labels file {uri} is {kind}, not Parquet or Delta. Convert it first, e.g. "
            f"pandas.read_csv({uri!r}, parse_dates=['event_time']).to_parquet('labels.parquet'), "
            "with times that carry a zone."
        )
    try:
        with fs.open_input_file(path) as fh:
            return pq.read_metadata(fh)
    except (pa.ArrowInvalid, OSError) as e:
        raise SchemaError(
            f"Labels file {path} is not a Parquet file ({e}); give a Delta table, a Parquet "
            "file or a directory of Parquet files."
        ) from e


def _add_null_counts(meta: pq.FileMetaData, nulls: dict[str, int]) -> None:
    """Add a file's per-column null counts; a column without statistics is dropped (unknown)."""
    seen: dict[str, int] = {}
    known = set(nulls)
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            name = col.path_in_schema
            if name not in known:
                continue
            stats = col.statistics
            if stats is None or not stats.has_null_count:
                known.discard(name)
                continue
            seen[name] = seen.get(name, 0) + stats.null_count
    for name in list(nulls):
        if name in known and (name in seen or meta.num_row_groups == 0):
            nulls[name] += seen.get(name, 0)
        else:
            del nulls[name]


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
