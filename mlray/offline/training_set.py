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
from typing import Any, cast

import pandas as pd
import pyarrow as pa
import ray
import ray.data
from ray import ObjectRef

from mlray.config import Settings
from mlray.errors import SchemaError
from mlray.features.on_demand import REQUEST_TIME
from mlray.features.repository import FeatureRepository
from mlray.offline import inputs
from mlray.offline.bucket_join import join_group, join_step
from mlray.offline.delta_store import OfflineStore
from mlray.offline.labels import LabelSource, find_labels
from mlray.offline.plan import TrainingPlan, ViewJoin, plan_training_set
from mlray.offline.shuffle import block_refs
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
    return join_training_set(plan, _label_blocks(labels), OfflineStore(settings))


def _label_blocks(labels: object) -> list[ObjectRef]:
    """The label rows as Arrow blocks in the object store."""
    if isinstance(labels, LabelSource):
        return labels.blocks()
    return block_refs(inputs.as_dataset(labels, "labels"))


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
    plan: TrainingPlan, labels: ray.data.Dataset | Sequence[ObjectRef], offline: OfflineStore
) -> TrainingSet:
    """Execute a plan: join the stored views, then compute the request-time features.

    Plain Ray tasks throughout (no Ray Data execution per step): each label
    block is normalized, then split by the first views' entity bucket; one
    task per bucket reads that bucket's files of every view of the same entity
    (adjacent in the plan) and joins them in one pass; views of another entity
    split the joined blocks again.

    Args:
        plan: from :func:`~mlray.offline.plan.plan_training_set` over ``labels``' schema.
        labels: the label rows, a Ray Dataset or its Arrow blocks' object refs.
        offline: the store holding the views' tables.

    Returns:
        The training set; with no label rows, an empty one with every column.

    Raises:
        NotFoundError: a view has no table, or not the pinned version.
        SchemaError: a null join key or label time (from the join's tasks).
    """
    schema = plan.labels if plan.labels.names else None
    blocks = block_refs(labels) if isinstance(labels, ray.data.Dataset) else list(labels)
    norm = _NormalizeLabels(plan.label_time, plan.default_timezone, schema)
    # num_returns=2: a pair of refs per block (Ray annotates one ObjectRef of a tuple).
    prepared = cast(
        list[tuple[ObjectRef, ObjectRef]], [_prepare.remote(ref, norm) for ref in blocks]
    )
    refs: list[ObjectRef] = [t for t, _ in prepared]
    views: dict[str, dict[str, Any]] = {}
    for group in _entity_groups(plan.joins):
        steps = []
        for j in group:
            snap = offline.snapshot(j.view, j.version)
            steps.append(join_step(j, snap, plan.label_time))
            views[j.view.name] = {
                "uri": snap.uri,
                "version": snap.version,
                "schema_hash": j.view.schema_hash(),
                "rows": snap.num_rows,
            }
        refs = join_group(refs, steps, schema)
        if schema is not None:
            schema = pa.schema([*schema, *(f for step in steps for f in step.fields)])
    meta: dict[str, Any] = {"views": views, "feature_schema_hash": plan.feature_schema_hash}
    if plan.on_demand:
        apply = ApplyOnDemand(plan)
        refs = [_map_block.remote(ref, apply) for ref in refs]
        meta["on_demand"] = dict(plan.on_demand_hashes)
    out = plan.output_schema() if plan.labels.names else None
    counts: list[int] = ray.get([n for _, n in prepared])
    if sum(counts) == 0 and out is not None:
        ds = ray.data.from_arrow(out.empty_table())
    else:
        ds = ray.data.from_arrow_refs(cast(Any, refs))
    return TrainingSet(ds, list(plan.features), plan.label_time, meta, out)


def _entity_groups(joins: Sequence[ViewJoin]) -> list[list[ViewJoin]]:
    """Adjacent joins of views with the same entity keys: one split and one pass per bucket."""
    groups: list[list[ViewJoin]] = []
    for j in joins:
        if groups and groups[-1][0].view.join_keys == j.view.join_keys:
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


@ray.remote(num_returns=2)
def _prepare(table: pa.Table, normalize: _NormalizeLabels) -> tuple[pa.Table, int]:
    out = normalize(table)
    return out, out.num_rows


@ray.remote
def _map_block(table: pa.Table, fn: ApplyOnDemand) -> pa.Table:
    return fn(table) if table.num_rows else table


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
