"""The :class:`FeatureStore`: one object over the repository, the offline and the online store.

Each method is a thin entry point: the work lives in the stage that owns it
(:mod:`mlray.offline` for builds, ingest and training sets,
:mod:`mlray.store.materialize` for materialization, :mod:`mlray.online` for reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mlray.config import Settings, load_settings
from mlray.features.feature_view import FeatureView
from mlray.features.repository import FeatureRepository
from mlray.features.times import now_us, to_us
from mlray.offline import inputs
from mlray.offline.compaction import CompactResult, compact
from mlray.offline.delta_store import OfflineStore, PrepareRows, WriteResult, check_rows_schema
from mlray.offline.feature_build import BuildResult, build_features
from mlray.offline.training_set import TrainingSet, get_training_data
from mlray.online.embedded import EmbeddedRedis, start_embedded
from mlray.online.factory import open_online_store
from mlray.online.freshness import ViewFreshness, view_freshness
from mlray.online.protocol import OnlineStore
from mlray.online.reader import OnlineFeatures, OnlineReader
from mlray.ray_session import ensure_ray
from mlray.store.materialize import MaterializeResult, check_end_time, materialize


class FeatureStore:
    """Entry point over the feature repository, the offline store and the online store.

    Args:
        settings: the typed settings (default: :func:`mlray.load_settings`).
        repository: the stored and request-time definitions (default: the module
            ``settings.feature_repo`` names).
    """

    def __init__(
        self, settings: Settings | None = None, repository: FeatureRepository | None = None
    ) -> None:
        self.settings = settings or load_settings()
        self.repo = repository or FeatureRepository.from_module(self.settings.feature_repo)
        self.offline = OfflineStore(self.settings)
        self._online: OnlineStore | None = None
        self._reader: OnlineReader | None = None
        self._own_redis: EmbeddedRedis | None = None  # the embedded server this store started

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

    def compact(self, view: str | FeatureView, *, min_files: int = 2) -> CompactResult:
        """Rewrite each bucket of a view's offline table into one sorted file, in one commit.

        The join reads a compacted bucket without sorting it; the rows (and
        every training set) are unchanged. Run it after many ingests or builds
        (``jobs/compact.py``); buckets with fewer than ``min_files`` files are left.

        Raises:
            NotFoundError: an unknown view, or one without an offline table.
        """
        v = self._view(view)
        self.offline.table(v)  # a clear NotFoundError before Ray starts
        ensure_ray(self.settings)
        return compact(self.offline, v, min_files=min_files)

    def compact_all(
        self, views: Sequence[str] | None = None, *, min_files: int = 2
    ) -> list[CompactResult]:
        """:meth:`compact` for ``views`` (default: every stored view that has a table).

        Raises:
            NotFoundError: a named view is unknown or has no offline table.
        """
        if views is None:
            chosen = [v for v in self.repo.views.values() if self.offline.exists(v)]
        else:
            chosen = [self._view(v) for v in views]
            for v in chosen:
                self.offline.table(v)  # every name checked before Ray starts
        if not chosen:
            return []
        ensure_ray(self.settings)
        return [compact(self.offline, v, min_files=min_files) for v in chosen]

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
        """Point-in-time correct features for every label row (planned, then joined).

        Arguments, result and errors: :func:`mlray.offline.training_set.get_training_data`.
        """
        return get_training_data(
            self.settings,
            self.repo,
            labels,
            features,
            label_time=label_time,
            versions=versions,
            full_feature_names=full_feature_names,
            include_feature_times=include_feature_times,
        )

    # -- online store ------------------------------------------------------------------
    @property
    def online(self) -> OnlineStore:
        """The configured online store (an embedded Redis is started on first use)."""
        if self._online is None:
            self._online = open_online_store(self._online_settings())
        return self._online

    def _online_settings(self) -> Settings:
        """The settings with the online store's URL pinned, starting the embedded server if needed.

        A server started here is this store's: :meth:`close` stops it.
        """
        if self.settings.redis.url is not None:
            return self.settings
        url, started = start_embedded(self.settings)
        if started is not None and self._own_redis is None:
            self._own_redis = started
        redis = self.settings.redis.model_copy(update={"url": url})
        return self.settings.model_copy(update={"redis": redis})

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
        check_end_time(end_time)  # the cheap check before the embedded server starts
        return materialize(self._online_settings(), self.repo, end_time, views)

    def materialize_incremental(
        self, end_time: datetime, views: list[str] | None = None
    ) -> list[MaterializeResult]:
        """Like :meth:`materialize`, for entities changed since each view's last run (watermark)."""
        check_end_time(end_time)
        return materialize(self._online_settings(), self.repo, end_time, views, incremental=True)

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
            reader = self._reader = OnlineReader(self.online, self.repo, self.settings.project)
        return reader.read(entity_rows, features, request_time)

    def online_freshness(
        self, views: list[str] | None = None, now: datetime | None = None
    ) -> list[ViewFreshness]:
        """Per view: newest materialized event time and the lag behind ``now`` (also a gauge)."""
        names = [self.repo.view(v).name for v in views] if views else list(self.repo.views)
        at_us = now_us() if now is None else to_us(now)
        return view_freshness(self.online, self.settings.project, names, at_us)

    def close(self) -> None:
        """Release the online store's connections; stop the embedded Redis this store started.

        Only a server this store started is stopped (saving its data, which the next
        start loads again): not one it found running, nor a ``redis.url`` server.
        """
        if self._online is not None:
            self._online.close()
            self._online, self._reader = None, None
        if self._own_redis is not None:
            self._own_redis.stop(save=True)
            self._own_redis = None
