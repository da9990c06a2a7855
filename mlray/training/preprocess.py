"""Training-side preprocessing: feature statistics, vocabularies and the spec built from them.

Statistics are computed per block and merged (:func:`partial_stats`,
:func:`merge_stats`), so nothing is collected to the driver but the sums;
:func:`spec_from_stats` turns them into the
:class:`~mlray.runtimes.model_spec.ModelSpec`. The rows themselves are
encoded by :func:`mlray.runtimes.encoding.encode_frame`, the function serving
uses too (:class:`EncodeBatch` applies it to a Ray Dataset).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mlray.runtimes.encoding import encode_frame, label_array, numeric_values
from mlray.runtimes.model_spec import ModelSpec
from mlray.validation.psi import value_counts

MAX_VOCAB = 10_000


class EncodeBatch:
    """``map_batches`` function: Arrow batch -> ``{"x": float32[B, F], "y": float32[B]}``.

    Args:
        spec: the model's spec (:func:`~mlray.runtimes.encoding.encode_frame` reads it).
        label: the label column.
    """

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
    """Merged per-feature statistics of the train slice, for normalization and vocabularies."""

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
    """Sums, squared sums, non-null counts and value counts of one block.

    Args:
        batch: one block of the train slice.
        numeric: its numeric feature columns.
        categorical: its categorical feature columns.

    Returns:
        A plain dict, merged by :func:`merge_stats`.
    """
    part: dict[str, Any] = {
        "rows": batch.num_rows,
        "count": {},
        "total": {},
        "total_sq": {},
        "values": {},
    }
    for c in numeric:
        x = numeric_values(batch.column(c), c)
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
    """Sum per-block statistics into one :class:`FeatureStats`.

    Args:
        parts: the outputs of :func:`partial_stats`.

    Returns:
        The merged statistics.
    """
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

    Args:
        stats: the train slice's statistics.
        numeric: numeric feature columns, in input order.
        categorical: categorical feature columns, after the numeric ones.
        hidden: hidden layer widths.
        embedding_dim: size of each categorical embedding.
        dropout: dropout after each hidden layer.
        feature_refs: the ``view:feature`` refs, in column order.
        label: the label column.
        label_time: the label time column.
        max_vocab: the most values one vocabulary keeps.

    Returns:
        The spec.
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
