"""One line of key figures per check, as the report, ``mlray monitor`` and the quickstart show."""

from __future__ import annotations

from typing import Any

from mlray.monitoring.drift import DriftResult
from mlray.monitoring.freshness import FreshnessResult
from mlray.monitoring.performance import PerformanceResult
from mlray.monitoring.promotion import GateDecision

TOP = 3  # features, views... named per line


def feature_drift(r: DriftResult) -> str:
    """``top PSI: a 0.31 (act), b 0.12 (warn), c 0.02; 13 features: 1 act, 1 warn``."""
    scored = sorted(((v, k) for k, v in r.psi.items() if v is not None), reverse=True)
    if not scored:
        return r.note or f"no verdict: {r.rows:,} rows (min_rows {r.min_rows})"
    top = ", ".join(f"{k} {v:.3f}{_flag(r.status[k])}" for v, k in scored[:TOP])
    counts = {s: sum(st == s for st in r.status.values()) for s in ("act", "warn", "seasonal")}
    parts = [f"{len(r.status)} features over {r.rows:,} rows"]
    parts += [f"{n} {s}" for s, n in counts.items() if n]
    return f"top PSI: {top}; " + ", ".join(parts)


def score_drift(r: DriftResult) -> str:
    """``score PSI v3 0.041 over 300 rows``."""
    if not r.psi:
        return r.note or "no score reference"
    return (
        "; ".join(
            f"score PSI v{k} " + (f"{v:.3f}{_flag(r.status[k])}" if v is not None else r.status[k])
            for k, v in r.psi.items()
        )
        + f" over {r.rows:,} rows"
    )


def performance(r: PerformanceResult) -> str:
    """``v3 champion AUC 0.712 (240 labels, test 0.735); v4 shadow AUC 0.731 (240 labels)``."""
    parts = []
    for f in r.window:
        auc = "no AUC (one class)" if f.auc is None else f"AUC {f.auc:.3f}"
        test = r.test_auc.get(f.model_version)
        extra = f", test {test:.3f}" if test is not None else ""
        parts.append(f"v{f.model_version} {f.role} {auc} ({f.n_labels:,} labels{extra})")
    return "; ".join(parts) or "no labelled predictions"


def promotion(g: GateDecision) -> str:
    head = f"challenger v{g.challenger_version} ready" if g.ready else "not ready"
    return f"{head}: {g.reason}"


def freshness(r: FreshnessResult) -> str:
    """``item_stats lag 1.2 h (limit 2.0 h); ... ; miss rate max 3.0% (user_activity)``."""
    if not r.views:
        return "no feature views"
    by_lag = sorted(r.views, key=lambda v: -(v.lag_s if v.lag_s is not None else float("inf")))
    parts = [
        f"{v.view} {'never materialized' if v.lag_s is None else 'lag ' + _human(v.lag_s)}"
        f" (limit {_human(v.limit_s)})"
        for v in by_lag[:TOP]
    ]
    rates = [(v.miss_rate, v.view) for v in r.views if v.miss_rate is not None]
    if rates:
        rate, view = max(rates)
        parts.append(f"miss rate max {rate:.1%} ({view})")
    return "; ".join(parts)


def skew(r: Any) -> str:
    """The audit's one line: its own ``summary()`` when it has one, else its alerts counted."""
    if hasattr(r, "summary") and callable(r.summary):
        return str(r.summary())
    alerts = r.alerts()
    return f"{len(alerts)} features with skew" if alerts else "no skew found"


def _flag(status: str) -> str:
    return f" ({status})" if status in ("warn", "act") else ""


def _human(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
