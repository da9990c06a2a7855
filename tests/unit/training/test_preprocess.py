"""encode_frame (the one training/serving preprocessing path) and the statistics behind the spec."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlray.errors import SchemaError
from mlray.training.model import ModelSpec
from mlray.training.preprocess import (
    EncodeBatch,
    encode_frame,
    label_array,
    merge_stats,
    partial_stats,
    spec_from_stats,
    value_counts,
)

SPEC = ModelSpec(
    numeric=["u__ctr", "i__pop"],
    categorical=["c__category", "r__hour"],
    vocab={"c__category": ["books", "toys"], "r__hour": ["0", "13", "7"]},
    means=[0.1, 100.0],
    stds=[0.05, 50.0],
    fills=[0.1, 100.0],
)
ROWS = [
    {"u__ctr": 0.2, "i__pop": 40, "c__category": "toys", "r__hour": 13, "extra": "ignored"},
    {"u__ctr": None, "i__pop": 7.5, "c__category": None, "r__hour": 7},
    {"u__ctr": 0.05, "i__pop": None, "c__category": "garden", "r__hour": 22},
]
EXPECTED = np.array([[0.2, 40, 2, 2], [np.nan, 7.5, 0, 3], [0.05, np.nan, 0, 0]], dtype=np.float32)


def test_rows_encode_to_the_input_matrix():
    x = encode_frame(SPEC, ROWS)
    assert x.dtype == np.float32 and x.shape == (3, 4)
    np.testing.assert_array_equal(x, EXPECTED)


@pytest.mark.parametrize(
    "make",
    [
        lambda: pd.DataFrame(ROWS),
        lambda: pa.Table.from_pylist(ROWS),
        lambda: {
            k: [r.get(k) for r in ROWS] for k in ("u__ctr", "i__pop", "c__category", "r__hour")
        },
        lambda: pa.Table.from_pylist(ROWS).to_pandas(types_mapper=pd.ArrowDtype),
    ],
)
def test_every_input_form_gives_the_same_matrix(make):
    np.testing.assert_array_equal(encode_frame(SPEC, make()), EXPECTED)


def test_integral_categories_match_whatever_their_type():
    for hour in (13, 13.0, "13", np.int64(13)):
        assert (
            encode_frame(SPEC, [{"u__ctr": 0, "i__pop": 0, "c__category": "x", "r__hour": hour}])[
                0, 3
            ]
            == 2
        )


def test_missing_feature_is_a_schema_error_naming_it():
    with pytest.raises(SchemaError, match="i__pop"):
        encode_frame(SPEC, [{"u__ctr": 0.1, "c__category": "toys", "r__hour": 1}])


def test_non_numeric_value_is_a_schema_error_naming_the_feature():
    with pytest.raises(SchemaError, match="u__ctr"):
        encode_frame(SPEC, [{"u__ctr": "high", "i__pop": 1, "c__category": "toys", "r__hour": 1}])
    with pytest.raises(SchemaError, match="u__ctr"):
        encode_frame(
            SPEC, pa.table({"u__ctr": ["x"], "i__pop": [1], "c__category": ["a"], "r__hour": [1]})
        )


def test_label_array_accepts_booleans_and_refuses_nulls():
    np.testing.assert_array_equal(label_array(pa.array([True, False]), "clicked"), [1.0, 0.0])
    with pytest.raises(SchemaError, match="clicked"):
        label_array(pa.array([True, None]), "clicked")
    with pytest.raises(SchemaError, match="clicked"):
        label_array([0, 2], "clicked")


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
