"""Drift: PSI of the served features and scores against what the model was trained on.

The reference is what the serving model version registered
(:class:`~mlray.validation.psi.Reference`: per feature column ``view__feature``
and for the score). The served values of a window (:mod:`mlray.monitoring.served`)
are binned with the *reference's* bins (:meth:`Distribution.bin_counts`: the
same numeric edges; categories keyed by :func:`~mlray.features.kinds.category_key`,
unseen ones in ``__other__``; missing values in their own bin) and compared by
the validation stage's :func:`~mlray.validation.psi.psi` (empty bins smoothed at
``EPS``), so training-time and serving-time drift are one computation.

PSI at or above ``drift.warn`` is a warning, at or above ``drift.act`` a breach.
A window with fewer than ``drift.min_rows`` rows gets no verdict (``too_few_rows``).

A feature declared ``Field(..., seasonal=True)`` (e.g. the request's hour of day)
differs from the training data in any window shorter than a day, by design; it
is compared instead with served traffic of the same hours of day on up to
``drift.seasonal_baseline_days`` earlier days (``history_df``), binned with the
reference's bins. Without such history it is reported as ``seasonal`` and never
alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlray.config import Settings
from mlray.errors import DefinitionError, NotFoundError
from mlray.features.kinds import category_key
from mlray.features.repository import FeatureRepository
from mlray.monitoring.alerts import Alert, Gauge
from mlray.monitoring.config import DriftConfig
from mlray.validation.psi import Distribution, Reference, psi

log = logging.getLogger(__name__)

Status = Literal["ok", "warn", "act", "too_few_rows", "seasonal"]
Baseline = Literal["reference", "same_hours", "none"]
FEATURE_GAUGE, SCORE_GAUGE = "mlray_monitor_psi", "mlray_monitor_score_psi"
TIME = "request_time"


@dataclass
class DriftResult:
    """PSI per feature (or of the score), with a status each; a :class:`CheckResult`.

    Attributes:
        check: ``feature_drift`` or ``score_drift``.
        psi: subject -> PSI, None where there is no verdict. Subjects are feature
            refs ``view:feature`` (feature drift) or the model version (score drift).
        status: subject -> ``ok``, ``warn``, ``act``, ``too_few_rows`` or ``seasonal``.
        rows: served rows compared.
        warn, act, min_rows: the thresholds applied.
        baseline: subject -> what it was compared with: ``reference`` (the training
            reference), ``same_hours`` (served traffic of the same hours on earlier
            days; seasonal features) or ``none`` (no verdict).
        baseline_rows: subject -> rows behind the baseline (the reference's count
            for ``reference``).
        not_served: reference features absent from the log's ``features`` (not compared).
        note: why nothing was compared, when nothing was.
    """

    check: Literal["feature_drift", "score_drift"]
    psi: dict[str, float | None]
    status: dict[str, Status]
    rows: int
    warn: float
    act: float
    min_rows: int
    baseline: dict[str, Baseline] = field(default_factory=dict)
    baseline_rows: dict[str, int] = field(default_factory=dict)
    not_served: list[str] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "rows": self.rows,
            "warn": self.warn,
            "act": self.act,
            "min_rows": self.min_rows,
            "psi": {k: _finite(v) for k, v in self.psi.items()},
            "status": dict(self.status),
            "baseline": dict(self.baseline),
            "baseline_rows": dict(self.baseline_rows),
            "not_served": list(self.not_served),
            "note": self.note,
        }

    def alerts(self) -> list[Alert]:
        out = []
        for subject, status in self.status.items():
            value = self.psi.get(subject)
            if status not in ("warn", "act") or value is None:
                continue
            limit = self.act if status == "act" else self.warn
            out.append(
                Alert(
                    self.check,
                    subject,
                    value,
                    limit,
                    "breach" if status == "act" else "warn",
                    self._message(subject, value, limit),
                )
            )
        return out

    def gauges(self) -> list[Gauge]:
        name, tag = (
            (FEATURE_GAUGE, "feature")
            if self.check == "feature_drift"
            else (SCORE_GAUGE, "model_version")
        )
        return [Gauge(name, v, {tag: s}) for s, v in self.psi.items() if v is not None]

    def _message(self, subject: str, value: float, limit: float) -> str:
        what = (
            f"feature {subject}"
            if self.check == "feature_drift"
            else f"the score of model version {subject}"
        )
        against = (
            "the same hours of day on earlier days of served traffic"
            if self.baseline.get(subject) == "same_hours"
            else "the model's training reference"
        )
        return (
            f"PSI {value:.3f} of {what} over {self.rows:,} served rows vs {against} "
            f"(warn at {self.warn}, act at {self.act}; limit crossed: {limit}). Check the "
            "feature's source for a change, or retrain on recent data."
        )


def feature_drift(
    served_df: pd.DataFrame,
    reference: Reference,
    cfg: DriftConfig,
    seasonal: Iterable[str] = frozenset(),
    history_df: pd.DataFrame | None = None,
) -> DriftResult:
    """PSI of each reference feature between the reference and the served window.

    Args:
        served_df: the window's served rows (:func:`~mlray.monitoring.served.served_frame`):
            a ``view__feature`` column per feature and ``request_time``.
        reference: the serving model version's registered reference distributions.
        cfg: thresholds and the seasonal baseline's length.
        seasonal: features compared with earlier served traffic of the same hours
            instead of the reference, as ``view:feature`` or ``view__feature``
            (:func:`seasonal_features`).
        history_df: served rows before the window (up to
            ``cfg.seasonal_baseline_days`` days are used), for the seasonal features.

    Returns:
        A :class:`DriftResult` keyed by ``view:feature``.
    """
    seasonal_cols = {_column(s) for s in seasonal}
    rows = len(served_df)
    out = DriftResult("feature_drift", {}, {}, rows, cfg.warn, cfg.act, cfg.min_rows)
    history = _same_hours(served_df, history_df, cfg.seasonal_baseline_days)
    for col, dist in reference.features.items():
        subject = _ref(col)
        if col not in served_df.columns:
            out.not_served.append(subject)
            continue
        if rows < cfg.min_rows:
            _no_verdict(out, subject, "too_few_rows")
            continue
        actual = dist.with_counts(served_counts(dist, served_df[col]))
        if col not in seasonal_cols:
            value = psi(dist.proportions, actual.proportions)
            _verdict(out, subject, value, cfg, "reference", dist.count)
            continue
        n = 0 if history is None else len(history)
        if history is None or col not in history.columns or n < cfg.min_rows:
            _no_verdict(out, subject, "seasonal", n)  # too little history of the same hours
            continue
        expected = dist.with_counts(served_counts(dist, history[col]))
        _verdict(out, subject, psi(expected.proportions, actual.proportions), cfg, "same_hours", n)
    if not out.psi and not served_df.empty and reference.features:
        out.note = "none of the reference's features is in the log's served features"
    return out


def score_drift(
    served_df: pd.DataFrame,
    reference: Reference,
    cfg: DriftConfig,
    model_version: str | None = None,
) -> DriftResult:
    """PSI of the served scores against the score distribution registered with the model.

    Args:
        served_df: the window's served rows (``score``, ``model_version``).
        reference: the model version's reference (its ``score`` distribution).
        cfg: thresholds.
        model_version: compare only the rows this version scored (the one whose
            reference this is); None: every row (the subject is the one version
            scoring them, or ``all``).

    Returns:
        A :class:`DriftResult` keyed by the model version.
    """
    df = served_df
    if model_version is not None and "model_version" in df.columns:
        df = df[df["model_version"].astype(str) == str(model_version)]
    subject = model_version or _single_version(df)
    out = DriftResult("score_drift", {}, {}, len(df), cfg.warn, cfg.act, cfg.min_rows)
    dist = reference.score
    if dist is None:
        out.note = "the model version registered no score reference; retrain it to get one"
        return out
    if len(df) < cfg.min_rows:
        _no_verdict(out, subject, "too_few_rows")
        return out
    actual = dist.with_counts(served_counts(dist, df["score"]))
    _verdict(out, subject, psi(dist.proportions, actual.proportions), cfg, "reference", dist.count)
    return out


def served_counts(dist: Distribution, values: pd.Series | Iterable[Any]) -> np.ndarray:
    """Counts per bin of served ``values``, binned like ``dist`` (null bin last).

    Numeric: the reference's edges (a value that is not a number counts as
    missing). Categorical: each value keyed by :func:`category_key` (``3``,
    ``3.0`` and ``"3"`` are one category), unseen categories in ``__other__``.
    """
    s = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    if dist.kind == "numeric":
        return dist.bin_counts(pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64))
    return dist.bin_counts([category_key(v) for v in s.tolist()])


def drift_status(value: float, cfg: DriftConfig) -> Status:
    """``act`` at or above ``cfg.act``, ``warn`` at or above ``cfg.warn``, else ``ok``."""
    if value >= cfg.act:
        return "act"
    return "warn" if value >= cfg.warn else "ok"


def seasonal_features(
    settings: Settings, refs: Iterable[str], repo: FeatureRepository | None = None
) -> set[str]:
    """The served columns (``view__feature``) among ``refs`` whose field is declared seasonal.

    Args:
        settings: names the feature repository (``feature_repo``).
        refs: the model's features, as ``view:feature`` (a spec's ``feature_refs``)
            or ``view__feature``.
        repo: the definitions (default: loaded from ``settings.feature_repo``).

    Returns:
        Column names of the seasonal ones; a ref the repository no longer
        defines is skipped (with a warning): it is compared with the reference.
    """
    repo = repo or FeatureRepository.from_module(settings.feature_repo)
    out = set()
    for r in refs:
        ref = _ref(_column(str(r)))
        try:
            if repo.field(ref).seasonal:
                out.add(_column(ref))
        except (NotFoundError, DefinitionError) as e:
            log.warning("Feature %s is not in the repository, so not seasonal: %s", ref, e)
    return out


def _verdict(
    out: DriftResult, subject: str, value: float, cfg: DriftConfig, baseline: Baseline, n: int
) -> None:
    out.psi[subject], out.status[subject] = value, drift_status(value, cfg)
    out.baseline[subject], out.baseline_rows[subject] = baseline, int(n)


def _no_verdict(out: DriftResult, subject: str, status: Status, baseline_rows: int = 0) -> None:
    out.psi[subject], out.status[subject] = None, status
    out.baseline[subject], out.baseline_rows[subject] = "none", baseline_rows


def _same_hours(
    window: pd.DataFrame, history: pd.DataFrame | None, days: int
) -> pd.DataFrame | None:
    """History rows of the window's hours of day (UTC), on up to ``days`` days before it."""
    if history is None or TIME not in window.columns or TIME not in history.columns:
        return None
    if window.empty or history.empty:
        return None
    w = pd.to_datetime(window[TIME], utc=True)
    h = pd.to_datetime(history[TIME], utc=True)
    start = w.min()
    keep = (h < start) & (h >= start - timedelta(days=days)) & h.dt.hour.isin(set(w.dt.hour))
    return history[keep.to_numpy()]


def _single_version(df: pd.DataFrame) -> str:
    versions = df["model_version"].dropna().astype(str).unique() if "model_version" in df else []
    return str(versions[0]) if len(versions) == 1 else "all"


def _column(name: str) -> str:
    """``view:feature`` -> ``view__feature`` (a column name stays as it is)."""
    return name.replace(":", "__", 1) if ":" in name else name


def _ref(column: str) -> str:
    """``view__feature`` -> ``view:feature``."""
    return column.replace("__", ":", 1) if ":" not in column else column


def _finite(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
