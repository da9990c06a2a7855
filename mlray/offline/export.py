"""Writing training sets to Parquet or Delta (labels are read by :mod:`mlray.offline.labels`)."""

from __future__ import annotations

import deltalake
import pyarrow as pa

from mlray.offline.training_set import TrainingSet


def write_training_set(ts: TrainingSet, out: str, *, delta: bool = False) -> int:
    """Write the rows, return their count; a Delta write is one commit that overwrites ``out``."""
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
            list(zip(first.names, first.types, strict=True))
        )
        deltalake.write_deltalake(
            out, pa.RecordBatchReader.from_batches(schema, batches()), mode="overwrite"
        )
        return rows
    ds = ts.dataset.materialize()  # run the join once, then write and count the same blocks
    ds.write_parquet(out)
    return ds.count()
