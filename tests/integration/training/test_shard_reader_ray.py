"""ShardReader over a real Ray Data iterator: the tensors it caches are the dataset's rows, once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import ray.data
import torch
from ray.data.extensions import ArrowTensorArray

from mlray.training.shard_reader import ShardReader


def test_real_iterator_is_streamed_once_then_served_shuffled_from_memory(ray_session: None):
    n = 5000
    x = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float32)
    tables = [
        pa.table({"x": ArrowTensorArray.from_numpy(x[i]), "y": x[i, 0]})
        for i in np.array_split(np.arange(n), 5)
    ]
    ds = ray.data.from_arrow(tables).materialize()
    reader = ShardReader(ds.iterator(), 128, per_read=8, cache_bytes=10 * n * 12, seed=1)

    first = list(reader.epoch(0))
    assert reader.cached_rows == n
    streamed = torch.cat([y for _, y in first])
    assert sorted(streamed.tolist()) == list(range(n))
    second = list(reader.epoch(1))
    assert [len(y) for _, y in second] == [128] * (n // 128) + [n % 128]
    xs, ys = torch.cat([b for b, _ in second]), torch.cat([y for _, y in second])
    assert sorted(ys.tolist()) == list(range(n)) and ys.tolist() != streamed.tolist()
    assert torch.equal(xs[:, 0], ys) and torch.equal(
        xs[:, 1], -ys
    )  # every row keeps its features and label
