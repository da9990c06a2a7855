"""Compaction of an offline feature table: one sorted file per entity bucket, one Delta commit.

Every ingest and build adds files to each bucket, so without compaction a
bucket's file count grows with the number of writes, and the join has to
merge and sort them on every read. :func:`compact` rewrites each bucket that
has more than one file (or a file not in join order) into a single Parquet
file sorted by (keys, event_time, available_time), the order the as-of
kernel (:class:`mlray.offline.asof.VisibleIndex`) uses without sorting.

All rewritten buckets are committed as one Delta transaction of
``data_change=False`` adds and removes (what Delta's own OPTIMIZE writes),
so readers see the same rows before and after, time travel to older
versions keeps working until a vacuum, and a concurrent writer that removed
one of the same files makes the commit fail instead of losing its rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pyarrow as pa
import ray
from deltalake import DeltaTable, Schema
from deltalake.transaction import AddAction, RemoveAction

from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.offline import delta_files
from mlray.offline.bucketing import BUCKET
from mlray.offline.delta_store import OfflineStore, ViewSnapshot


@dataclass(frozen=True)
class CompactResult:
    """What one compaction did: buckets rewritten, file counts, the new table version."""

    view: str
    buckets: int
    files_before: int
    files_after: int
    rows: int
    version: int
    seconds: float


def join_order(view: FeatureView) -> list[tuple[str, str]]:
    """The row order of a compacted file (and of every file the store writes)."""
    return [(k, "ascending") for k in view.join_keys] + [
        (EVENT_TIME, "ascending"),
        (AVAILABLE_TIME, "ascending"),
    ]


def compact(offline: OfflineStore, view: FeatureView, *, min_files: int = 2) -> CompactResult:
    """Rewrite every bucket with at least ``min_files`` files into one sorted file, one commit.

    Args:
        offline: the store holding the view's table.
        view: the feature view.
        min_files: compact buckets with at least this many files (1 also re-sorts single files).

    Returns:
        The result; ``buckets == 0`` (and no new version) when nothing needed rewriting.

    Raises:
        NotFoundError: the view has no offline table.
    """
    t0 = time.perf_counter()
    dt = offline.table(view)
    snap = offline.snapshot(view, dt.version())
    todo = sorted(b for b, files in snap.files.items() if len(files) >= max(1, min_files))
    before = sum(len(f) for f in snap.files.values())
    if not todo:
        return CompactResult(view.name, 0, before, before, 0, snap.version, 0.0)
    schema = offline.full_schema(view)
    file_schema = view.table_schema()
    so = offline.settings.storage_options or None
    written = ray.get(
        [
            _rewrite_bucket.remote(snap, b, file_schema, join_order(view), offline.uri(view), so)
            for b in todo
        ]
    )
    adds = [a for a, _ in written]
    removes = _removes(dt, set(todo))
    dt.create_write_transaction(
        [*adds, *removes],
        mode="append",
        schema=Schema.from_arrow(schema),
        partition_by=[BUCKET],
    )
    version = DeltaTable(offline.uri(view), storage_options=so).version()
    return CompactResult(
        view.name,
        len(todo),
        before,
        before - len(removes) + len(adds),
        sum(n for _, n in written),
        version,
        time.perf_counter() - t0,
    )


def _removes(dt: DeltaTable, buckets: set[int]) -> list[RemoveAction]:
    """Remove actions (no data change) for every file of ``buckets`` in the table's version."""
    actions = pa.table(dt.get_add_actions(flatten=True))
    now_ms = int(time.time() * 1000)
    out = []
    for path, size, bucket in zip(
        actions.column("path").to_pylist(),
        actions.column("size_bytes").to_pylist(),
        actions.column(f"partition.{BUCKET}").to_pylist(),
        strict=True,
    ):
        if int(bucket) in buckets:
            out.append(RemoveAction(path, False, now_ms, size, {BUCKET: str(int(bucket))}))
    return out


@ray.remote
def _rewrite_bucket(
    snap: ViewSnapshot,
    bucket: int,
    schema: pa.Schema,
    order: list[tuple[str, str]],
    uri: str,
    storage_options: dict[str, str] | None,
) -> tuple[AddAction, int]:
    """Read one bucket's files, sort them into join order, write one file (no data change)."""
    table = snap.read_bucket(bucket, schema.names)
    assert table is not None  # only buckets with files are compacted
    table = table.sort_by(order).cast(schema).combine_chunks()
    fs = delta_files.table_filesystem(uri, storage_options)
    add = delta_files.write_file(fs, [table], schema, {BUCKET: str(bucket)}, data_change=False)
    return add, table.num_rows
