"""Reference distributions and PSI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlray.errors import ConfigError
from mlray.validation.psi import (
    Distribution,
    Reference,
    categorical_bins,
    category_key,
    numeric_bins,
    psi,
    score_distribution,
)


def test_psi_is_zero_for_equal_shares_and_matches_the_formula():
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    e, a = [0.5, 0.5], [0.8, 0.2]
    assert psi(e, a) == pytest.approx(
        (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    )
    assert math.isfinite(psi([1.0, 0.0], [0.0, 1.0]))
    with pytest.raises(ConfigError):
        psi([0.5, 0.5], [1.0])


def test_numeric_bins_use_quantiles_and_put_nulls_last():
    x = np.arange(100, dtype=float)
    d = numeric_bins(x, 4)
    assert d.edges == [24.0, 49.0, 74.0]
    counts = d.bin_counts(np.array([0.0, 24.0, 25.0, 99.0, np.nan]))
    assert counts.tolist() == [2, 1, 0, 1, 1]
    shares = d.with_counts(d.bin_counts(np.append(x, np.nan)))
    assert shares.count == 101 and shares.null_rate == pytest.approx(1 / 101)
    assert sum(shares.proportions) == pytest.approx(1.0)


def test_repeated_values_merge_edges():
    d = numeric_bins(np.array([0.0] * 90 + [1.0] * 10), 10)
    assert d.edges == [0.0]
    assert d.bin_counts(np.array([0.0] * 90 + [1.0] * 10)).tolist() == [90, 10, 0]
    assert numeric_bins(np.array([np.nan]), 10).edges == []


def test_categorical_bins_keep_top_categories_and_an_other_bin():
    d = categorical_bins({"a": 5, "b": 3, "c": 1}, max_categories=2)
    assert d.categories == ["a", "b"]
    assert d.bin_counts(["a", "c", None, "b", "zzz"]).tolist() == [1, 1, 2, 1]


def test_shifted_data_has_large_psi():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 5000)
    ref = numeric_bins(base, 10)
    ref = ref.with_counts(ref.bin_counts(base))
    same = ref.with_counts(ref.bin_counts(rng.normal(0, 1, 5000)))
    moved = ref.with_counts(ref.bin_counts(rng.normal(1.0, 1, 5000)))
    assert psi(ref.proportions, same.proportions) < 0.02
    assert psi(ref.proportions, moved.proportions) > 0.25


def test_reference_round_trips_through_dict():
    ref = Reference(
        {
            "f": Distribution("numeric", [0.5, 0.5, 0.0], [1.0], count=10),
            "g": Distribution("categorical", [1.0, 0.0, 0.0], categories=["x"], count=10),
        },
        score_distribution(np.linspace(0, 1, 50), 5),
        rows=10,
    )
    back = Reference.from_dict(ref.to_dict())
    assert back == ref and back.score.count == 50
    with pytest.raises(ConfigError, match="kind"):
        Distribution.from_dict({"proportions": []})


def test_category_key_normalizes_types():
    assert [category_key(v) for v in ("x", 3, 3.0, 2.5, True, None, float("nan"))] == [
        "x",
        "3",
        "3",
        "2.5",
        "true",
        None,
        None,
    ]
