"""ShardReader: the first epoch streams (caching what fits), later ones shuffle the cached shard."""

from __future__ import annotations

import torch

from mlray.training.shard_reader import ShardReader, concat

ROWS, FEATURES = 1000, 3
ROW_BYTES = (FEATURES + 1) * 4  # float32 x row plus its float32 label


class Source:
    """A shard stand-in with Ray Data's ``iter_torch_batches`` signature.

    Rows are 0..n-1 (``y`` = row id).
    """

    def __init__(self, rows: int = ROWS) -> None:
        ids = torch.arange(rows, dtype=torch.float32)
        self.x, self.y = ids[:, None].repeat(1, FEATURES), ids
        self.reads: list[dict] = []

    def iter_torch_batches(self, *, batch_size: int, **kwargs):
        self.reads.append({"batch_size": batch_size, **kwargs})
        for i in range(0, len(self.y), batch_size):
            yield {"x": self.x[i : i + batch_size], "y": self.y[i : i + batch_size]}


def ids(batches) -> list[int]:
    out = []
    for x, y in batches:
        assert torch.equal(x[:, 0], y)  # features stay with their label
        out.extend(int(v) for v in y)
    return out


def test_first_epoch_streams_in_order_in_reads_of_several_batches_then_caches():
    src = Source()
    reader = ShardReader(src, 64, per_read=4, prefetch=3, cache_bytes=ROWS * ROW_BYTES)
    batches = list(reader.epoch(0))
    assert [len(y) for _, y in batches] == [64] * 15 + [40]
    assert ids(batches) == list(range(ROWS))
    assert src.reads == [
        {
            "batch_size": 256,
            "dtypes": torch.float32,
            "device": torch.device("cpu"),
            "prefetch_batches": 3,
            "local_shuffle_buffer_size": None,
            "local_shuffle_seed": None,
        }
    ]
    assert reader.cached_rows == ROWS


def test_cached_epochs_are_seeded_permutations_without_reading_the_shard_again():
    src = Source()
    reader = ShardReader(src, 100, cache_bytes=10**6, seed=7)
    list(reader.epoch(0))
    one, two = ids(reader.epoch(1)), ids(reader.epoch(2))
    assert len(src.reads) == 1
    assert sorted(one) == sorted(two) == list(range(ROWS))
    assert one != two and one != list(range(ROWS))
    again = ShardReader(Source(), 100, cache_bytes=10**6, seed=7)
    list(again.epoch(0))
    assert ids(again.epoch(1)) == one  # same seed and epoch, same order


def test_a_shard_over_the_budget_streams_every_epoch():
    src = Source()
    reader = ShardReader(src, 100, per_read=1, cache_bytes=ROWS * ROW_BYTES - 1)
    for epoch in range(3):
        assert ids(reader.epoch(epoch)) == list(range(ROWS))
    assert len(src.reads) == 3 and reader.cached_rows == 0


def test_no_budget_means_no_cache():
    src = Source()
    reader = ShardReader(src, 100)
    list(reader.epoch(0))
    list(reader.epoch(1))
    assert len(src.reads) == 2 and reader.cached_rows == 0


def test_a_pass_stopped_early_is_not_cached():
    src = Source()
    reader = ShardReader(src, 100, per_read=1, cache_bytes=10**6)
    first = reader.epoch(0)
    next(first)
    first.close()
    assert reader.cached_rows == 0
    assert ids(reader.epoch(1)) == list(range(ROWS)) and len(src.reads) == 2


def test_unshuffled_reader_keeps_shard_order_from_memory():
    src = Source()
    reader = ShardReader(src, 300, shuffle=False, shuffle_rows=500, cache_bytes=10**6)
    assert ids(reader.epoch(0)) == list(range(ROWS))
    assert (
        src.reads[0]["local_shuffle_buffer_size"] is None
    )  # shuffle=False wins over a buffer size
    assert ids(reader.epoch(1)) == list(range(ROWS)) and len(src.reads) == 1


def test_streamed_shuffle_buffer_gets_a_seed_per_epoch():
    src = Source()
    reader = ShardReader(src, 100, shuffle_rows=500, seed=3)
    list(reader.epoch(0))
    list(reader.epoch(1))
    assert [r["local_shuffle_buffer_size"] for r in src.reads] == [500, 500]
    seeds = [r["local_shuffle_seed"] for r in src.reads]
    assert seeds[0] != seeds[1]


def test_concat_keeps_dtype_shape_and_values():
    parts = [
        torch.arange(6, dtype=torch.float32).reshape(3, 2),
        torch.arange(6, 10, dtype=torch.float32).reshape(2, 2),
    ]
    out = concat(parts)
    assert out.dtype == torch.float32 and out.shape == (5, 2)
    assert torch.equal(out, torch.cat(parts))
    ints = concat([torch.tensor([1, 2], dtype=torch.int64), torch.tensor([3], dtype=torch.int64)])
    assert ints.dtype == torch.int64 and ints.tolist() == [1, 2, 3]
