"""The feature store: the one object users hold to build, ingest and read features.

Quick start::

    from mlray import load_settings
    from mlray.store import FeatureStore

    fs = FeatureStore(load_settings())
    fs.build_features(start, end)
    ts = fs.get_training_data(labels, features=["user_activity:ctr_7d", "item_stats:ctr_24h"])
    ts.dataset.show(3)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from mlray.config import Settings, load_settings
from mlray.errors import SchemaError
from mlray.features.feature_view import FeatureView
from mlray.features.pipeline import BuildResult, build_features
from mlray.features.repository import FeatureRepository, group_by_view
from mlray.offline import inputs
from mlray.offline.delta_store import OfflineStore, PrepareRows, WriteResult, check_rows_schema
from mlray.offline.training_set import TrainingSet, join_view
from mlray.ray_session import ensure_ray


class FeatureStore:
    """Entry point over the feature repository, the offline store and (later) the online store.

    Args:
        settings: the typed settings (default: :func:`mlray.load_settings`).
        repository: the definitions (default: the module ``settings.feature_repo`` names).
    """

    def __init__(self, settings: Settings | None = None, repository: FeatureRepository | None = None) -> None:
        self.settings = settings or load_settings()
        self.repo = repository or FeatureRepository.from_module(self.settings.feature_repo)
        self.offline = OfflineStore(self.settings)

    def _view(self, view: str | FeatureView) -> FeatureView:
        return self.repo.view(view if isinstance(view, str) else view.name)

    def build_features(self, start: datetime, end: datetime, views: list[str] | None = None) -> list[BuildResult]:
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
        check_rows_schema(v, inputs.arrow_schema(ds, f"rows for feature view {v.name!r}"),
                          self.settings.default_timezone)
        prepared = ds.map_batches(PrepareRows(v, self.offline.num_buckets(v), self.settings.default_timezone),
                                  batch_format="pyarrow")
        return self.offline.write(v, prepared)

    def get_training_data(self, labels: object, features: str | Sequence[str], *, label_time: str = "event_time",
                          versions: dict[str, int] | None = None, full_feature_names: bool = True,
                          include_feature_times: bool = False) -> TrainingSet:
        """Point-in-time correct features for every label row.

        Args:
            labels: Ray Dataset, pandas or Arrow with the entity keys of every
                view named and a tz-aware ``label_time`` column.
            features: ``["view:feature", ...]`` or a feature service name.
            label_time: the label rows' time column.
            versions: pin views to Delta table versions (default: latest).
            full_feature_names: name output columns ``view__feature`` (else ``feature``).
            include_feature_times: add ``view__event_time``, the chosen row's time.

        Returns:
            A :class:`TrainingSet`; its metadata records each view's table version.

        Raises:
            NotFoundError: an unknown feature/view or missing table/version.
            SchemaError: labels lack a key or time column, or have naive times.
        """
        ensure_ray(self.settings)
        refs = self.repo.resolve(features)
        by_view = group_by_view(refs)
        ds = inputs.as_dataset(labels, "labels")
        schema = inputs.arrow_schema(ds, "labels")
        inputs.require_columns(schema, [label_time], "labels")
        inputs.check_time_column(schema, label_time, "labels", self.settings.default_timezone)
        names = {f"{v}:{f}": (f"{v}__{f}" if full_feature_names else f) for v, fs in by_view.items() for f in fs}
        _check_output_names(schema, names, full_feature_names)
        ds = ds.map_batches(_NormalizeLabels(label_time, self.settings.default_timezone), batch_format="pyarrow")
        metadata: dict[str, dict] = {}
        for vname, feats in by_view.items():
            view = self.repo.view(vname)
            inputs.require_columns(schema, view.join_keys, f"labels (for feature view {vname!r})")
            inputs.check_key_types(schema, view.join_keys, view.key_schema(), "labels")
            snap = self.offline.snapshot(view, (versions or {}).get(vname))
            ts_col = f"{vname}__event_time" if include_feature_times else None
            ds = join_view(ds, view, snap, feats, label_time, event_time_as=ts_col)
            ds = ds.rename_columns({f: names[f"{vname}:{f}"] for f in feats})
            metadata[vname] = {"uri": snap.uri, "version": snap.version, "schema_hash": view.schema_hash(),
                               "rows": snap.num_rows}
        return TrainingSet(ds, [names[str(r)] for r in refs], label_time,
                           {"views": metadata, "feature_schema_hash": self.repo.schema_hash(by_view)})


def _check_output_names(schema: pa.Schema, names: dict[str, str], full: bool) -> None:
    outs = list(names.values())
    dup = sorted({n for n in outs if outs.count(n) > 1})
    if dup:
        raise SchemaError(f"Feature names {dup} appear in more than one view; pass full_feature_names=True "
                          "to name columns 'view__feature'.")
    clash = sorted(set(outs) & set(schema.names))
    if clash:
        raise SchemaError(f"labels already have column(s) {clash}; rename them before joining features.")


class _NormalizeLabels:
    """UTC microsecond label times; null times refused."""

    def __init__(self, label_time: str, tz: str | None) -> None:
        self.label_time, self.tz = label_time, tz

    def __call__(self, batch: pa.Table) -> pa.Table:
        inputs.check_not_null(batch, [self.label_time], "labels")
        return inputs.normalize_times(batch, [self.label_time], self.tz)

