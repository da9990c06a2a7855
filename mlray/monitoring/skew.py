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
from typing import Any

import pandas as pd

from mlray.config import Settings
from mlray.features.feature_view import FeatureRef
from mlray.features.repository import FeatureRepository
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
from mlray.monitoring.skew_result import (  # noqa: F401 - the audit's result, importable here
    KINDS,
    MAX_EXAMPLES,
    FeatureSkew,
    SkewResult,
    ViewLookups,
)


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
