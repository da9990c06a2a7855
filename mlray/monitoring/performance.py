"""Delayed-label performance: AUC, log loss and calibration per model version and day.

:func:`load_labels` and :func:`join_labels` (:mod:`mlray.monitoring.labels`)
attach the landed labels to the logged predictions; :func:`performance`
computes, per model version (the champion's ``score`` and the shadow's
``shadow_score``), over the window and per UTC day of the request: AUC, log
loss, a calibration table, and the number of labels behind each figure.

AUC and log loss are :mod:`mlray.metrics`' (the ones the registered test AUC
was computed with): tied scores count one half, a single class has no AUC
(None), probabilities are clipped to ``[1e-7, 1 - 1e-7]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlray.metrics import log_loss, roc_auc
from mlray.monitoring.alerts import Alert, Gauge
from mlray.monitoring.config import LabelsConfig
from mlray.monitoring.labels import JOINED_COLUMNS, LABEL, join_labels, load_labels

__all__ = [
    "JOINED_COLUMNS",
    "LABEL",
    "CalibrationBin",
    "Figures",
    "PerformanceResult",
    "calibration_bins",
    "join_labels",
    "load_labels",
    "performance",
    "registered_test_auc",
]


@dataclass(frozen=True)
class CalibrationBin:
    """Predictions with ``lo <= score < hi`` (the last bin includes 1): mean score vs clicks."""

    lo: float
    hi: float
    n: int
    mean_score: float | None
    observed_rate: float | None


@dataclass(frozen=True)
class Figures:
    """One model version's delayed-label figures over the window (``day`` None) or one UTC day.

    Attributes:
        role: ``champion`` (the logged ``score``) or ``shadow`` (``shadow_score``).
        model_version: the registered version that scored.
        day: ``YYYY-MM-DD`` of the requests, None for the whole window.
        n_labels: labelled predictions behind the figures; positives: how many were clicks.
        auc: None when the labels hold one class only.
        log_loss: mean binary cross-entropy (nats).
        calibration: per score bin, mean predicted vs observed rate.
        calibration_error: sum over bins of share of rows x |mean score - observed rate|.
    """

    role: str
    model_version: str
    day: str | None
    n_labels: int
    positives: int
    auc: float | None
    log_loss: float | None
    calibration: list[CalibrationBin]
    calibration_error: float | None


@dataclass
class PerformanceResult:
    """Delayed-label figures per model version, over the window and per day (a CheckResult)."""

    window: list[Figures]
    daily: list[Figures]
    test_auc: dict[str, float] = field(default_factory=dict)
    min_auc_drop: float = 0.05
    min_labels: int = 100

    def figures(self, version: str, role: str = "champion", day: str | None = None) -> Figures:
        """The figures of ``version`` in ``role`` over the window (or on ``day``).

        Raises:
            KeyError: that version has no labelled predictions in that role (and day).
        """
        for f in self.window if day is None else self.daily:
            if f.model_version == str(version) and f.role == role and f.day == day:
                return f
        raise KeyError(f"No labelled {role} predictions of version {version} (day {day}).")

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": [asdict(f) for f in self.window],
            "daily": [asdict(f) for f in self.daily],
            "test_auc": dict(self.test_auc),
            "min_auc_drop": self.min_auc_drop,
            "min_labels": self.min_labels,
        }

    def alerts(self) -> list[Alert]:
        """A version whose window AUC is ``min_auc_drop`` or more below its registered test AUC.

        A breach for the champion, a warning for the shadow; versions with fewer than
        ``min_labels`` labels, a single class or no registered test AUC are not judged.
        """
        out = []
        for f in self.window:
            test = self.test_auc.get(f.model_version)
            if f.auc is None or test is None or f.n_labels < self.min_labels:
                continue
            drop = test - f.auc
            if drop > 0 and drop >= self.min_auc_drop:
                out.append(
                    Alert(
                        check="performance",
                        subject=f"v{f.model_version} ({f.role})",
                        value=drop,
                        limit=self.min_auc_drop,
                        severity="breach" if f.role == "champion" else "warn",
                        message=f"Model version {f.model_version} ({f.role}): delayed-label AUC "
                        f"{f.auc:.4f} over {f.n_labels} labels is {drop:.4f} below its test AUC "
                        f"{test:.4f} (limit {self.min_auc_drop}); retrain on recent data, and "
                        "check feature drift and skew.",
                    )
                )
        return out

    def gauges(self) -> list[Gauge]:
        """Window figures per version: ``mlray_monitor_auc``, ``_log_loss``, ``_labels``."""
        out = []
        for f in self.window:
            tags = {"model_version": f.model_version, "role": f.role}
            for name, value in (
                ("mlray_monitor_auc", f.auc),
                ("mlray_monitor_log_loss", f.log_loss),
                ("mlray_monitor_labels", f.n_labels),
            ):
                if value is not None:
                    out.append(Gauge(name, float(value), tags))
        return out


def performance(
    joined: pd.DataFrame,
    cfg: LabelsConfig,
    test_auc: Mapping[str, float] | None = None,
    min_auc_drop: float = 0.05,
) -> PerformanceResult:
    """AUC, log loss and calibration per model version, over the window and per day.

    Args:
        joined: :func:`join_labels`' rows.
        cfg: calibration bins and ``min_labels`` for the AUC alert.
        test_auc: version -> its registered test AUC (:func:`registered_test_auc`), for the alert.
        min_auc_drop: AUC this far below the test AUC is an alert (``MonitorConfig.min_auc_drop``).
    """
    if "day" not in joined.columns:
        joined = joined.assign(
            day=pd.to_datetime(joined["request_time"], utc=True).dt.strftime("%Y-%m-%d")
        )
    parts = [("champion", joined["model_version"], joined["score"])]
    if "shadow_score" in joined.columns:
        parts.append(("shadow", joined["shadow_version"], joined["shadow_score"]))
    window, daily = [], []
    for role, versions, scores in parts:
        ok = versions.notna() & scores.notna()
        frame = pd.DataFrame(
            {
                "v": versions[ok].astype(str),
                "day": joined.loc[ok, "day"],
                "p": scores[ok].astype("float64"),
                "y": joined.loc[ok, LABEL].astype("float64"),
            }
        )
        for v, rows in frame.groupby("v", sort=True):
            window.append(_figures(role, str(v), None, rows, cfg.calibration_bins))
            for day, d_rows in rows.groupby("day", sort=True):
                daily.append(_figures(role, str(v), str(day), d_rows, cfg.calibration_bins))
    return PerformanceResult(
        window, daily, dict(test_auc or {}), float(min_auc_drop), cfg.min_labels
    )


def _figures(role: str, version: str, day: str | None, rows: pd.DataFrame, bins: int) -> Figures:
    y, p = rows["y"].to_numpy(), rows["p"].to_numpy()
    calibration = calibration_bins(y, p, bins)
    gaps = [b.n * abs((b.mean_score or 0.0) - (b.observed_rate or 0.0)) for b in calibration]
    ece = float(sum(gaps) / y.size) if y.size else None
    return Figures(
        role=role,
        model_version=version,
        day=day,
        n_labels=int(y.size),
        positives=int(y.sum()),
        auc=_finite(roc_auc(y, p)),
        log_loss=_finite(log_loss(y, p)),
        calibration=calibration,
        calibration_error=ece,
    )


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int) -> list[CalibrationBin]:
    """Equal-width score bins over [0, 1]: rows, mean score and observed click rate of each."""
    idx = np.clip(np.floor(np.asarray(p, float) * bins).astype(np.int64), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        out.append(
            CalibrationBin(
                lo=b / bins,
                hi=(b + 1) / bins,
                n=n,
                mean_score=float(p[m].mean()) if n else None,
                observed_rate=float(y[m].mean()) if n else None,
            )
        )
    return out


def registered_test_auc(client: Any, model_name: str, versions: list[str]) -> dict[str, float]:
    """Version -> the ``test_auc`` its registration recorded (a version tag, as the pipeline
    writes its ``test_*`` metrics); versions without one are left out.

    Raises:
        mlflow.exceptions.MlflowException: a version does not exist.
    """
    from mlray.registry.champion import TEST_PREFIX

    out = {}
    for v in dict.fromkeys(str(v) for v in versions):
        tags = client.get_model_version(model_name, v).tags or {}
        value = tags.get(f"{TEST_PREFIX}auc")
        if value is not None and math.isfinite(float(value)):
            out[v] = float(value)
    return out


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
