"""Calibration metrics, the metrics bundle and the plots (AUC: tests/unit/test_metrics.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mlray.training.evaluate import (
    calibration_bins,
    expected_calibration_error,
    metrics,
    reliability_plot,
    score_histogram,
)


def test_calibration():
    y = np.array([1, 0, 0, 1], float)
    p = np.array([0.9, 0.1, 0.2, 0.6])
    table = calibration_bins(y, p, bins=2)
    assert [b["rows"] for b in table] == [2, 2]
    assert table[0] == {"mean_score": pytest.approx(0.15), "click_rate": 0.0, "rows": 2}
    assert expected_calibration_error(y, p, bins=2) == pytest.approx((2 * 0.15 + 2 * 0.25) / 4)


def test_metrics_bundle():
    m = metrics(np.array([0, 1, 0, 1.0]), np.array([0.1, 0.8, 0.3, 0.6]))
    assert m["auc"] == 1.0 and m["rows"] == 4 and m["click_rate"] == 0.5
    assert set(m) == {"auc", "log_loss", "ece", "rows", "click_rate", "mean_score"}
    assert math.isnan(metrics(np.array([1.0, 1.0]), np.array([0.2, 0.7]))["auc"])


def test_plots_are_png_files(tmp_path: Path):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, 500)
    y = (rng.random(500) < p).astype(float)
    for path in (
        reliability_plot(y, p, tmp_path / "r.png"),
        score_histogram(y, p, tmp_path / "h.png"),
    ):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
