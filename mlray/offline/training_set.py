"""Training sets from the offline store: the bucketed point-in-time join.

:func:`get_training_data` plans (:func:`mlray.offline.plan.plan_training_set`:
every check against the labels' schema, before Ray work), then executes the
plan (:func:`join_training_set`). For each stored view, the labels are
hash-partitioned by the view's entity bucket (only the labels move), and
each partition's task reads the matching bucket files of the pinned table
version and runs the as-of kernel. Views with different entities and TTLs
are joined one after another; request-time features are computed last, from
the joined rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import pandas as pd
import pyarrow as pa
import ray
import ray.data

from mlray.config import Settings
from mlray.errors import SchemaError
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.features.on_demand import REQUEST_TIME
from mlray.features.repository import FeatureRepository
from mlray.features.times import TIMESTAMP
from mlray.offline import inputs
from mlray.offline.asof import JoinSpec, asof_join
from mlray.offline.delta_store import OfflineStore, ViewSnapshot
from mlray.offline.labels import LabelSource, find_labels
from mlray.offline.plan import TrainingPlan, join_fields, plan_training_set
from mlray.offline.shuffle import block_refs, concat, split_blocks
from mlray.ray_session import ensure_ray


@dataclass
class TrainingSet:
    """A point-in-time correct training set and where it came from.

    ``metadata`` records, per view, the table URI, Delta version and schema
    hash the join read, so a run can be reproduced and audited. ``schema``
    is the set's columns, known even when it has no rows (a Ray Dataset
    without rows has no schema).
    """

    dataset: ray.data.Dataset
    features: list[str]
    label_time: str
    metadata: dict[str, Any] = field(default_factory=dict)
    schema: pa.Schema | None = None

    def to_pandas(self):
        df = self.dataset.to_pandas()
        if df.empty and self.schema is not None:
            return self.schema.empty_table().to_pandas()
        return df

    def content_hash(self) -> str:
        """SHA-256 over the rows in a canonical order (stable across runs and partitionings)."""
        tables = ray.get(list(self.dataset.to_arrow_refs()))
        if not tables:
            tables = [(self.schema or pa.schema([])).empty_table()]
        table = pa.concat_tables(tables)
        table = table.sort_by(
            [(c, "ascending") for c in table.column_names if _sortable(table.schema.field(c).type)]
        )
        h = hashlib.sha256()
        for batch in table.to_batches(max_chunksize=65_536):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as w:
                w.write_batch(batch)
            h.update(sink.getvalue().to_pybytes())
        return h.hexdigest()


def _sortable(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_dictionary(t))


def get_training_data(
    settings: Settings,
    repo: FeatureRepository,
    labels: object,
    features: str | Sequence[str],
    *,
    label_time: str = "event_time",
    versions: dict[str, int] | None = None,
    full_feature_names: bool = True,
    include_feature_times: bool = False,
) -> TrainingSet:
    """Point-in-time correct features for every label row: plan, then join.

    Every name, column, type and (where the input shows it without Ray)
    null check runs before Ray starts.

    Args:
        settings: the settings (offline tables, default time zone, Ray).
        repo: the definitions.
        labels: a label table (a path, a table name under ``<data_root>/raw``
            or a :class:`~mlray.offline.labels.LabelSource`), a Ray Dataset,
            pandas or Arrow, with the entity keys of every view named and a
            tz-aware ``label_time`` column (plus the request fields of any
            request-time feature asked for).
        features: ``["view:feature", ...]`` (request-time refs included) or a feature service.
        label_time: the label rows' time column (the request time of request-time features).
        versions: pin views to Delta table versions (default: latest).
        full_feature_names: name output columns ``view__feature`` (else ``feature``).
        include_feature_times: add ``view__event_time``, the chosen row's time.

    Returns:
        A :class:`TrainingSet`; its metadata records each view's table version.
        No label rows give an empty set with every column.

    Raises:
        NotFoundError: an unknown feature/view, or a missing label table, view table or version.
        SchemaError: labels lack a key, time or request column, have naive
            times, or null label times or keys.
    """
    if isinstance(labels, str | PathLike):
        labels = find_labels(settings, str(labels))
    plan = plan_training_set(
        repo,
        features,
        _schema_before_ray(labels),
        label_time=label_time,
        versions=versions,
        full_feature_names=full_feature_names,
        include_feature_times=include_feature_times,
        default_timezone=settings.default_timezone,
    )
    _check_not_null_before_ray(labels, plan.not_null)
    ensure_ray(settings)
    ds = labels.read() if isinstance(labels, LabelSource) else inputs.as_dataset(labels, "labels")
    return join_training_set(plan, ds, OfflineStore(settings))


def _schema_before_ray(labels: object) -> pa.Schema:
    """The labels' Arrow schema, read without starting Ray (a Ray Dataset means Ray is up)."""
    if isinstance(labels, LabelSource):
        return labels.schema
    if isinstance(labels, pa.Table):
        return labels.schema
    if isinstance(labels, pd.DataFrame):
        return pa.Schema.from_pandas(labels, preserve_index=False)
    return inputs.arrow_schema(inputs.as_dataset(labels, "labels"), "labels")


def _check_not_null_before_ray(labels: object, columns: list[str]) -> None:
    """Null label times or keys, refused before Ray where the input shows them cheaply."""
    if isinstance(labels, LabelSource):
        labels.check_not_null(columns)
    elif isinstance(labels, pa.Table):
        inputs.check_not_null(labels, columns, "labels")
    elif isinstance(labels, pd.DataFrame):
        for c in columns:
            n = int(labels[c].isna().sum())
            if n:
                raise SchemaError(
                    f"labels column {c!r} has {n} null value(s); join keys and times may not be "
                    "null. Drop or fill those rows first."
                )


def join_training_set(
    plan: TrainingPlan, labels: ray.data.Dataset, offline: OfflineStore
) -> TrainingSet:
    """Execute a plan: join each stored view, then compute the request-time features.

    Args:
        plan: from :func:`~mlray.offline.plan.plan_training_set` over ``labels``' schema.
        labels: the label rows.
        offline: the store holding the views' tables.

    Returns:
        The training set; with no label rows, an empty one with every column.

    Raises:
        NotFoundError: a view has no table, or not the pinned version.
        SchemaError: a null join key or label time (from the join's tasks).
    """
    schema = plan.labels if plan.labels.names else None
    # The labels are read once here (the joins read them whole anyway); an empty
    # Ray Dataset loses its schema, so no rows short-cut to an empty, typed result.
    ds = labels.map_batches(
        _NormalizeLabels(plan.label_time, plan.default_timezone, schema), batch_format="pyarrow"
    ).materialize()
    empty = ds.count() == 0
    views: dict[str, dict[str, Any]] = {}
    for j in plan.joins:
        snap = offline.snapshot(j.view, j.version)
        if not empty:
            ds = join_view(
                ds,
                j.view,
                snap,
                list(j.features),
                plan.label_time,
                event_time_as=j.event_time_as,
                rename=dict(j.columns),
                labels_schema=schema,
            )
            if schema is not None:
                schema = pa.schema(
                    [*schema, *join_fields(j.view, j.features, j.columns, j.event_time_as)]
                )
        views[j.view.name] = {
            "uri": snap.uri,
            "version": snap.version,
            "schema_hash": j.view.schema_hash(),
            "rows": snap.num_rows,
        }
    meta: dict[str, Any] = {"views": views, "feature_schema_hash": plan.feature_schema_hash}
    if plan.on_demand:
        if not empty:
            ds = ds.map_batches(ApplyOnDemand(plan), batch_format="pyarrow")
        meta["on_demand"] = dict(plan.on_demand_hashes)
    out = plan.output_schema() if plan.labels.names else None
    if empty and out is not None:
        ds = ray.data.from_arrow(out.empty_table())
    return TrainingSet(ds, list(plan.features), plan.label_time, meta, out)


class _NormalizeLabels:
    """UTC microsecond label times; null times refused; an empty batch typed like the labels."""

    def __init__(self, label_time: str, tz: str | None, schema: pa.Schema | None = None) -> None:
        self.label_time, self.tz, self.schema = label_time, tz, schema

    def __call__(self, batch: pa.Table) -> pa.Table:
        if batch.num_rows == 0 and self.schema is not None:
            return self.schema.empty_table()
        inputs.check_not_null(batch, [self.label_time], "labels")
        return inputs.normalize_times(batch, [self.label_time], self.tz)


class ApplyOnDemand:
    """Run a plan's request-time transforms over a batch of joined label rows.

    The offline half of the shared path: the label time is the request time,
    the request fields are label columns, the stored inputs are the joined
    columns (those joined only as inputs are dropped afterwards).
    """

    def __init__(self, plan: TrainingPlan) -> None:
        self.views, self.label_time, self.drop = plan.on_demand, plan.label_time, plan.hidden
        names = plan.columns
        self.sources = {
            od.name: {c: names[s] for c, s in zip(od.source_columns, od.sources, strict=True)}
            for od in self.views
        }
        self.outputs = {
            od.name: [(names[str(r)], r.feature) for r in plan.refs if r.view == od.name]
            for od in self.views
        }

    def __call__(self, batch: pa.Table) -> pa.Table:
        for od in self.views:
            cols = {REQUEST_TIME: batch.column(self.label_time)}
            cols.update({f.name: batch.column(f.name) for f in od.request})
            cols.update({c: batch.column(src) for c, src in self.sources[od.name].items()})
            result = od.compute(cols)
            for name, feat in self.outputs[od.name]:
                batch = batch.append_column(name, result[feat])
        return batch.drop_columns(list(self.drop)) if self.drop else batch


def join_view(
    labels: ray.data.Dataset,
    view: FeatureView,
    snap: ViewSnapshot,
    features: list[str],
    label_time: str,
    *,
    event_time_as: str | None = None,
    rename: dict[str, str] | None = None,
    labels_schema: pa.Schema | None = None,
) -> ray.data.Dataset:
    """Append ``features`` of ``view`` to every label row, reading the view's buckets directly.

    Only the labels are partitioned (by the view's entity bucket); each
    bucket's task reads that bucket's files of the pinned table version.
    ``rename`` maps feature names to output column names (done in the join
    tasks: a separate Ray Data rename is one more streaming execution per view).
    ``labels_schema`` types label blocks without rows (which may lack columns).
    """
    defaults = {f: view.field(f).default for f in features if view.field(f).default is not None}
    spec = JoinSpec(
        view.join_keys,
        label_time,
        EVENT_TIME,
        tuple(features),
        view.available_time,
        view.ttl_us,
        defaults,
        event_time_as,
    )
    fields = join_fields(view, features, rename, event_time_as)
    columns = list(dict.fromkeys([*view.join_keys, EVENT_TIME, AVAILABLE_TIME, *features]))
    parts = split_blocks(
        block_refs(labels),
        view.join_keys,
        snap.num_buckets,
        _CheckKeys(view.join_keys, labels_schema),
    )
    outs = [
        _join_bucket.remote(spec, snap, b, columns, fields, labels_schema, *parts[b])
        for b in range(snap.num_buckets)
    ]
    return ray.data.from_arrow_refs(outs)


class _CheckKeys:
    """Null join keys refused; a block without rows typed like the labels."""

    def __init__(self, keys: tuple[str, ...], schema: pa.Schema | None = None) -> None:
        self.keys, self.schema = keys, schema

    def __call__(self, table: pa.Table) -> pa.Table:
        if table.num_rows == 0 and self.schema is not None:
            return self.schema.empty_table()
        inputs.check_not_null(table, self.keys, "labels")
        return table


@ray.remote
def _join_bucket(
    spec: JoinSpec,
    snap: ViewSnapshot,
    bucket: int,
    columns: list[str],
    fields: list[pa.Field],
    labels_schema: pa.Schema | None,
    *pieces: pa.Table,
) -> pa.Table:
    """Join one bucket's labels (pieces from every label block) with that bucket's feature rows."""
    labels = concat([p for p in pieces if p.num_rows] or pieces, labels_schema)
    out_schema = pa.schema([*labels.schema, *fields])
    if labels.num_rows == 0:
        return out_schema.empty_table()
    feats = snap.read_bucket(bucket, columns)
    if feats is None:
        feats = _empty_features(columns, labels.schema, fields, spec)
    out = asof_join(labels, feats, spec)
    return out.rename_columns([*labels.column_names, *[f.name for f in fields]]).cast(out_schema)


def _empty_features(
    columns: list[str], label_schema: pa.Schema, fields: list[pa.Field], spec: JoinSpec
) -> pa.Table:
    # Fields carry output names; a last one for ``event_time_as`` has no feature column.
    by_name = {c: f.type for c, f in zip(spec.feature_columns, fields, strict=False)}
    types = [
        label_schema.field(c).type if c in spec.entity_keys else by_name.get(c, TIMESTAMP)
        for c in columns
    ]
    return pa.schema(list(zip(columns, types, strict=True))).empty_table()
