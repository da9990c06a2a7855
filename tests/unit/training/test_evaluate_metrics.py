"""Test-slice metrics against brute-force definitions, and the plots."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlray.training.evaluate import (
    calibration_bins,
    expected_calibration_error,
    log_loss,
    metrics,
    reliability_plot,
    roc_auc,
    score_histogram,
)


def pairwise_auc(y, p) -> float:
    pos = [s for s, t in zip(p, y) if t]
    neg = [s for s, t in zip(p, y) if not t]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9])),
        min_size=2,
        max_size=40,
    )
)
def test_auc_equals_the_pairwise_definition_with_ties(pairs):
    y = np.array([a for a, _ in pairs], float)
    p = np.array([b for _, b in pairs])
    if y.min() == y.max():
        assert np.isnan(roc_auc(y, p))
    else:
        assert roc_auc(y, p) == pytest.approx(pairwise_auc(y, p))


def test_log_loss_and_calibration():
    y = np.array([1, 0, 0, 1], float)
    p = np.array([0.9, 0.1, 0.2, 0.6])
    assert log_loss(y, p) == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.8, 0.6])))
    assert np.isfinite(log_loss(np.array([1.0]), np.array([0.0])))
    table = calibration_bins(y, p, bins=2)
    assert [b["rows"] for b in table] == [2, 2]
    assert table[0] == {"mean_score": pytest.approx(0.15), "click_rate": 0.0, "rows": 2}
    assert expected_calibration_error(y, p, bins=2) == pytest.approx((2 * 0.15 + 2 * 0.25) / 4)


def test_metrics_bundle():
    m = metrics(np.array([0, 1, 0, 1.0]), np.array([0.1, 0.8, 0.3, 0.6]))
    assert m["auc"] == 1.0 and m["rows"] == 4 and m["click_rate"] == 0.5
    assert set(m) == {"auc", "log_loss", "ece", "rows", "click_rate", "mean_score"}


def test_plots_are_png_files(tmp_path: Path):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, 500)
    y = (rng.random(500) < p).astype(float)
    for path in (
        reliability_plot(y, p, tmp_path / "r.png"),
        score_histogram(y, p, tmp_path / "h.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
