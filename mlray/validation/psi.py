"""Reference distributions and the population stability index (PSI).

A :class:`Distribution` is what a registered model stores for each feature
(and for its score): bin edges (numeric) or categories (categorical) plus the
share of rows in each bin, with a last bin for nulls. A later training set
or the live traffic is binned with the *reference's* edges and compared:

    PSI = sum_i (a_i - e_i) * ln(a_i / e_i)

with shares clipped at ``EPS`` so empty bins stay finite. The usual reading:
under 0.1 stable, 0.1-0.25 a moderate shift, over 0.25 a major one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlray.errors import ConfigError
from mlray.features.kinds import category_key

EPS = 1e-4
OTHER = "__other__"
MAX_CATEGORIES = 50


@dataclass
class Distribution:
    """Binned shares of one feature (or of the score).

    Attributes:
        kind: ``numeric`` (bins cut at ``edges``) or ``categorical`` (one bin per
            category, then ``__other__``).
        edges: inner cut points, increasing: bins are ``(-inf, e0], (e0, e1], ..., (e_last, inf)``.
        categories: the categories with their own bin.
        proportions: share of rows per bin, the null bin last; sums to 1.
        count: rows the shares were computed over.
    """

    kind: Literal["numeric", "categorical"]
    proportions: list[float]
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    count: int = 0

    @property
    def num_bins(self) -> int:
        """Bins including the null bin."""
        return (len(self.edges) + 2) if self.kind == "numeric" else (len(self.categories) + 2)

    @property
    def null_rate(self) -> float:
        return self.proportions[-1] if self.proportions else 0.0

    def bin_counts(self, values: Any) -> np.ndarray:
        """Counts per bin (null bin last) of ``values`` binned like this distribution."""
        if self.kind == "numeric":
            x = np.asarray(values, dtype=np.float64)
            nulls = np.isnan(x)
            idx = np.searchsorted(np.asarray(self.edges, dtype=np.float64), x[~nulls], side="left")
            counts = np.bincount(idx, minlength=len(self.edges) + 1).astype(np.int64)
            return np.append(counts, int(nulls.sum()))
        pos = {c: i for i, c in enumerate(self.categories)}
        counts = np.zeros(len(self.categories) + 2, dtype=np.int64)
        for v in values:
            if v is None:
                counts[-1] += 1
            else:
                counts[pos.get(v, len(self.categories))] += 1
        return counts

    def with_counts(self, counts: Sequence[int] | np.ndarray) -> Distribution:
        """The same bins with shares from ``counts`` (as returned by :meth:`bin_counts`)."""
        c = np.asarray(counts, dtype=np.float64)
        if c.size != self.num_bins:
            raise ConfigError(f"Expected {self.num_bins} bin counts, got {c.size}.")
        total = float(c.sum())
        props = (c / total).tolist() if total else [0.0] * c.size
        return Distribution(self.kind, props, list(self.edges), list(self.categories), int(total))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Distribution:
        try:
            return cls(
                kind=body["kind"],
                proportions=list(body["proportions"]),
                edges=list(body.get("edges", [])),
                categories=list(body.get("categories", [])),
                count=int(body.get("count", 0)),
            )
        except KeyError as e:
            raise ConfigError(
                f"Reference distribution lacks {e}; it must have 'kind' and 'proportions'."
            ) from e


def numeric_bins(sample: np.ndarray, bins: int) -> Distribution:
    """An empty numeric distribution whose edges are the sample's quantiles (duplicates merged)."""
    x = np.asarray(sample, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return Distribution("numeric", [], [])
    # Edges are observed values (not interpolated), so discrete data gets edges at its own values.
    qs = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
    return Distribution("numeric", [], sorted({float(q) for q in qs}))


def categorical_bins(
    counts: Mapping[str, int], max_categories: int = MAX_CATEGORIES
) -> Distribution:
    """An empty categorical distribution over the most frequent categories."""
    top = sorted(counts, key=lambda k: (-counts[k], k))[:max_categories]
    return Distribution("categorical", [], categories=sorted(top))


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index between two share vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=np.float64), EPS, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), EPS, None)
    if e.shape != a.shape:
        raise ConfigError(f"PSI needs the same bins on both sides, got {e.size} and {a.size}.")
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class Reference:
    """What a model version keeps for drift checks: a distribution per feature and the score's."""

    features: dict[str, Distribution]
    score: Distribution | None = None
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": {k: d.to_dict() for k, d in self.features.items()},
            "score": self.score.to_dict() if self.score else None,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Reference:
        score = body.get("score")
        return cls(
            {k: Distribution.from_dict(d) for k, d in body.get("features", {}).items()},
            Distribution.from_dict(score) if score else None,
            int(body.get("rows", 0)),
        )


def score_distribution(scores: np.ndarray, bins: int = 10) -> Distribution:
    """The score's reference: quantile bins of ``scores`` and their shares."""
    d = numeric_bins(np.asarray(scores, dtype=np.float64), bins)
    return d.with_counts(d.bin_counts(scores))


def value_counts(column: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Counts of each non-null value, keyed by :func:`category_key`."""
    if (
        pa.types.is_string(column.type)
        or pa.types.is_large_string(column.type)
        or pa.types.is_integer(column.type)
    ):
        vc = pc.value_counts(pc.drop_null(pc.cast(column, pa.string())))
        return dict(
            zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)
        )
    keys = pd.Series([category_key(v) for v in column.to_pylist()], dtype=object).dropna()
    return {str(k): int(v) for k, v in keys.value_counts().items()}
