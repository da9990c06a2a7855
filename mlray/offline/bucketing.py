"""Stable entity-hash buckets, shared by feature tables and the labels joined to them.

The hash is pandas' SipHash with its fixed key over the key values
normalised to int64 (integers) or str (strings), so it is the same in every
process, on every machine and across runs: a label and a feature row of the
same entity always land in the same bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

BUCKET = "mlray_bucket"


def bucket_of(table: pa.Table, keys: Sequence[str], num_buckets: int) -> np.ndarray:
    """Bucket number (int32) of every row, from its join key values."""
    frame = pd.DataFrame({k: _normalised(table.column(k)) for k in keys})
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return (hashes % np.uint64(num_buckets)).astype(np.int32)


def with_bucket(table: pa.Table, keys: Sequence[str], num_buckets: int) -> pa.Table:
    """``table`` plus the bucket column (replacing an existing one)."""
    buckets = pa.array(bucket_of(table, keys, num_buckets), pa.int32())
    if BUCKET in table.column_names:
        return table.set_column(table.schema.get_field_index(BUCKET), BUCKET, buckets)
    return table.append_column(BUCKET, buckets)


def _normalised(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_integer(col.type):
        return col.cast(pa.int64()).to_numpy()
    return np.asarray(col.cast(pa.string()).to_pylist(), dtype=object)
