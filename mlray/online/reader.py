"""Online reads: feature refs in, one round trip to the store, typed values out.

A read plan is computed once per feature list (cached): which views to read,
which positions of each stored row to output under which names
(``view__feature``, the training set's column names), the defaults, the
TTLs and the on-demand views to run. A read then builds the keys, makes one
round trip for every (view, entity), checks each row's TTL against the
request time (``event_time > request_time - ttl``, the offline join's
edge), fills nulls or declared defaults for what is missing, and runs the
on-demand transforms over the request. Values are kept as one tuple per
entity row (what a model consumes); dicts are built only when asked for.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from itertools import chain
from typing import Any

import pyarrow as pa

from mlray.errors import SchemaError
from mlray.features.feature_view import FeatureRef, FeatureView
from mlray.features.on_demand import REQUEST_TIME, OnDemandFeatureView, request_column
from mlray.features.repository import FeatureRepository
from mlray.features.times import TIMESTAMP, now_us, to_datetime, to_us
from mlray.online.freshness import METRICS
from mlray.online.protocol import OnlineStore


@dataclass
class OnlineFeatures:
    """The result of one online read.

    Attributes:
        features: output names in the requested order (``view__feature``; the
            refs asked for are ``view:feature``, see :attr:`missing`).
        values: one tuple per entity row, in ``features`` order (what a model consumes).
        event_us: per stored view, per entity row, the event time (µs) of the
            values returned, None where missing.
        request_time_us: the request time the TTL and request-time features used.
    """

    features: list[str]
    values: list[tuple]
    event_us: dict[str, list[int | None]]
    request_time_us: int
    missing_refs: _MissingRefs = field(repr=False, default=None)  # type: ignore[assignment]

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """One dict per entity row: feature name -> value."""
        names = self.features
        return [dict(zip(names, v, strict=True)) for v in self.values]

    @cached_property
    def missing(self) -> list[list[str]]:
        """Per entity row, the refs that had no value (no row, or older than the TTL)
        and got null or their default.

        Spelled as features are asked for (``view:feature``: what ``features=``,
        feature services, ``mlray features list`` and the serving log's
        ``missing_features`` use), while ``features``/``rows`` are column names
        (``view__feature``, like training-set columns, a name Parquet, pandas
        and SQL take as is). :attr:`missing_columns` gives the column spelling.
        """
        return (
            self.missing_refs.per_row(self.event_us, len(self.values))
            if self.missing_refs
            else [[] for _ in self.values]
        )

    @property
    def missing_columns(self) -> list[list[str]]:
        """:attr:`missing` spelled like ``features`` (``view__feature``), to index ``rows``."""
        return [[ref.replace(":", "__", 1) for ref in row] for row in self.missing]

    @property
    def event_times(self) -> dict[str, list[datetime | None]]:
        """Per view, the event time of the values returned for each entity row."""
        return {v: [to_datetime(t) for t in ts] for v, ts in self.event_us.items()}

    def ages_s(self) -> dict[str, list[float | None]]:
        """Per view, how old each returned value is at the request time, in seconds."""
        now = self.request_time_us
        return {
            v: [None if t is None else (now - t) / 1e6 for t in ts]
            for v, ts in self.event_us.items()
        }

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns: feature name -> values per entity row, in the requested order."""
        if not self.values:
            return {f: [] for f in self.features}
        return {
            f: list(col)
            for f, col in zip(self.features, zip(*self.values, strict=True), strict=True)
        }

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(self.to_dict(), columns=self.features)


@dataclass(frozen=True)
class _MissingRefs:
    """Which refs a missing view row makes missing (stored refs, and on-demand refs fed by it)."""

    views: tuple[tuple[str, tuple[str, ...]], ...]
    on_demand: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]  # (refs, source views)

    def per_row(self, event_us: dict[str, list[int | None]], n: int) -> list[list[str]]:
        out: list[list[str]] = [[] for _ in range(n)]
        for view, refs in self.views:
            for i, t in enumerate(event_us[view]):
                if t is None:
                    out[i].extend(refs)
        for refs, views in self.on_demand:
            for i in range(n):
                if any(event_us[v][i] is None for v in views):
                    out[i].extend(refs)
        return out


def _picker(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple]:
    """A C-speed ``row -> tuple(row[p] for p in positions)``."""
    if len(positions) == 1:
        p = positions[0]
        return lambda row: (row[p],)
    return operator.itemgetter(*positions)


@dataclass
class _ViewRead:
    view: FeatureView
    keys: tuple[str, ...]
    names: tuple[str, ...]  # output names (view__feature)
    positions: tuple[int, ...]  # their positions among the view's features
    defaults: tuple[Any, ...]  # the values when the row is missing
    ttl_us: int | None  # None: values never expire

    def __post_init__(self) -> None:
        self.pick = _picker([p + 2 for p in self.positions])  # stored rows start with the two times


@dataclass
class _OnDemandRead:
    view: OnDemandFeatureView
    features: list[str]  # the transform outputs kept
    sources: dict[
        str, tuple[int, pa.DataType]
    ]  # input column -> (index in the stored values, type)


@dataclass
class ReadPlan:
    """What a read of one feature list does (built once, reused)."""

    features: list[str]
    views: list[_ViewRead]
    on_demand: list[_OnDemandRead]
    order: Callable[[Sequence[Any]], tuple] | None  # stored + on-demand values -> requested order
    missing: _MissingRefs


def build_plan(repo: FeatureRepository, features: str | Sequence[str]) -> ReadPlan:
    """Resolve ``features`` (stored and request-time) and lay out the read.

    Raises:
        NotFoundError: an unknown view, feature or service, with close valid names.
    """
    on_demand = repo.on_demand
    refs = repo.resolve(features)
    wanted: dict[str, list[str]] = {}  # stored view -> features to read (asked for or inputs)
    for r in refs:
        for s in on_demand[r.view].source_refs if r.view in on_demand else [r]:
            if s.feature not in wanted.setdefault(s.view, []):
                wanted[s.view].append(s.feature)
    requested = {str(r) for r in refs if r.view not in on_demand}
    views: list[_ViewRead] = []
    names: list[str] = []
    gaps: list[tuple[str, tuple[str, ...]]] = []
    for vname, feats in wanted.items():
        view = repo.view(vname)
        pos = {f: i for i, f in enumerate(view.feature_names)}
        vnames = tuple(f"{vname}__{f}" for f in feats)
        views.append(
            _ViewRead(
                view,
                view.join_keys,
                vnames,
                tuple(pos[f] for f in feats),
                tuple(view.field(f).default for f in feats),
                view.ttl_us,
            )
        )
        names.extend(vnames)
        gaps.append((vname, tuple(f"{vname}:{f}" for f in feats if f"{vname}:{f}" in requested)))
    ods = _on_demand_reads(repo, refs, names)
    names += [f"{n}__{f}" for n, od in ods.items() for f in od.features]
    out_names = [f"{r.view}__{r.feature}" for r in refs]
    order = None if out_names == names else _picker([names.index(n) for n in out_names])
    missing = _MissingRefs(
        tuple(gaps),
        tuple(
            (
                tuple(f"{n}:{f}" for f in od.features),
                tuple(dict.fromkeys(s.view for s in od.view.source_refs)),
            )
            for n, od in ods.items()
        ),
    )
    return ReadPlan(out_names, views, list(ods.values()), order, missing)


def _on_demand_reads(
    repo: FeatureRepository, refs: Sequence[FeatureRef], stored: list[str]
) -> dict[str, _OnDemandRead]:
    """Per request-time view asked for: its outputs kept and where its inputs sit in ``stored``."""
    ods: dict[str, _OnDemandRead] = {}
    for r in refs:
        od = repo.on_demand.get(r.view)
        if od is None:
            continue
        if od.name not in ods:
            sources = {
                c: (stored.index(c), repo.field(s).dtype)
                for c, s in zip(od.source_columns, od.source_refs, strict=True)
            }
            ods[od.name] = _OnDemandRead(od, [], sources)
        ods[od.name].features.append(r.feature)
    return ods


class OnlineReader:
    """Plans (cached) and runs online reads against an :class:`OnlineStore`.

    Args:
        store: the online store.
        repo: the stored and request-time feature views.
        project: project name (a metrics tag).
    """

    def __init__(self, store: OnlineStore, repo: FeatureRepository, project: str) -> None:
        self.store, self.repo, self.project = store, repo, project
        self._plans: dict[object, ReadPlan] = {}

    def plan(self, features: str | Sequence[str]) -> ReadPlan:
        key = features if isinstance(features, str) else tuple(features)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = build_plan(self.repo, features)
        return plan

    def read(
        self,
        entity_rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        features: str | Sequence[str],
        request_time: datetime | None = None,
    ) -> OnlineFeatures:
        """See :meth:`mlray.store.FeatureStore.get_online_features`."""
        rows = [entity_rows] if isinstance(entity_rows, Mapping) else entity_rows
        plan = self.plan(features)
        request_us = now_us() if request_time is None else to_us(request_time)
        stored = self.store.read([(vr.view, _keys_of(rows, vr)) for vr in plan.views])
        event_us: dict[str, list[int | None]] = {}
        oldest: dict[str, float] = {}
        parts = []  # per view, per row: the output values (or the defaults)
        for vr, got in zip(plan.views, stored, strict=True):
            limit = -(1 << 62) if vr.ttl_us is None else request_us - vr.ttl_us
            # A row counts only while event_time > request_time - ttl (the offline join's edge).
            ets = [row[0] if row is not None and row[0] > limit else None for row in got]
            pick, defaults = vr.pick, vr.defaults
            parts.append(
                [
                    defaults if t is None or row is None else pick(row)
                    for t, row in zip(ets, got, strict=True)
                ]
            )
            event_us[vr.view.name] = ets
            present = [t for t in ets if t is not None]
            if present:
                oldest[vr.view.name] = (request_us - min(present)) / 1e6
        if len(parts) == 1:
            values = parts[0]
        elif len(parts) == 2:
            values = [a + b for a, b in zip(*parts, strict=True)]
        else:
            values = [tuple(chain.from_iterable(t)) for t in zip(*parts, strict=True)]
        if plan.on_demand:
            values = self._on_demand(plan, rows, values, request_us)
        if plan.order is not None:
            order = plan.order
            values = [order(v) for v in values]
        METRICS.ages(self.project, oldest)
        return OnlineFeatures(plan.features, values, event_us, request_us, plan.missing)

    def _on_demand(
        self,
        plan: ReadPlan,
        rows: Sequence[Mapping[str, Any]],
        values: list[tuple],
        request_us: int,
    ) -> list[tuple]:
        """Append the on-demand outputs to each row's values: the online half of the shared path."""
        n = len(rows)
        columns: list[list[Any]] = []
        for od in plan.on_demand:
            cols: dict[str, pa.Array] = {REQUEST_TIME: pa.array([request_us] * n, TIMESTAMP)}
            for f in od.view.request:
                cols[f.name] = request_column(rows, f, od.view.where)
            for c, (j, t) in od.sources.items():
                cols[c] = pa.array([v[j] for v in values], type=t)
            result = od.view.compute(cols)
            columns.extend(result[f].to_pylist() for f in od.features)
        return [
            v + tuple(extra) for v, extra in zip(values, zip(*columns, strict=True), strict=True)
        ]


def _keys_of(rows: Sequence[Mapping[str, Any]], vr: _ViewRead) -> list[tuple]:
    try:
        if len(vr.keys) == 1:
            k = vr.keys[0]
            return [(r[k],) for r in rows]
        return [tuple(r[k] for k in vr.keys) for r in rows]
    except KeyError as e:
        raise SchemaError(
            f"An entity row lacks join key {e.args[0]!r}, needed by feature view {vr.view.name!r} "
            f"(keys {list(vr.keys)}). Pass it in every row, e.g. {{{vr.keys[0]!r}: 7, ...}}."
        ) from None
    except TypeError:
        raise SchemaError(
            "entity_rows must be a mapping or a list of mappings, e.g. "
            "{'user_id': 7, 'item_id': 3}."
        ) from None
