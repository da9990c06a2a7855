"""Training sets from the offline store: the bucketed point-in-time join.

For each feature view requested, the labels are hash-partitioned by the
view's entity bucket (only the labels move), and each partition's task reads
the matching bucket files of the pinned table version and runs the as-of
kernel. Views with different entities and TTLs are joined one after another.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import ray.data

from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.offline import inputs
from mlray.offline.asof import JoinSpec, asof_join
from mlray.offline.bucketing import BUCKET, with_bucket
from mlray.offline.delta_store import ViewSnapshot


@dataclass
class TrainingSet:
    """A point-in-time correct training set and where it came from.

    ``metadata`` records, per view, the table URI, Delta version and schema
    hash the join read, so a run can be reproduced and audited.
    """

    dataset: ray.data.Dataset
    features: list[str]
    label_time: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_pandas(self):
        return self.dataset.to_pandas()

    def content_hash(self) -> str:
        """SHA-256 over the rows in a canonical order (stable across runs and partitionings)."""
        table = pa.concat_tables(ray.get(list(self.dataset.to_arrow_refs())))
        table = table.sort_by([(c, "ascending") for c in table.column_names if _sortable(table.schema.field(c).type)])
        h = hashlib.sha256()
        for batch in table.to_batches(max_chunksize=65_536):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as w:
                w.write_batch(batch)
            h.update(sink.getvalue().to_pybytes())
        return h.hexdigest()


def _sortable(t: pa.DataType) -> bool:
    return not (pa.types.is_nested(t) or pa.types.is_dictionary(t))


def join_view(labels: ray.data.Dataset, view: FeatureView, snap: ViewSnapshot, features: list[str],
              label_time: str, *, event_time_as: str | None = None) -> ray.data.Dataset:
    """Append ``features`` of ``view`` to every label row, reading the view's buckets directly."""
    ttl_us = int(view.ttl.total_seconds() * 1_000_000) if view.ttl else None
    defaults = {f: view.field(f).default for f in features if view.field(f).default is not None}
    spec = JoinSpec(view.join_keys, label_time, EVENT_TIME, tuple(features), view.available_time, ttl_us,
                    defaults, event_time_as)
    fields = [view.table_schema().field(f) for f in features]
    if event_time_as:
        fields.append(pa.field(event_time_as, view.table_schema().field(EVENT_TIME).type))
    tagged = labels.map_batches(_AddBucket(view.join_keys, snap.num_buckets), batch_format="pyarrow")
    parts = tagged.repartition(snap.num_buckets, keys=[BUCKET])
    return parts.map_batches(_JoinBuckets(spec, snap, fields), batch_format="pyarrow", batch_size=None)


class _AddBucket:
    def __init__(self, keys: tuple[str, ...], n: int) -> None:
        self.keys, self.n = keys, n

    def __call__(self, batch: pa.Table) -> pa.Table:
        inputs.check_not_null(batch, self.keys, "labels")
        return with_bucket(batch, self.keys, self.n)


class _JoinBuckets:
    """Join one partition of labels with the feature rows of the buckets it holds."""

    def __init__(self, spec: JoinSpec, snap: ViewSnapshot, fields: list[pa.Field]) -> None:
        self.spec, self.snap, self.fields = spec, snap, fields
        self.columns = list(dict.fromkeys([*spec.entity_keys, EVENT_TIME, AVAILABLE_TIME, *spec.feature_columns]))

    def __call__(self, batch: pa.Table) -> pa.Table:
        out_schema = pa.schema([f for f in batch.schema if f.name != BUCKET] + self.fields)
        if batch.num_rows == 0:
            return out_schema.empty_table()
        pieces = []
        buckets = batch.column(BUCKET).unique().to_pylist()
        for b in buckets:
            labels = batch.filter(pa.compute.equal(batch.column(BUCKET), b)).drop_columns([BUCKET])
            feats = self.snap.read_bucket(b, self.columns)
            if feats is None:
                feats = _empty_features(self.columns, labels.schema, self.fields, self.spec)
            pieces.append(asof_join(labels, feats, self.spec).select(out_schema.names).cast(out_schema))
        return pa.concat_tables(pieces)


def _empty_features(columns: list[str], label_schema: pa.Schema, fields: list[pa.Field], spec: JoinSpec) -> pa.Table:
    ts = pa.timestamp("us", tz="UTC")
    by_name = {f.name: f.type for f in fields}
    types = [label_schema.field(c).type if c in spec.entity_keys else by_name.get(c, ts) for c in columns]
    return pa.schema(list(zip(columns, types))).empty_table()
