"""Feature preprocessing shared by training and serving: statistics, vocabularies, the input matrix.

:func:`encode_frame` is the one function that turns feature rows (columns
named ``view__feature`` as in the training set, on-demand features included)
into the model's float32 input matrix. Training encodes its Ray Dataset with
it (:class:`EncodeBatch`) and serving calls it on the rows it fetched, so the
two cannot disagree. Statistics are computed per block and merged
(:func:`partial_stats`, :func:`merge_stats`), so nothing is collected to the
driver but the sums.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlray.errors import SchemaError
from mlray.training.model import ModelSpec
from mlray.validation.psi import category_key, value_counts

MAX_VOCAB = 10_000


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
                    f"Feature rows must be mappings of feature name to value, got {type(row).__name__}."
                )
            names.update(dict.fromkeys(row))
        return {n: [row.get(n) for row in data] for n in names}
    raise SchemaError(
        f"Cannot read features from {type(data).__name__}; pass a DataFrame, an Arrow table, "
        "a dict of columns or a list of row dicts."
    )


def _numeric(values: Any, name: str) -> np.ndarray:
    """A float64 column; nulls become NaN."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
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
    if isinstance(values, (pa.Array, pa.ChunkedArray, pd.Series, np.ndarray)):
        values = (
            values.tolist()
            if not isinstance(values, (pa.Array, pa.ChunkedArray))
            else values.to_pylist()
        )
    lookup = {v: i + 1 for i, v in enumerate(vocab)}
    return np.fromiter(
        (lookup.get(category_key(v), 0) for v in values), dtype=np.float32, count=len(values)
    )


def encode_frame(spec: ModelSpec, data: Any) -> np.ndarray:
    """The model input matrix for feature rows: float32 ``[B, F]`` in ``spec.feature_names`` order.

    Numeric features are raw floats (null -> NaN; the model fills and
    normalizes them); categorical ones are vocabulary codes (unknown or
    null -> 0). Extra columns are ignored.

    Args:
        spec: the model's spec.
        data: a pandas DataFrame, an Arrow table, a dict of columns, or a list
            of ``{feature: value}`` rows.

    Raises:
        SchemaError: a feature column is missing, or a numeric value is not a number.
    """
    cols = _columns(data)
    missing = [n for n in spec.feature_names if n not in cols]
    if missing:
        raise SchemaError(f"Feature rows lack {missing}; the model reads {spec.feature_names}.")
    n = len(next(iter(cols[c] for c in spec.feature_names))) if spec.feature_names else 0
    out = np.empty((n, spec.num_features), dtype=np.float32)
    for j, name in enumerate(spec.numeric):
        out[:, j] = _numeric(cols[name], name)
    for k, name in enumerate(spec.categorical):
        out[:, len(spec.numeric) + k] = _codes(cols[name], spec.vocab[name])
    return out


def label_array(values: Any, name: str) -> np.ndarray:
    """Labels as float32 0/1.

    Raises:
        SchemaError: a null label, or a value other than 0/1/True/False.
    """
    y = _numeric(values, name)
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise SchemaError(f"Label column {name!r} must be 0/1 (or boolean) with no nulls.")
    return y.astype(np.float32)


class EncodeBatch:
    """``map_batches`` function: Arrow batch -> ``{"x": float32[B, F], "y": float32[B]}`` via :func:`encode_frame`."""

    def __init__(self, spec: ModelSpec, label: str) -> None:
        self.spec, self.label = spec, label

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        return {
            "x": encode_frame(self.spec, batch),
            "y": label_array(batch.column(self.label), self.label),
        }


# -- statistics --------------------------------------------------------------------
@dataclass
class FeatureStats:
    """Merged per-feature statistics of a dataset (train slice) for normalization and vocabularies."""

    rows: int = 0
    count: dict[str, int] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    total_sq: dict[str, float] = field(default_factory=dict)
    values: dict[str, dict[str, int]] = field(default_factory=dict)

    def mean(self, c: str) -> float:
        return self.total[c] / self.count[c] if self.count.get(c) else 0.0

    def std(self, c: str) -> float:
        n = self.count.get(c, 0)
        if n < 2:
            return 1.0
        var = max(self.total_sq[c] / n - self.mean(c) ** 2, 0.0)
        return math.sqrt(var) if var > 1e-12 else 1.0


def partial_stats(
    batch: pa.Table, numeric: Sequence[str], categorical: Sequence[str]
) -> dict[str, Any]:
    """Sums, squared sums, non-null counts and value counts of one block (merged by :func:`merge_stats`)."""
    part: dict[str, Any] = {
        "rows": batch.num_rows,
        "count": {},
        "total": {},
        "total_sq": {},
        "values": {},
    }
    for c in numeric:
        x = _numeric(batch.column(c), c)
        x = x[~np.isnan(x)]
        part["count"][c], part["total"][c], part["total_sq"][c] = (
            int(x.size),
            float(x.sum()),
            float((x * x).sum()),
        )
    for c in categorical:
        part["values"][c] = value_counts(batch.column(c))
    return part


def merge_stats(parts: Sequence[Mapping[str, Any]]) -> FeatureStats:
    """Sum per-block statistics into one :class:`FeatureStats`."""
    out = FeatureStats()
    for p in parts:
        out.rows += int(p["rows"])
        for key in ("count", "total", "total_sq"):
            target = getattr(out, key)
            for c, v in p[key].items():
                target[c] = target.get(c, 0) + v
        for c, counts in p["values"].items():
            merged = out.values.setdefault(c, {})
            for k, v in counts.items():
                merged[k] = merged.get(k, 0) + v
    return out


def spec_from_stats(
    stats: FeatureStats,
    numeric: Sequence[str],
    categorical: Sequence[str],
    *,
    hidden: list[int],
    embedding_dim: int,
    dropout: float,
    feature_refs: Sequence[str] = (),
    label: str = "clicked",
    label_time: str = "event_time",
    max_vocab: int = MAX_VOCAB,
) -> ModelSpec:
    """A :class:`ModelSpec` whose normalization and vocabularies come from ``stats``.

    A null numeric input is filled with the training mean (0 after normalization);
    each vocabulary keeps the ``max_vocab`` most frequent values, sorted for stability.
    """
    vocab = {}
    for c in categorical:
        counts = stats.values.get(c, {})
        top = sorted(counts, key=lambda k: (-counts[k], k))[:max_vocab]
        vocab[c] = sorted(top)
    return ModelSpec(
        numeric=list(numeric),
        categorical=list(categorical),
        vocab=vocab,
        means=[stats.mean(c) for c in numeric],
        stds=[stats.std(c) for c in numeric],
        fills=[stats.mean(c) for c in numeric],
        hidden=list(hidden),
        embedding_dim=embedding_dim,
        dropout=dropout,
        feature_refs=list(feature_refs),
        label=label,
        label_time=label_time,
    )
