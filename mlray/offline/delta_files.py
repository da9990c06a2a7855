"""Writing Parquet data files for Delta tables ourselves, and committing them in one transaction.

``write_deltalake`` (deltalake 1.6) deals incoming batches round-robin over
its writer threads, so neither row order nor a per-bucket file layout
survives it, and it runs in one process. Here each Ray task writes its own
files (ordered, with Delta min/max statistics so scans can skip files) and
returns their :class:`AddAction`; the driver commits all of them at once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.fs import DeltaStorageHandler
from deltalake.transaction import AddAction, create_table_with_add_actions


def table_filesystem(uri: str, storage_options: Mapping[str, str] | None) -> pafs.FileSystem:
    """A pyarrow filesystem rooted at the table (local, S3, GCS, ADLS via deltalake's handler)."""
    if "://" not in uri or uri.startswith("file://"):
        Path(uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    return pafs.PyFileSystem(DeltaStorageHandler(uri, dict(storage_options or {})))


def write_file(
    fs: pafs.FileSystem,
    batches: Iterable[pa.RecordBatch | pa.Table],
    schema: pa.Schema,
    partition: Mapping[str, str] | None = None,
    *,
    data_change: bool = True,
) -> AddAction:
    """Write ``batches`` in order to one new Parquet file and describe it for the Delta log.

    Args:
        fs: the table's filesystem (:func:`table_filesystem`).
        batches: rows, already without the partition columns.
        schema: the file schema.
        partition: partition column values, e.g. ``{"mlray_bucket": "3"}``.
        data_change: False for a rewrite of rows already in the table (compaction).
    """
    prefix = "".join(f"{k}={v}/" for k, v in (partition or {}).items())
    path = f"{prefix}part-{uuid.uuid4()}-c000.snappy.parquet"
    rows, minmax, nulls = 0, [], dict.fromkeys(schema.names, 0)
    with pq.ParquetWriter(path, schema, filesystem=fs, compression="snappy") as writer:
        for batch in batches:
            writer.write(batch) if isinstance(batch, pa.Table) else writer.write_batch(batch)
            rows += batch.num_rows
            if batch.num_rows:
                minmax.append(_minmax(batch))
            nulls = {n: nulls[n] + batch.column(n).null_count for n in schema.names}
    stats = _stats(minmax, rows, nulls)
    return AddAction(
        path,
        fs.get_file_info(path).size,
        dict(partition or {}),
        int(time.time() * 1000),
        data_change,
        stats,
    )


def commit(
    uri: str,
    schema: pa.Schema,
    actions: list[AddAction],
    *,
    mode: str,
    partition_by: list[str] | None = None,
    description: str | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> int:
    """Commit ``actions`` as one transaction (creating the table if needed); return the new version.

    ``schema`` is the table schema including partition columns.
    """
    so = dict(storage_options or {}) or None
    if DeltaTable.is_deltatable(uri, storage_options=so):
        dt = DeltaTable(uri, storage_options=so)
        # A copy typed as deltalake asks (list[AddAction | RemoveAction]; list is invariant).
        dt.create_write_transaction(
            list(actions), mode=mode, schema=Schema.from_arrow(schema), partition_by=partition_by
        )
    else:
        create_table_with_add_actions(
            uri,
            Schema.from_arrow(schema),
            actions,
            mode="overwrite" if mode == "overwrite" else "append",
            partition_by=partition_by,
            description=description,
            storage_options=so,
        )
    return DeltaTable(uri, storage_options=so).version()


def _minmax(batch: pa.RecordBatch | pa.Table) -> dict[str, tuple[Any, Any]]:
    out = {}
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_nested(col.type) or pa.types.is_boolean(col.type):
            continue
        mm = pc.min_max(col)
        out[name] = (mm["min"].as_py(), mm["max"].as_py())
    return out


def _stat_value(value: Any, round_up: bool) -> Any:
    """A min/max as Delta statistics spell it; timestamps in UTC milliseconds, rounded outwards."""
    if not isinstance(value, datetime):
        return value
    value = value.astimezone(UTC)
    if round_up and value.microsecond % 1000:
        value += timedelta(microseconds=1000 - value.microsecond % 1000)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _stats(minmax: list[dict[str, tuple[Any, Any]]], rows: int, nulls: dict[str, int]) -> str:
    names = {n for m in minmax for n in m}
    lo = {
        n: _stat_value(min(m[n][0] for m in minmax if n in m and m[n][0] is not None), False)
        for n in names
        if any(m.get(n, (None,))[0] is not None for m in minmax)
    }
    hi = {
        n: _stat_value(max(m[n][1] for m in minmax if n in m and m[n][1] is not None), True)
        for n in names
        if any(m.get(n, (None, None))[1] is not None for m in minmax)
    }
    return json.dumps({"numRecords": rows, "minValues": lo, "maxValues": hi, "nullCount": nulls})
