"""Skew audit: served features against their offline recomputation at each request's time.

For a seeded sample of logged, non-degraded predictions, every served
feature is recomputed offline (:mod:`mlray.monitoring.recompute`: the
point-in-time join at the request time, then the request-time transform on
the logged context) and compared with the value served, within
``skew.rel_tolerance``/``skew.abs_tolerance``. Each mismatch gets a kind:

``stale``
    the online store served an older row than the offline join picks (the
    served event time is older, or the store had no row where the offline
    table has one): materialization lagged. A request-time feature is stale
    when one of its stored inputs is.
``transform``
    the same event time (or no row on either side) and still a different
    value: the feature was computed differently for serving and for training.
    For a request-time feature whose stored inputs were logged, the transform
    is also re-run on the *served* inputs: when that does not reproduce the
    served value, the transform itself differs, whatever the inputs' times.
``ahead``
    the online store served a row newer than the offline join allows at the
    request time (a request sent with a past ``request_time`` after a later
    materialization, or an offline table rewritten since).

Expired values (older than the view's TTL at the request time) and unknown
entities get their default on both sides (the online read and the offline
join apply the same TTL edge and defaults), so they compare equal and are
not skew; the per-view figures count them as ``no_row``.

A transform-skew rate above ``skew.max_transform_skew_rate`` is a ``breach``
naming the feature; a stale rate above ``skew.max_stale_rate`` or any
``ahead`` mismatch is a ``warn``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlray.config import Settings
from mlray.features.feature_view import FeatureRef
from mlray.features.repository import FeatureRepository
from mlray.monitoring.alerts import Alert, Gauge
from mlray.monitoring.config import SkewConfig
from mlray.monitoring.recompute import (
    Recomputed,
    abs_diff,
    degraded_mask,
    plain,
    recompute,
    served_refs,
    source_views,
    transform_on_served,
    used_on_demand,
    values_equal,
)

KINDS = ("stale", "transform", "ahead")
MAX_EXAMPLES = 5


@dataclass
class FeatureSkew:
    """One feature's comparison over the sample.

    Attributes:
        feature: ``view:feature``.
        compared: sampled predictions that served it.
        mismatches: per kind (:data:`KINDS`), how many differed.
        diffs: ``|served - recomputed|`` of the numeric mismatches.
        examples: a few mismatches (request id, kind, both values, both event times).
    """

    feature: str
    compared: int = 0
    mismatches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    diffs: list[float] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, kind: str | None = None) -> float:
        """Mismatch rate of one kind (None: of every kind)."""
        n = sum(self.mismatches.values()) if kind is None else self.mismatches[kind]
        return n / self.compared if self.compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "compared": self.compared,
            "mismatches": dict(self.mismatches),
            "mismatch_rate": self.rate(),
            "rates": {k: self.rate(k) for k in KINDS},
            "mean_abs_diff": float(np.mean(self.diffs)) if self.diffs else None,
            "max_abs_diff": float(np.max(self.diffs)) if self.diffs else None,
            "examples": self.examples,
        }


@dataclass
class ViewLookups:
    """One stored view's served event times against the offline join's, over the sample.

    ``same``: the same row; ``stale``/``ahead``: an older/newer row served;
    ``no_row``: no row on either side (unknown entity or past the TTL: defaults).
    """

    view: str
    same: int = 0
    stale: int = 0
    ahead: int = 0
    no_row: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "same": self.same,
            "stale": self.stale,
            "ahead": self.ahead,
            "no_row": self.no_row,
        }


@dataclass
class SkewResult:
    """The audit's figures (a :class:`~mlray.monitoring.alerts.CheckResult`).

    Attributes:
        sampled: logged predictions recomputed.
        eligible: non-degraded predictions in the window (the sample's population).
        degraded: predictions skipped because they were served defaults (store down).
        features: per served feature, in log order.
        views: per stored view, its lookups' event times compared.
        not_audited: logged feature columns no definition has any more.
        cfg: the thresholds.
        table_versions: per stored view, the offline table version recomputed from.
    """

    sampled: int
    eligible: int
    degraded: int
    features: list[FeatureSkew]
    views: list[ViewLookups]
    not_audited: list[str]
    cfg: SkewConfig
    table_versions: dict[str, int] = field(default_factory=dict)

    def feature(self, ref: str) -> FeatureSkew:
        """The figures of feature ``view:feature`` (KeyError when it was not audited)."""
        for f in self.features:
            if f.feature == ref:
                return f
        raise KeyError(ref)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "eligible": self.eligible,
            "degraded": self.degraded,
            "seed": self.cfg.seed,
            "tolerance": {"rel": self.cfg.rel_tolerance, "abs": self.cfg.abs_tolerance},
            "features": [f.to_dict() for f in self.features],
            "views": [v.to_dict() for v in self.views],
            "not_audited": list(self.not_audited),
            "table_versions": dict(self.table_versions),
        }

    def summary(self) -> str:
        """One line: ``200 predictions recomputed: no transform skew; stale: 2 features (max
        4.0%, user_activity:clicks_24h)``."""
        if not self.sampled:
            return "no logged predictions to audit"
        n = self.sampled
        parts = [f"{n} prediction{'' if n == 1 else 's'} recomputed"]
        for kind, label in (
            ("transform", "transform skew"),
            ("stale", "stale"),
            ("ahead", "ahead"),
        ):
            hit = sorted((f.rate(kind), f.feature) for f in self.features if f.mismatches[kind])
            if hit:
                rate, name = hit[-1]
                parts.append(f"{label}: {len(hit)} features (max {rate:.1%}, {name})")
            elif kind == "transform":
                parts.append("no transform skew")
        return "; ".join(parts)

    def alerts(self) -> list[Alert]:
        out = []
        cfg = self.cfg
        for f in self.features:
            rate = f.rate("transform")
            if rate > cfg.max_transform_skew_rate:
                out.append(
                    Alert(
                        "skew",
                        f.feature,
                        rate,
                        cfg.max_transform_skew_rate,
                        "breach",
                        f"Transform skew on {f.feature}: {f.mismatches['transform']} of "
                        f"{f.compared} sampled predictions were served a value that differs from "
                        "the offline recomputation at the same event time "
                        f"(max |diff| {_fmt(f.to_dict()['max_abs_diff'])}); serving and training "
                        "compute it differently. `mlray replay REQUEST_ID` shows one "
                        f"(e.g. {_example(f, 'transform')}).",
                    )
                )
            stale = f.rate("stale")
            if stale > cfg.max_stale_rate:
                out.append(
                    Alert(
                        "skew",
                        f.feature,
                        stale,
                        cfg.max_stale_rate,
                        "warn",
                        f"{f.feature} was served from stale materialization in {stale:.1%} of "
                        f"{f.compared} sampled predictions (an older row than the offline store "
                        "had at request time); materialize more often.",
                    )
                )
            if f.mismatches["ahead"]:
                out.append(
                    Alert(
                        "skew",
                        f.feature,
                        f.rate("ahead"),
                        0.0,
                        "warn",
                        f"{f.feature} was served a row newer than the request in "
                        f"{f.mismatches['ahead']} sampled predictions (e.g. "
                        f"{_example(f, 'ahead')}): requests sent with a past request_time, or "
                        "the offline table was rewritten since.",
                    )
                )
        return out

    def gauges(self) -> list[Gauge]:
        return [
            Gauge("mlray_monitor_skew_rate", f.rate(k), {"feature": f.feature, "kind": k})
            for f in self.features
            for k in KINDS
        ]


def skew_audit(
    settings: Settings,
    served_df: pd.DataFrame,
    cfg: SkewConfig,
    *,
    repo: FeatureRepository | None = None,
) -> SkewResult:
    """Recompute a sample of served predictions offline and compare, feature by feature.

    Ray must be up (callers use :func:`mlray.ray_session.ensure_ray`); the
    join runs there.

    Args:
        settings: the settings (offline tables).
        served_df: decoded prediction-log rows
            (:func:`mlray.offline.predictions.decode_json_columns`).
        cfg: sample size, seed, tolerances and thresholds.
        repo: the definitions to recompute with (default: ``settings.feature_repo``).

    Returns:
        Mismatch rates and sizes per feature and kind, with alerts and gauges.

    Raises:
        SchemaError: a logged row lacks an entity key or request field the features need.
        NotFoundError: a view has no offline table.
    """
    repo = repo or FeatureRepository.from_module(settings.feature_repo)
    degraded = degraded_mask(served_df)
    eligible = served_df[~degraded]
    rows = _sample(eligible, cfg)
    refs, _ = served_refs(list(rows["features"]) if len(rows) else [], repo)
    offline = recompute(settings, repo, rows, refs) if refs else Recomputed([], [], {})
    result = compare_recomputed(rows, offline, cfg, repo)
    result.eligible, result.degraded = len(eligible), int(degraded.sum())
    return result


def compare_recomputed(
    rows: pd.DataFrame, offline: Recomputed, cfg: SkewConfig, repo: FeatureRepository
) -> SkewResult:
    """Compare logged rows with their offline recomputation, feature by feature.

    Args:
        rows: decoded log rows (``request_id``, ``request_time``, ``context``,
            ``features``, ``feature_event_times``).
        offline: their recomputation, row for row (:func:`mlray.monitoring.recompute.recompute`).
        cfg: tolerances and thresholds.
        repo: the definitions (which view a feature comes from; the request-time transforms).

    Returns:
        The figures, with ``eligible`` = the rows given and ``degraded`` = 0.
    """
    refs, unknown = served_refs(list(rows["features"]) if len(rows) else [], repo)
    views = list(dict.fromkeys(v for r in refs for v in source_views(repo, r)))
    result = SkewResult(
        len(rows),
        len(rows),
        0,
        [FeatureSkew(str(r)) for r in refs],
        [ViewLookups(v) for v in views],
        unknown,
        cfg,
        dict(offline.versions),
    )
    if refs and len(rows):
        on_served = {
            od.name: transform_on_served(od, rows, repo) for od in used_on_demand(repo, refs)
        }
        _compare(result, rows, refs, repo, offline, on_served)
    return result


def _compare(
    result: SkewResult,
    rows: pd.DataFrame,
    refs: Sequence[FeatureRef],
    repo: FeatureRepository,
    offline: Recomputed,
    on_served: dict[str, dict[str, list[Any]] | None],
) -> None:
    cfg = result.cfg
    figures = {f.feature: f for f in result.features}
    lookups = {v.view: v for v in result.views}
    ids = list(rows["request_id"])
    for i, (feats, served_ev) in enumerate(
        zip(rows["features"], rows["feature_event_times"], strict=True)
    ):
        feats, served_ev = feats or {}, served_ev or {}
        drift = {v: _time_kind(served_ev.get(v), t) for v, t in offline.event_us[i].items()}
        for v, kind in drift.items():
            setattr(lookups[v], kind, getattr(lookups[v], kind) + 1)
        for ref in refs:
            if ref.column not in feats:
                continue  # a model version that did not read this feature
            fig = figures[str(ref)]
            fig.compared += 1
            served, again = feats[ref.column], offline.values[i][ref.column]
            if values_equal(served, again, cfg.rel_tolerance, cfg.abs_tolerance):
                continue
            kind = _mismatch_kind(ref, repo, drift, on_served, i, served, cfg)
            fig.mismatches[kind] += 1
            diff = abs_diff(served, again)
            if diff is not None:
                fig.diffs.append(diff)
            if len(fig.examples) < MAX_EXAMPLES:
                views = source_views(repo, ref)
                fig.examples.append(
                    {
                        "request_id": ids[i],
                        "kind": kind,
                        "served": plain(served),
                        "recomputed": plain(again),
                        "served_event_us": {v: served_ev.get(v) for v in views},
                        "offline_event_us": {v: offline.event_us[i].get(v) for v in views},
                    }
                )


def _time_kind(served_us: int | None, offline_us: int | None) -> str:
    """How a served row's event time relates to the offline join's: same/stale/ahead/no_row."""
    if served_us is None and offline_us is None:
        return "no_row"
    if served_us is None:
        return "stale"
    if offline_us is None:
        return "ahead"
    return "same" if served_us == offline_us else ("stale" if served_us < offline_us else "ahead")


def _mismatch_kind(
    ref: FeatureRef,
    repo: FeatureRepository,
    drift: dict[str, str],
    on_served: dict[str, dict[str, list[Any]] | None],
    i: int,
    served: Any,
    cfg: SkewConfig,
) -> str:
    """Why a served value differs: the transform, or the row the online store held."""
    rerun = on_served.get(ref.view)
    if rerun is not None:
        again = rerun[ref.feature][i]
        if not values_equal(served, again, cfg.rel_tolerance, cfg.abs_tolerance):
            return "transform"
    kinds = [drift.get(v, "same") for v in source_views(repo, ref)]
    if "stale" in kinds:
        return "stale"
    if "ahead" in kinds:
        return "ahead"
    return "transform"


def _sample(rows: pd.DataFrame, cfg: SkewConfig) -> pd.DataFrame:
    """A seeded sample, the same for the same log (rows ordered first: reads have no order)."""
    if rows.empty:
        return rows.reset_index(drop=True)
    rows = rows.sort_values(["request_time", "request_id"], kind="stable")
    if len(rows) > cfg.sample:
        rows = rows.sample(n=cfg.sample, random_state=cfg.seed).sort_values(
            ["request_time", "request_id"], kind="stable"
        )
    return rows.reset_index(drop=True)


def _example(f: FeatureSkew, kind: str) -> str:
    for e in f.examples:
        if e["kind"] == kind:
            return f"request {e['request_id']}: served {e['served']!r}, offline {e['recomputed']!r}"
    return "see the report's examples"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"
