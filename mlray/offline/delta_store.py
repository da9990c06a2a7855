"""The offline store: one Delta table per feature view, laid out for the join.

Layout: partitioned by ``mlray_bucket`` (a stable hash of the entity keys,
:mod:`mlray.offline.bucketing`), rows sorted by (bucket, keys, event_time)
within each written batch. A point-in-time join then reads one bucket's
files per task and never shuffles feature rows across the cluster. The
number of buckets is fixed when a table is created and recorded in its
Delta description, so readers and later writers agree.

Writes are single Delta commits (atomic): an append, or an overwrite with a
predicate that replaces exactly one time window (re-running a window never
duplicates rows). A failure mid-write commits nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from urllib.parse import unquote

import deltalake
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import ray
import ray.data
from deltalake.exceptions import TableNotFoundError

from mlray.config import Settings
from mlray.errors import NotFoundError, SchemaError, find_mlray_error
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.features.times import duration_us
from mlray.offline import delta_files, inputs
from mlray.offline.bucketing import BUCKET, with_bucket
from mlray.offline.shuffle import block_refs


@dataclass(frozen=True)
class ViewSnapshot:
    """One version of a view's table: where each bucket's files are."""

    view: str
    uri: str
    version: int
    num_buckets: int
    files: dict[int, tuple[str, ...]]
    num_rows: int
    filesystem: pafs.FileSystem

    def read_bucket(self, bucket: int, columns: list[str]) -> pa.Table | None:
        """The bucket's rows (``columns`` only), or None when it has no files."""
        files = self.files.get(bucket)
        if not files:
            return None
        return pads.dataset(list(files), format="parquet", filesystem=self.filesystem).to_table(
            columns=columns
        )


@dataclass(frozen=True)
class WriteResult:
    view: str
    version: int
    rows: int


class OfflineStore:
    """Delta tables of feature rows under ``<data_root>/features``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def uri(self, view: FeatureView) -> str:
        return self.settings.table_uri("features", view.name)

    def _table(self, view: FeatureView, version: int | None = None) -> deltalake.DeltaTable:
        try:
            return deltalake.DeltaTable(
                self.uri(view), version=version, storage_options=self.settings.storage_options
            )
        except TableNotFoundError as e:
            raise NotFoundError(
                f"Feature view {view.name!r} has no offline table at {self.uri(view)}. "
                "Run `mlray features build` or FeatureStore.ingest first."
            ) from e
        except Exception as e:  # deltalake raises a plain error for a missing version
            if version is not None and "version" in str(e).lower():
                raise NotFoundError(
                    f"Offline table of view {view.name!r} has no version {version}: {e}"
                ) from e
            raise

    def num_buckets(self, view: FeatureView) -> int:
        """The table's bucket count, or the configured one for a table not created yet."""
        try:
            desc = self._table(view).metadata().description or "{}"
        except NotFoundError:
            return self.settings.num_buckets
        return int(json.loads(desc).get("num_buckets", self.settings.num_buckets))

    def version(self, view: FeatureView) -> int:
        return self._table(view).version()

    def snapshot(self, view: FeatureView, version: int | None = None) -> ViewSnapshot:
        """Files per bucket of one table version (the latest by default)."""
        dt = self._table(view, version)
        actions = pa.table(dt.get_add_actions(flatten=True))
        root = dt.table_uri.rstrip("/")
        fs, base = pafs.FileSystem.from_uri(root)
        files: dict[int, list[str]] = {}
        for path, bucket in zip(
            actions.column("path").to_pylist(),
            actions.column(f"partition.{BUCKET}").to_pylist(),
            strict=True,
        ):
            files.setdefault(int(bucket), []).append(f"{base}/{unquote(path)}")
        n = json.loads(dt.metadata().description or "{}").get(
            "num_buckets", self.settings.num_buckets
        )
        rows = int(pc.sum(actions.column("num_records")).as_py() or 0)
        return ViewSnapshot(
            view.name, root, dt.version(), int(n), {b: tuple(f) for b, f in files.items()}, rows, fs
        )

    def read(self, view: FeatureView, version: int | None = None) -> ray.data.Dataset:
        """The view's rows as a Ray Dataset (bucket column dropped)."""
        self._table(view, version)  # a clear NotFoundError before Ray starts reading
        ds = ray.data.read_delta(
            self.uri(view), version=version, storage_options=self.settings.storage_options or None
        )
        return ds.drop_columns([BUCKET]) if BUCKET in ds.schema().names else ds

    def write(
        self,
        view: FeatureView,
        rows: ray.data.Dataset,
        window: tuple[datetime, datetime] | None = None,
    ) -> WriteResult:
        """Commit prepared rows (see :class:`PrepareRows`) in one Delta transaction.

        Args:
            view: the feature view.
            rows: output of ``ds.map_batches(PrepareRows(...))``.
            window: if given, replace every row with ``window[0] <= event_time <
                window[1]`` (the rows must lie in it); else append.

        Raises:
            SchemaError: the rows do not fit the existing table's schema.
        """
        self._check_table_schema(view)
        try:
            if window is None:
                return self._append(view, rows)
            return self._replace_window(view, rows, window)
        except Exception as e:
            err = find_mlray_error(e)
            if err is not None:
                raise err from e
            raise

    def _append(self, view: FeatureView, rows: ray.data.Dataset) -> WriteResult:
        """Each block's task writes one sorted file per bucket; the driver commits them at once."""
        so = self.settings.storage_options or None
        tasks = [
            _write_bucket_files.remote(ref, self.uri(view), so, view.table_schema())
            for ref in block_refs(rows)
        ]
        written = ray.get(tasks)
        actions = [a for acts, _ in written for a in acts]
        version = delta_files.commit(
            self.uri(view),
            self._full_schema(view),
            actions,
            mode="append",
            partition_by=[BUCKET],
            description=self._description(view),
            storage_options=so,
        )
        return WriteResult(view.name, version, sum(n for _, n in written))

    def _replace_window(
        self, view: FeatureView, rows: ray.data.Dataset, window: tuple[datetime, datetime]
    ) -> WriteResult:
        """Delta's predicate overwrite: the window's rows replaced, the rest kept, one commit."""
        schema = self._full_schema(view)
        counter = _Counter()
        reader = pa.RecordBatchReader.from_batches(schema, counter.batches(rows, schema))
        start, end = (t.astimezone(UTC).isoformat() for t in window)
        try:
            deltalake.write_deltalake(
                self.uri(view),
                reader,
                partition_by=[BUCKET],
                mode="overwrite",
                predicate=f"{EVENT_TIME} >= '{start}' AND {EVENT_TIME} < '{end}'",
                description=self._description(view),
                storage_options=self.settings.storage_options or None,
            )
        except Exception as e:
            raise (counter.error or e) from e
        return WriteResult(view.name, self.version(view), counter.rows)

    def _full_schema(self, view: FeatureView) -> pa.Schema:
        return view.table_schema().append(pa.field(BUCKET, pa.int32(), nullable=False))

    def _description(self, view: FeatureView) -> str:
        return json.dumps({"mlray_view": view.name, "num_buckets": self.num_buckets(view)})

    def _check_table_schema(self, view: FeatureView) -> None:
        try:
            existing = pa.schema(self._table(view).schema().to_arrow())
        except NotFoundError:
            return
        want = self._full_schema(view)
        got = {f.name: f.type for f in existing}
        diff = [
            f"{f.name}: table {got.get(f.name, 'missing')} vs view {f.type}"
            for f in want
            if f.name not in got or not _same_type(got[f.name], f.type)
        ]
        if diff or len(got) != len(want):
            raise SchemaError(
                f"Feature view {view.name!r} no longer matches its offline table {self.uri(view)} "
                f"({'; '.join(diff) or 'different columns'}). Give the changed view a new name, "
                "or delete the table and rebuild it."
            )


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    strings = (pa.string(), pa.large_string(), pa.string_view())
    return a == b or (a in strings and b in strings)


@ray.remote
def _write_bucket_files(
    table: pa.Table, uri: str, storage_options: dict | None, schema: pa.Schema
) -> tuple[list, int]:
    """One Parquet file per bucket present in this (bucket-sorted) block."""
    fs = delta_files.table_filesystem(uri, storage_options)
    buckets = table.column(BUCKET).to_numpy()
    actions = []
    starts: np.ndarray | list[int] = (
        np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]]) if len(buckets) else []
    )
    ends = list(starts[1:]) + [len(buckets)]
    # An empty block has no start but one end: nothing to write.
    for lo, hi in zip(starts, ends, strict=False):
        part = table.slice(lo, hi - lo).select(schema.names).cast(schema)
        actions.append(delta_files.write_file(fs, [part], schema, {BUCKET: str(int(buckets[lo]))}))
    return actions, table.num_rows


class _Counter:
    """Streams batches into the Delta writer, counting rows and keeping the first error."""

    def __init__(self) -> None:
        self.rows = 0
        self.error: BaseException | None = None

    def batches(self, ds: ray.data.Dataset, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        try:
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                # Ray annotates every batch format's union; batch_format="pyarrow" yields pa.Table.
                table = cast(pa.Table, batch).select(schema.names).cast(schema)
                self.rows += table.num_rows
                yield from table.to_batches()
        except BaseException as e:
            self.error = e
            raise


class PrepareRows:
    """Check and shape a batch of feature rows for a view's table (a ``map_batches`` fn).

    Casts to the view's table schema, fills ``available_time`` from the
    view's availability delay when absent, adds the bucket and sorts by
    (bucket, keys, event_time).
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
        batch = inputs.normalize_times(batch, [EVENT_TIME, AVAILABLE_TIME], self.tz)
        inputs.check_not_null(batch, [*view.join_keys, EVENT_TIME, AVAILABLE_TIME], what)
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
            + [(EVENT_TIME, "ascending")]
        )
        return out.sort_by(order)


def check_rows_schema(view: FeatureView, schema: pa.Schema, default_timezone: str | None) -> None:
    """Boundary check of rows offered to a view: names and time types, before any work starts."""
    what = f"rows for feature view {view.name!r}"
    required = [*view.join_keys, EVENT_TIME, *view.feature_names]
    inputs.require_columns(schema, required, what)
    extra = sorted(set(schema.names) - set(required) - {AVAILABLE_TIME, BUCKET})
    if extra:
        raise SchemaError(
            f"{what} have column(s) {extra} that the view does not declare "
            f"(features: {list(view.feature_names)}). Drop them or add them to the view's schema."
        )
    for t in [EVENT_TIME] + ([AVAILABLE_TIME] if AVAILABLE_TIME in schema.names else []):
        inputs.check_time_column(schema, t, what, default_timezone)
    inputs.check_key_types(schema, view.join_keys, view.key_schema(), what)
