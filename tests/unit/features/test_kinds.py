"""Which columns are categorical, and how a categorical value is keyed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from mlray.features.kinds import categorical_columns, category_key


def test_string_columns_and_forced_ones_are_categorical_in_column_order():
    dtypes = {
        "price": pa.float64(),
        "device": pa.string(),
        "item_id": pa.int64(),
        "country": pa.large_string(),
        "clicked": pa.bool_(),
    }
    assert categorical_columns(dtypes, ["item_id"]) == ["device", "item_id", "country"]
    assert categorical_columns(dtypes, []) == ["device", "country"]
    assert categorical_columns({}, ["missing"]) == []


def test_category_key_normalizes_types():
    values = ("x", 3, 3.0, np.int64(3), 2.5, True, np.bool_(False), None, float("nan"), pd.NA)
    assert [category_key(v) for v in values] == [
        "x", "3", "3", "3", "2.5", "true", "false", None, None, None,
    ]  # fmt: skip
