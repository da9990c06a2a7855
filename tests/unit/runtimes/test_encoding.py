"""encode_frame: feature rows -> the input matrix, the one path training and serving share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from encoding_sample import EXPECTED, ROWS, SPEC

from mlray.errors import SchemaError
from mlray.runtimes.encoding import encode_frame, label_array


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
