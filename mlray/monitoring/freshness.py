"""Freshness per feature view: how far the online store lags, how old served values were, misses.

Three figures per stored view (request-time views have nothing materialized
and are skipped):

* lag: ``now`` minus the newest event time materialized in the online store
  (the store's own bookkeeping, :func:`mlray.online.freshness.view_freshness`);
* age of the values served: request time minus the event time of the values
  each logged prediction got for the view (p50, p95, max over the window);
* miss rate: the share of lookups of the view that found no row (no key, or
  one past its TTL at the request time), so the model saw nulls or defaults.

Degraded predictions (the store was down and every default was served) are
not lookups: they are counted apart. A view whose lag is past its limit
(``freshness.limits_s[view]``, else ``freshness.default_limit_s``) is a
``breach``; so is a view that served traffic reads but nothing was ever
materialized for (its alert's ``value`` is -1: there is no lag to measure).
A miss rate above ``freshness.max_miss_rate`` is a ``warn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from mlray.config import Settings
from mlray.features.repository import FeatureRepository
from mlray.features.times import to_datetime, to_us
from mlray.monitoring.alerts import Alert, Gauge
from mlray.monitoring.config import FreshnessConfig
from mlray.monitoring.recompute import degraded_mask
from mlray.online.protocol import OnlineStore

QUANTILES: dict[str, float] = {"p50": 50.0, "p95": 95.0, "max": 100.0}


@dataclass(frozen=True)
class ViewFigures:
    """One stored view's freshness at ``now``.

    Attributes:
        view: the feature view.
        newest_event_time: the newest event time materialized online (None: never).
        lag_s: ``now - newest_event_time`` in seconds (None: never materialized).
        limit_s: the lag allowed.
        lookups: logged, non-degraded predictions that read the view.
        misses: of those, the ones that found no row (null event time in the log).
        served_age_s: ``p50``/``p95``/``max`` of request time minus served event time
            over the lookups that found a row (None without any).
    """

    view: str
    newest_event_time: datetime | None
    lag_s: float | None
    limit_s: float
    lookups: int
    misses: int
    served_age_s: dict[str, float | None]

    @property
    def miss_rate(self) -> float | None:
        return self.misses / self.lookups if self.lookups else None

    @property
    def status(self) -> str:
        """``ok``, ``stale`` (lag past the limit) or ``not_materialized``."""
        if self.lag_s is None:
            return "not_materialized"
        return "stale" if self.lag_s > self.limit_s else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "newest_event_time": _iso(self.newest_event_time),
            "lag_s": self.lag_s,
            "limit_s": self.limit_s,
            "status": self.status,
            "lookups": self.lookups,
            "misses": self.misses,
            "miss_rate": self.miss_rate,
            "served_age_s": dict(self.served_age_s),
        }


@dataclass(frozen=True)
class FreshnessResult:
    """Freshness of every stored view (a :class:`~mlray.monitoring.alerts.CheckResult`).

    Attributes:
        now: the time lags are measured at.
        views: per view, in name order.
        rows: logged predictions in the window.
        degraded_rows: of those, served while the store was down (not counted as lookups).
        max_miss_rate: the miss rate above which a view warns.
    """

    now: datetime
    views: list[ViewFigures]
    rows: int
    degraded_rows: int
    max_miss_rate: float
    _by_name: dict[str, ViewFigures] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {v.view: v for v in self.views})

    def view(self, name: str) -> ViewFigures:
        """The figures of view ``name`` (KeyError when it was not checked)."""
        return self._by_name[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": _iso(self.now),
            "rows": self.rows,
            "degraded_rows": self.degraded_rows,
            "max_miss_rate": self.max_miss_rate,
            "views": [v.to_dict() for v in self.views],
        }

    def alerts(self) -> list[Alert]:
        out = []
        for v in self.views:
            if v.status == "stale":
                out.append(
                    Alert(
                        "freshness",
                        v.view,
                        float(v.lag_s or 0.0),
                        v.limit_s,
                        "breach",
                        f"Feature view {v.view!r} is {_human(v.lag_s)} behind (newest "
                        f"materialized event {_iso(v.newest_event_time)}), past its limit of "
                        f"{_human(v.limit_s)}; run `mlray features build` for the recent "
                        "window and `mlray materialize --incremental`, or check the scheduled job.",
                    )
                )
            elif v.status == "not_materialized" and v.lookups:
                out.append(
                    Alert(
                        "freshness",
                        v.view,
                        -1.0,
                        v.limit_s,
                        "breach",
                        f"Feature view {v.view!r} is read by served traffic ({v.lookups} "
                        "lookups) but nothing was ever materialized to the online store; run "
                        "`mlray materialize --incremental`.",
                    )
                )
            rate = v.miss_rate
            if rate is not None and rate > self.max_miss_rate:
                out.append(
                    Alert(
                        "freshness",
                        v.view,
                        rate,
                        self.max_miss_rate,
                        "warn",
                        f"{rate:.1%} of the {v.lookups} lookups of feature view {v.view!r} "
                        f"found no row (no key or past the TTL), above {self.max_miss_rate:.1%}; "
                        "the model saw defaults. Check that these entities are materialized.",
                    )
                )
        return out

    def gauges(self) -> list[Gauge]:
        out = []
        for v in self.views:
            tags = {"view": v.view}
            if v.lag_s is not None:
                out.append(Gauge("mlray_monitor_view_lag_seconds", v.lag_s, tags))
            for q, age in v.served_age_s.items():
                if age is not None:
                    out.append(
                        Gauge("mlray_monitor_served_age_seconds", age, {**tags, "quantile": q})
                    )
            if v.miss_rate is not None:
                out.append(Gauge("mlray_monitor_miss_rate", v.miss_rate, tags))
        return out


def freshness(
    settings: Settings,
    served_df: pd.DataFrame,
    cfg: FreshnessConfig,
    now: datetime,
    store: OnlineStore | None = None,
    *,
    newest: Mapping[str, datetime | int | None] | None = None,
    repo: FeatureRepository | None = None,
) -> FreshnessResult:
    """Freshness of the stored views: online lag at ``now``, served ages and miss rates.

    Args:
        settings: the settings (feature repository, online store, project).
        served_df: decoded prediction-log rows
            (:func:`mlray.offline.predictions.decode_json_columns`): ``request_time``,
            ``feature_event_times`` (view -> µs or None), ``degraded``. May be empty.
        cfg: the limits.
        now: tz-aware time the lags are measured at.
        store: an open online store; None opens the configured one (and closes it after).
        newest: per view, the newest materialized event time (aware datetime or µs),
            instead of asking the store (for callers that already know it); the views
            checked are then these and the ones the log names.
        repo: the feature definitions (default: ``settings.feature_repo``).

    Returns:
        The figures per view, with their alerts and gauges.

    Raises:
        SchemaError: ``now`` has no time zone.
        BackendUnavailable: the online store cannot be read.
    """
    now_us = to_us(now)
    repo = repo or FeatureRepository.from_module(settings.feature_repo)
    served = _served_views(served_df, set(repo.on_demand))
    if newest is not None:
        names = sorted((set(newest) - set(repo.on_demand)) | set(served))
        newest_us = {v: _opt_us(newest.get(v)) for v in names}
    else:
        names = sorted(set(repo.views) | set(served))
        newest_us = _store_newest(settings, names, now_us, store)
    figures = []
    for v in names:
        t = newest_us.get(v)
        lookups, misses, ages = served.get(v, (0, 0, np.empty(0)))
        figures.append(
            ViewFigures(
                v,
                to_datetime(t),
                None if t is None else (now_us - t) / 1e6,
                float(cfg.limits_s.get(v, cfg.default_limit_s)),
                lookups,
                misses,
                _quantiles(ages),
            )
        )
    degraded = int(degraded_mask(served_df).sum())
    return FreshnessResult(now, figures, len(served_df), degraded, cfg.max_miss_rate)


def _store_newest(
    settings: Settings, views: list[str], now_us: int, store: OnlineStore | None
) -> dict[str, int | None]:
    """Newest materialized event time per view, from the online store's bookkeeping."""
    from mlray.online.freshness import view_freshness

    if store is not None:
        got = view_freshness(store, settings.project, views, now_us)
    else:
        from mlray.store import FeatureStore

        fs = FeatureStore(settings)
        try:
            got = view_freshness(fs.online, settings.project, views, now_us)
        finally:
            fs.close()
    return {f.view: _opt_us(f.newest_event_time) for f in got}


def _served_views(
    served_df: pd.DataFrame, on_demand: set[str]
) -> dict[str, tuple[int, int, np.ndarray]]:
    """Per view the log names: lookups, misses and served ages (s) of the non-degraded rows."""
    if served_df.empty:
        return {}
    keep = ~degraded_mask(served_df)
    times = _us_column(served_df["request_time"])[keep]
    events = served_df["feature_event_times"].to_numpy()[keep]
    ages: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for t, ev in zip(times, events, strict=True):
        for view, e in (ev or {}).items():
            if view in on_demand:
                continue
            c = counts.setdefault(view, [0, 0])
            c[0] += 1
            if e is None:
                c[1] += 1
            else:
                ages.setdefault(view, []).append((int(t) - int(e)) / 1e6)
    return {
        v: (n, m, np.asarray(ages.get(v, []), dtype=np.float64)) for v, (n, m) in counts.items()
    }


def _us_column(col: pd.Series) -> np.ndarray:
    """A time column (aware or UTC) as int64 µs since the epoch."""
    ts = pd.to_datetime(col, utc=True)
    epoch = pd.Timestamp(0, tz="UTC")
    return ((ts - epoch) // pd.Timedelta(microseconds=1)).to_numpy(dtype=np.int64)


def _quantiles(ages: np.ndarray) -> dict[str, float | None]:
    if ages.size == 0:
        return dict.fromkeys(QUANTILES)
    return {q: float(np.percentile(ages, p)) for q, p in QUANTILES.items()}


def _opt_us(t: datetime | int | None) -> int | None:
    if t is None or isinstance(t, int):
        return t
    return to_us(t)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
