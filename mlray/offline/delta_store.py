"""The offline store: one Delta table per feature view, laid out for the join.

Layout: partitioned by ``mlray_bucket`` (a stable hash of the entity keys,
:mod:`mlray.offline.bucketing`), rows sorted by (bucket, keys, event_time)
within each written batch. A point-in-time join then reads one bucket's
files per task and never shuffles feature rows across the cluster. The
number of buckets is fixed when a table is created and recorded in its
Delta description, so readers and later writers agree.

Writes are single Delta commits (atomic): an append, or an overwrite with a
predicate that replaces exactly one time window (re-running a window never
duplicates rows). A write is staged first (every row computed by Ray,
checked against the fields' ``nullable``/``ge``/``le`` and written to data
files), then committed (:mod:`mlray.offline.staging`): a failure or an
interrupt (Ctrl-C) before the commit commits nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
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
from mlray.errors import NotFoundError, SchemaError
from mlray.features.feature_view import EVENT_TIME, FeatureView, Field
from mlray.offline import delta_files
from mlray.offline.bucketing import BUCKET
from mlray.offline.filesystems import open_filesystem
from mlray.offline.inputs import PrepareRows, check_rows_schema
from mlray.offline.shuffle import block_refs
from mlray.offline.staging import (
    DRAINED,
    Feed,
    StagedWrite,
    WriteResult,
    refuse_violations,
    typed_errors,
    violations,
)

__all__ = [
    "OfflineStore",
    "PrepareRows",
    "StagedWrite",
    "ViewSnapshot",
    "WriteResult",
    "check_rows_schema",
]


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

    def read_bucket(
        self, bucket: int, columns: list[str], where: pc.Expression | None = None
    ) -> pa.Table | None:
        """The bucket's rows (``columns`` only, ``where`` they match), or None without files.

        Files are read in log order and each file's rows in file order, so a
        compacted bucket comes back in join order. ``where`` is pushed into the
        Parquet scan (row groups whose statistics exclude it are skipped).
        """
        files = self.files.get(bucket)
        if not files:
            return None
        ds = pads.dataset(list(files), format="parquet", filesystem=self.filesystem)
        return ds.to_table(columns=columns, filter=where)


class OfflineStore:
    """Delta tables of feature rows under ``<data_root>/features``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def uri(self, view: FeatureView) -> str:
        return self.settings.table_uri("features", view.name)

    def table(self, view: FeatureView, version: int | None = None) -> deltalake.DeltaTable:
        """The view's Delta table (a version of it); NotFoundError when it does not exist."""
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

    def exists(self, view: FeatureView) -> bool:
        """Whether the view has an offline table."""
        try:
            self.table(view)
        except NotFoundError:
            return False
        return True

    def num_buckets(self, view: FeatureView) -> int:
        """The table's bucket count, or the configured one for a table not created yet."""
        try:
            desc = self.table(view).metadata().description or "{}"
        except NotFoundError:
            return self.settings.num_buckets
        return int(json.loads(desc).get("num_buckets", self.settings.num_buckets))

    def version(self, view: FeatureView) -> int:
        return self.table(view).version()

    def snapshot(self, view: FeatureView, version: int | None = None) -> ViewSnapshot:
        """Files per bucket of one table version (the latest by default)."""
        dt = self.table(view, version)
        actions = pa.table(dt.get_add_actions(flatten=True))
        root = dt.table_uri.rstrip("/")
        fs, base = open_filesystem(root, self.settings.storage_options)
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
        self.table(view, version)  # a clear NotFoundError before Ray starts reading
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
            SchemaError: the rows do not fit the existing table's schema, or
                break their fields' ``nullable``/``ge``/``le`` (nothing is committed).
        """
        self._check_table_schema(view)
        with typed_errors():
            if window is None:
                staged = self._stage_append(view, rows)
            else:
                staged = self._stage_window(view, rows, window)
        return staged.commit()

    def _stage_append(self, view: FeatureView, rows: ray.data.Dataset) -> StagedWrite:
        """Each block's task writes one sorted file per bucket; the driver commits them at once."""
        so = self.settings.storage_options or None
        tasks = [
            _write_bucket_files.remote(ref, self.uri(view), so, view.table_schema(), view.schema)
            for ref in block_refs(rows)
        ]
        written = ray.get(tasks)
        refuse_violations(view, sum((bad for _, _, bad in written), Counter()))
        actions = [a for acts, _, _ in written for a in acts]

        version: list[int] = []

        def commit() -> bool:
            version.append(
                delta_files.commit(
                    self.uri(view),
                    self.full_schema(view),
                    actions,
                    mode="append",
                    partition_by=[BUCKET],
                    description=self._description(view),
                    storage_options=so,
                )
            )
            return False

        return StagedWrite(view.name, sum(n for _, n, _ in written), commit, lambda: version[0])

    def _stage_window(
        self, view: FeatureView, rows: ray.data.Dataset, window: tuple[datetime, datetime]
    ) -> StagedWrite:
        """Delta's predicate overwrite: the window's rows replaced, the rest kept, one commit.

        ``write_deltalake`` runs on a thread of its own and reads the rows this
        (the calling) thread pulls from Ray; it can only commit once the rows
        are all there and checked, and :meth:`StagedWrite.commit` releases it.
        Until then the writer holds one of Delta's runtime threads: stage one
        such write at a time, and make no other Delta call before committing it.
        """
        schema = self.full_schema(view)
        start, end = (t.astimezone(UTC).isoformat() for t in window)
        feed = Feed(schema, view.name)
        feed.start(
            lambda reader: deltalake.write_deltalake(
                self.uri(view),
                reader,
                partition_by=[BUCKET],
                mode="overwrite",
                predicate=f"{EVENT_TIME} >= '{start}' AND {EVENT_TIME} < '{end}'",
                description=self._description(view),
                storage_options=self.settings.storage_options or None,
            )
        )
        n, bad = 0, Counter[tuple[str, str]]()
        batches = iter(rows.iter_batches(batch_format="pyarrow", batch_size=None))
        try:
            for batch in batches:
                # Ray annotates every batch format's union; batch_format="pyarrow" yields pa.Table.
                table = cast(pa.Table, batch).select(schema.names).cast(schema)
                n += table.num_rows
                bad.update(violations(view.schema, table))
                feed.put(table)
            refuse_violations(view, bad)
            feed.put(DRAINED)
        except BaseException:
            feed.abort()
            raise
        finally:
            getattr(batches, "close", lambda: None)()  # stop Ray's execution now, not at GC

        return StagedWrite(
            view.name, n, feed.finish, lambda: self.version(view), release=feed.release
        )

    def full_schema(self, view: FeatureView) -> pa.Schema:
        return view.table_schema().append(pa.field(BUCKET, pa.int32(), nullable=False))

    def _description(self, view: FeatureView) -> str:
        return json.dumps({"mlray_view": view.name, "num_buckets": self.num_buckets(view)})

    def _check_table_schema(self, view: FeatureView) -> None:
        try:
            existing = pa.schema(self.table(view).schema().to_arrow())
        except NotFoundError:
            return
        want = self.full_schema(view)
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
    table: pa.Table,
    uri: str,
    storage_options: dict | None,
    schema: pa.Schema,
    fields: Sequence[Field],
) -> tuple[list, int, Counter[tuple[str, str]]]:
    """One Parquet file per bucket present in this (bucket-sorted) block; its constraint breaks."""
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
    return actions, table.num_rows, violations(fields, table)
