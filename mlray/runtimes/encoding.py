"""Feature rows -> the model's float32 input matrix, the same in training and in serving.

:func:`encode_frame` is the one function that turns feature rows (columns
named ``view__feature`` as in the training set, on-demand features included)
into the input matrix a :class:`~mlray.runtimes.model_spec.ModelSpec`
describes. Training encodes its Ray Dataset with it
(:class:`mlray.training.preprocess.EncodeBatch`) and serving calls it on the
rows it fetched, so the two cannot disagree. No torch here: the scoring path
imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlray.errors import SchemaError
from mlray.features.kinds import category_key
from mlray.runtimes.model_spec import ModelSpec


def encode_frame(spec: ModelSpec, data: Any) -> np.ndarray:
    """The model input matrix for feature rows: float32 ``[B, F]`` in ``spec.feature_names`` order.

    Numeric features are raw floats (null -> NaN; the model fills and
    normalizes them); categorical ones are vocabulary codes (unknown or
    null -> 0). Extra columns are ignored.

    Args:
        spec: the model's spec.
        data: a pandas DataFrame, an Arrow table, a dict of columns, or a list
            of ``{feature: value}`` rows.

    Returns:
        The float32 matrix, one row per input row.

    Raises:
        SchemaError: a feature column is missing, or a numeric value is not a number.
    """
    cols = _columns(data)
    missing = [n for n in spec.feature_names if n not in cols]
    if missing:
        raise SchemaError(f"Feature rows lack {missing}; the model reads {spec.feature_names}.")
    n = len(cols[spec.feature_names[0]]) if spec.feature_names else 0
    out = np.empty((n, spec.num_features), dtype=np.float32)
    for j, name in enumerate(spec.numeric):
        out[:, j] = numeric_values(cols[name], name)
    for k, name in enumerate(spec.categorical):
        out[:, len(spec.numeric) + k] = _codes(cols[name], spec.vocab[name])
    return out


def label_array(values: Any, name: str) -> np.ndarray:
    """Labels as float32 0/1.

    Args:
        values: the label column (Arrow, pandas, NumPy or a list).
        name: its name, for the error message.

    Returns:
        float32 ``[N]`` of 0.0 and 1.0.

    Raises:
        SchemaError: a null label, or a value other than 0/1/True/False.
    """
    y = numeric_values(values, name)
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise SchemaError(f"Label column {name!r} must be 0/1 (or boolean) with no nulls.")
    return y.astype(np.float32)


def numeric_values(values: Any, name: str) -> np.ndarray:
    """One numeric column as float64, nulls as NaN.

    Args:
        values: an Arrow array, a NumPy array, a pandas Series or a sequence.
        name: the column's name, for the error message.

    Returns:
        float64 ``[N]``.

    Raises:
        SchemaError: a value is not a number (booleans count as 0/1).
    """
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return _arrow_numeric(values, name)
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64)
    if isinstance(values, pd.Series) and values.dtype != object:
        try:
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as e:
            raise SchemaError(
                f"Numeric feature {name!r} has dtype {values.dtype}; send numbers (or nulls)."
            ) from e
    try:
        return np.asarray(
            [np.nan if v is None or v is pd.NA else v for v in values], dtype=np.float64
        )
    except (TypeError, ValueError) as e:
        raise SchemaError(
            f"Numeric feature {name!r} has a non-numeric value ({e}); send a number or null."
        ) from e


def _arrow_numeric(values: pa.Array | pa.ChunkedArray, name: str) -> np.ndarray:
    if pa.types.is_boolean(values.type):
        values = pc.cast(values, pa.int8())
    if not (
        pa.types.is_integer(values.type)
        or pa.types.is_floating(values.type)
        or pa.types.is_decimal(values.type)
        or pa.types.is_null(values.type)
    ):
        raise SchemaError(
            f"Numeric feature {name!r} has Arrow type {values.type}; send a number (or null)."
        )
    return np.asarray(
        pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )


def _columns(data: Any) -> Mapping[str, Any]:
    """A name -> column view of a DataFrame, Arrow table, dict of columns or list of row dicts."""
    if isinstance(data, pd.DataFrame):
        return {c: data[c] for c in data.columns}
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return {n: data.column(n) for n in data.schema.names}
    if isinstance(data, Mapping):
        return data
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        names: dict[str, None] = {}
        for row in data:
            if not isinstance(row, Mapping):
                raise SchemaError(
                    "Feature rows must be mappings of feature name to value, "
                    f"got {type(row).__name__}."
                )
            names.update(dict.fromkeys(row))
        return {n: [row.get(n) for row in data] for n in names}
    raise SchemaError(
        f"Cannot read features from {type(data).__name__}; pass a DataFrame, an Arrow table, "
        "a dict of columns or a list of row dicts."
    )


def _codes(values: Any, vocab: list[str]) -> np.ndarray:
    """Vocabulary codes (``index + 1``; unknown or null -> 0) as float32."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)) and (
        pa.types.is_string(values.type)
        or pa.types.is_large_string(values.type)
        or pa.types.is_integer(values.type)
    ):
        idx = pc.index_in(pc.cast(values, pa.string()), value_set=pa.array(vocab, pa.string()))
        return np.asarray(
            pc.fill_null(pc.add(idx, 1), 0).to_numpy(zero_copy_only=False), dtype=np.float32
        )
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = values.to_pylist()
    elif isinstance(values, (pd.Series, np.ndarray)):
        values = values.tolist()
    # A null's key is None: never in the vocabulary, so it encodes as 0.
    lookup: dict[str | None, int] = {v: i + 1 for i, v in enumerate(vocab)}
    return np.fromiter(
        (lookup.get(category_key(v), 0) for v in values), dtype=np.float32, count=len(values)
    )
