"""The feature store: the one object users hold to build, ingest and read features.

Quick start::

    from mlray import load_settings
    from mlray.store import FeatureStore

    fs = FeatureStore(load_settings())
    fs.build_features(start, end)
    ts = fs.get_training_data(labels, features=["user_activity:ctr_7d", "item_stats:ctr_24h"])
    ts.dataset.show(3)
    fs.materialize(end)
    fs.get_online_features({"user_id": 7, "item_id": 3}, "ctr_model_v1").rows
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from mlray.config import Settings, load_settings
from mlray.errors import SchemaError
from mlray.features.feature_view import FeatureView
from mlray.features.on_demand import (
    REQUEST_TIME,
    OnDemandFeatureView,
    check_on_demand,
    on_demand_views,
    resolve_features,
)
from mlray.offline.feature_build import BuildResult, build_features
from mlray.features.repository import FeatureRef, FeatureRepository, group_by_view
from mlray.offline import inputs
from mlray.offline.delta_store import OfflineStore, PrepareRows, WriteResult, check_rows_schema
from mlray.offline.training_set import TrainingSet, join_view
from mlray.online.codec import to_us
from mlray.online.freshness import ViewFreshness, view_freshness
from mlray.online.materialize import MaterializeResult, materialize
from mlray.online.protocol import OnlineStore
from mlray.online.reader import OnlineFeatures, OnlineReader
from mlray.online.redis_store import RedisOnlineStore, redis_target
from mlray.ray_session import ensure_ray


class FeatureStore:
    """Entry point over the feature repository, the offline store and the online store.

    Args:
        settings: the typed settings (default: :func:`mlray.load_settings`).
        repository: the definitions (default: the module ``settings.feature_repo`` names).
        on_demand: request-time feature views (default: those the ``settings.feature_repo``
            module defines when ``repository`` is not given, else none).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        repository: FeatureRepository | None = None,
        on_demand: Sequence[OnDemandFeatureView] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.repo = repository or FeatureRepository.from_module(self.settings.feature_repo)
        if on_demand is None:
            on_demand = on_demand_views(self.settings.feature_repo) if repository is None else []
        self.on_demand: dict[str, OnDemandFeatureView] = check_on_demand(self.repo, on_demand)
        self.offline = OfflineStore(self.settings)
        self._online: OnlineStore | None = None
        self._reader: OnlineReader | None = None

    def _view(self, view: str | FeatureView) -> FeatureView:
        return self.repo.view(view if isinstance(view, str) else view.name)

    def build_features(
        self, start: datetime, end: datetime, views: list[str] | None = None
    ) -> list[BuildResult]:
        """Compute the computed views for ``[start, end)``, replacing that window offline."""
        ensure_ray(self.settings)
        return build_features(self.settings, self.repo, start, end, views)

    def ingest(self, view: str | FeatureView, data: object) -> WriteResult:
        """Append externally computed feature rows to a view's offline table, in its layout.

        ``data`` (Ray Dataset, pandas or Arrow) must have the view's join keys,
        ``event_time`` and every feature; ``available_time`` is optional
        (default: event_time plus the view's availability delay).

        Raises:
            SchemaError: a missing, extra or mistyped column, a null key or a naive timestamp.
        """
        ensure_ray(self.settings)
        v = self._view(view)
        ds = inputs.as_dataset(data, f"rows for feature view {v.name!r}")
        check_rows_schema(
            v,
            inputs.arrow_schema(ds, f"rows for feature view {v.name!r}"),
            self.settings.default_timezone,
        )
        prepared = ds.map_batches(
            PrepareRows(v, self.offline.num_buckets(v), self.settings.default_timezone),
            batch_format="pyarrow",
        )
        return self.offline.write(v, prepared)

    def get_training_data(
        self,
        labels: object,
        features: str | Sequence[str],
        *,
        label_time: str = "event_time",
        versions: dict[str, int] | None = None,
        full_feature_names: bool = True,
        include_feature_times: bool = False,
    ) -> TrainingSet:
        """Point-in-time correct features for every label row.

        Args:
            labels: Ray Dataset, pandas or Arrow with the entity keys of every
                view named and a tz-aware ``label_time`` column (plus the
                request fields of any on-demand feature asked for).
            features: ``["view:feature", ...]`` (on-demand refs included) or a feature service name.
            label_time: the label rows' time column (the request time of on-demand features).
            versions: pin views to Delta table versions (default: latest).
            full_feature_names: name output columns ``view__feature`` (else ``feature``).
            include_feature_times: add ``view__event_time``, the chosen row's time.

        Returns:
            A :class:`TrainingSet`; its metadata records each view's table version.

        Raises:
            NotFoundError: an unknown feature/view or missing table/version.
            SchemaError: labels lack a key, time or request column, or have naive times.
        """
        ensure_ray(self.settings)
        refs = resolve_features(self.repo, self.on_demand, features)
        stored = [r for r in refs if r.view not in self.on_demand]
        used = {r.view: self.on_demand[r.view] for r in refs if r.view in self.on_demand}
        hidden = list(
            dict.fromkeys(s for od in used.values() for s in od.source_refs if s not in stored)
        )
        by_view = group_by_view(list(dict.fromkeys([*stored, *hidden])))
        ds = inputs.as_dataset(labels, "labels")
        schema = inputs.arrow_schema(ds, "labels")
        inputs.require_columns(schema, [label_time], "labels")
        inputs.check_time_column(schema, label_time, "labels", self.settings.default_timezone)
        names = {
            str(r): (f"{r.view}__{r.feature}" if full_feature_names else r.feature)
            for r in [*refs, *hidden]
        }
        _check_output_names(schema, names, full_feature_names)
        for od in used.values():
            inputs.require_columns(schema, [f.name for f in od.request], f"labels (for {od.where})")
        ds = ds.map_batches(
            _NormalizeLabels(label_time, self.settings.default_timezone), batch_format="pyarrow"
        )
        metadata: dict[str, dict] = {}
        for vname, feats in by_view.items():
            view = self.repo.view(vname)
            inputs.require_columns(schema, view.join_keys, f"labels (for feature view {vname!r})")
            inputs.check_key_types(schema, view.join_keys, view.key_schema(), "labels")
            snap = self.offline.snapshot(view, (versions or {}).get(vname))
            ts_col = f"{vname}__event_time" if include_feature_times else None
            ds = join_view(
                ds,
                view,
                snap,
                feats,
                label_time,
                event_time_as=ts_col,
                rename={f: names[f"{vname}:{f}"] for f in feats},
            )
            metadata[vname] = {
                "uri": snap.uri,
                "version": snap.version,
                "schema_hash": view.schema_hash(),
                "rows": snap.num_rows,
            }
        schema_hash = self.repo.schema_hash(by_view)
        meta: dict[str, Any] = {"views": metadata, "feature_schema_hash": schema_hash}
        if used:
            ds = ds.map_batches(
                _ApplyOnDemand(
                    list(used.values()), refs, names, label_time, [names[str(h)] for h in hidden]
                ),
                batch_format="pyarrow",
            )
            meta["on_demand"] = {n: od.schema_hash() for n, od in used.items()}
            meta["feature_schema_hash"] = _combined_hash(schema_hash, meta["on_demand"])
        return TrainingSet(ds, [names[str(r)] for r in refs], label_time, meta)

    # -- online store ------------------------------------------------------------------
    @property
    def online(self) -> OnlineStore:
        """The online store (Redis; the embedded server is started on first use)."""
        if self._online is None:
            self._online = RedisOnlineStore(redis_target(self.settings))
        return self._online

    def materialize(
        self, end_time: datetime, views: list[str] | None = None
    ) -> list[MaterializeResult]:
        """Write every entity's latest feature row as of ``end_time`` to the online store.

        Uses the offline join's point-in-time rule; never overwrites a newer
        stored row (a backfill is safe), lets a correction (same event time,
        later available time) win, and is idempotent.

        Args:
            end_time: tz-aware as-of time.
            views: view names (default: all).

        Raises:
            NotFoundError: unknown view or no offline table.
            BackendUnavailable: the online store is unreachable.
        """
        return materialize(self.settings, self.repo, end_time, views)

    def materialize_incremental(
        self, end_time: datetime, views: list[str] | None = None
    ) -> list[MaterializeResult]:
        """Like :meth:`materialize`, for entities changed since each view's last run (its watermark)."""
        return materialize(self.settings, self.repo, end_time, views, incremental=True)

    def get_online_features(
        self,
        entity_rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        features: str | Sequence[str],
        *,
        request_time: datetime | None = None,
    ) -> OnlineFeatures:
        """Latest feature values for entities, in one round trip to the online store.

        Args:
            entity_rows: one mapping or a list, with the join keys of every view
                named (and the request fields of on-demand features), e.g.
                ``{"user_id": 7, "item_id": 3, "device": "mobile", "price": 12.5}``.
            features: ``["view:feature", ...]`` (on-demand refs included) or a feature service name.
            request_time: the request's time (default: now); the TTL is checked
                against it and request-time features use it.

        Returns:
            :class:`~mlray.online.reader.OnlineFeatures`: ``rows`` (``view__feature``
            -> value), per view ``event_times``, per row ``missing`` refs. Missing or
            expired values are null (or the declared default) and listed, never an error.

        Raises:
            NotFoundError: an unknown feature, view or service (with close names).
            SchemaError: an entity row lacks a join key or request field, or has a mistyped one.
            BackendUnavailable: the online store is down or slower than ``redis.timeout_s``.
        """
        reader = self._reader
        if reader is None:
            reader = self._reader = OnlineReader(
                self.online, self.repo, self.on_demand, self.settings.project
            )
        return reader.read(entity_rows, features, request_time)

    def online_freshness(
        self, views: list[str] | None = None, now: datetime | None = None
    ) -> list[ViewFreshness]:
        """Per view: newest materialized event time and the lag behind ``now`` (also a Ray gauge)."""
        names = [self.repo.view(v).name for v in views] if views else list(self.repo.views)
        now_us = time.time_ns() // 1000 if now is None else to_us(now)
        return view_freshness(self.online, self.settings.project, names, now_us)

    def close(self) -> None:
        """Release the online store's connections."""
        if self._online is not None:
            self._online.close()
            self._online, self._reader = None, None


def _check_output_names(schema: pa.Schema, names: dict[str, str], full: bool) -> None:
    outs = list(names.values())
    dup = sorted({n for n in outs if outs.count(n) > 1})
    if dup:
        raise SchemaError(
            f"Feature names {dup} appear in more than one view; pass full_feature_names=True "
            "to name columns 'view__feature'."
        )
    clash = sorted(set(outs) & set(schema.names))
    if clash:
        raise SchemaError(
            f"labels already have column(s) {clash}; rename them before joining features."
        )


class _NormalizeLabels:
    """UTC microsecond label times; null times refused."""

    def __init__(self, label_time: str, tz: str | None) -> None:
        self.label_time, self.tz = label_time, tz

    def __call__(self, batch: pa.Table) -> pa.Table:
        inputs.check_not_null(batch, [self.label_time], "labels")
        return inputs.normalize_times(batch, [self.label_time], self.tz)


class _ApplyOnDemand:
    """Run on-demand transforms over a batch of joined label rows (the offline half of the shared path)."""

    def __init__(
        self,
        views: list[OnDemandFeatureView],
        refs: list[FeatureRef],
        names: dict[str, str],
        label_time: str,
        drop: list[str],
    ) -> None:
        self.views, self.label_time, self.drop = views, label_time, drop
        self.sources = {
            od.name: {c: names[s] for c, s in zip(od.source_columns, od.sources)} for od in views
        }
        self.outputs = {
            od.name: [(names[str(r)], r.feature) for r in refs if r.view == od.name] for od in views
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        for od in self.views:
            cols = {REQUEST_TIME: batch.column(self.label_time)}
            cols.update({f.name: batch.column(f.name) for f in od.request})
            cols.update({c: batch.column(src) for c, src in self.sources[od.name].items()})
            result = od.compute(cols)
            for name, feat in self.outputs[od.name]:
                batch = batch.append_column(name, result[feat])
        return batch.drop_columns(self.drop) if self.drop else batch


def _combined_hash(stored: str, on_demand: dict[str, str]) -> str:
    import hashlib

    h = hashlib.sha256(stored.encode())
    for name in sorted(on_demand):
        h.update(f"{name}={on_demand[name]};".encode())
    return h.hexdigest()
