"""Reading label tables and writing training sets to Parquet or Delta."""

from __future__ import annotations

from pathlib import Path

import deltalake
import pyarrow as pa
import ray.data

from mlray.config import Settings
from mlray.errors import NotFoundError
from mlray.offline.training_set import TrainingSet


def read_table(path: str, settings: Settings) -> ray.data.Dataset:
    """A Delta table (directory with ``_delta_log``) or Parquet file/directory as a Ray Dataset."""
    if "://" not in path and not Path(path).exists():
        raise NotFoundError(
            f"Labels table {path} does not exist; give a Delta table directory or a Parquet path."
        )
    if deltalake.DeltaTable.is_deltatable(path, storage_options=settings.storage_options or None):
        return ray.data.read_delta(path, storage_options=settings.storage_options or None)
    return ray.data.read_parquet(path)


def write_training_set(ts: TrainingSet, out: str, *, delta: bool = False) -> int:
    """Write the rows; Delta writes are one atomic commit that overwrites ``out``. Returns the row count."""
    if delta:
        rows = 0
        schema = None

        def batches():
            nonlocal rows, schema
            for t in ts.dataset.iter_batches(batch_format="pyarrow", batch_size=None):
                rows += t.num_rows
                yield from t.to_batches()

        first = ts.dataset.schema()
        schema = getattr(first, "base_schema", None) or pa.schema(
            list(zip(first.names, first.types))
        )
        deltalake.write_deltalake(
            out, pa.RecordBatchReader.from_batches(schema, batches()), mode="overwrite"
        )
        return rows
    ds = ts.dataset.materialize()  # run the join once, then write and count the same blocks
    ds.write_parquet(out)
    return ds.count()
