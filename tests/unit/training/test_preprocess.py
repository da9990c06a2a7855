"""The statistics behind the spec, and EncodeBatch (encode_frame over a Ray Data batch)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from encoding_sample import EXPECTED, ROWS, SPEC

from mlray.training.preprocess import (
    EncodeBatch,
    merge_stats,
    partial_stats,
    spec_from_stats,
)
from mlray.validation.psi import value_counts


def test_encode_batch_gives_x_and_y():
    table = pa.Table.from_pylist([{**r, "clicked": i == 0} for i, r in enumerate(ROWS)])
    out = EncodeBatch(SPEC, "clicked")(table)
    np.testing.assert_array_equal(out["x"], EXPECTED)
    np.testing.assert_array_equal(out["y"], [1.0, 0.0, 0.0])


def test_block_statistics_merge_to_the_whole_data_statistics():
    rng = np.random.default_rng(0)
    values = rng.normal(5, 2, 1000)
    values[rng.random(1000) < 0.1] = np.nan
    cats = rng.choice(["a", "b", "c"], 1000)
    table = pa.table({"n": pa.array(values, from_pandas=True), "c": cats})
    parts = [partial_stats(table.slice(i, 250), ["n"], ["c"]) for i in range(0, 1000, 250)]
    stats = merge_stats(parts)
    kept = values[~np.isnan(values)]
    assert stats.rows == 1000 and stats.count["n"] == kept.size
    assert math.isclose(stats.mean("n"), kept.mean(), rel_tol=1e-9)
    assert math.isclose(stats.std("n"), kept.std(), rel_tol=1e-6)
    assert stats.values["c"] == {k: int((cats == k).sum()) for k in "abc"}


def test_spec_from_stats_keeps_the_most_frequent_values_sorted_and_safe_stds():
    stats = merge_stats(
        [partial_stats(pa.table({"n": [1.0, 1.0, 1.0], "c": ["z", "y", "z"]}), ["n"], ["c"])]
    )
    spec = spec_from_stats(
        stats, ["n"], ["c"], hidden=[4], embedding_dim=2, dropout=0.0, max_vocab=1
    )
    assert spec.vocab == {"c": ["z"]}
    assert spec.means == [1.0] and spec.stds == [1.0] and spec.fills == [1.0]


def test_value_counts_key_integers_like_category_key():
    assert value_counts(pa.array([3, 3, None, 12])) == {"3": 2, "12": 1}
    assert value_counts(pa.array([3.0, None, 2.5])) == {"3": 1, "2.5": 1}
