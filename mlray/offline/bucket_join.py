"""The per-bucket join of stored views: labels split by entity bucket, one task per bucket.

Only the labels move: they are hash-partitioned by the views' entity bucket
(:mod:`mlray.offline.shuffle`), and each bucket's task reads that bucket's
files of every view in the group (the pinned table versions, with the time
range the labels can see pushed into the Parquet scan) and runs the as-of
kernel once per view. Used by :func:`mlray.offline.training_set.join_training_set`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import ray
from ray import ObjectRef

from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME
from mlray.features.times import TIMESTAMP
from mlray.offline import inputs
from mlray.offline.asof import JoinSpec, asof_join
from mlray.offline.delta_store import ViewSnapshot
from mlray.offline.plan import ViewJoin, join_fields
from mlray.offline.shuffle import concat, split_blocks


@dataclass(frozen=True)
class JoinStep:
    """One view's join inside a bucket task: the rule's spec, where to read, what comes out."""

    spec: JoinSpec
    snapshot: ViewSnapshot
    columns: list[str]
    fields: list[pa.Field]


def join_step(j: ViewJoin, snap: ViewSnapshot, label_time: str) -> JoinStep:
    view, features = j.view, list(j.features)
    defaults = {f: view.field(f).default for f in features if view.field(f).default is not None}
    spec = JoinSpec(
        view.join_keys,
        label_time,
        EVENT_TIME,
        tuple(features),
        view.available_time,
        view.ttl_us,
        defaults,
        j.event_time_as,
    )
    columns = list(dict.fromkeys([*view.join_keys, EVENT_TIME, AVAILABLE_TIME, *features]))
    return JoinStep(spec, snap, columns, join_fields(view, features, j.columns, j.event_time_as))


def join_group(
    refs: Sequence[ObjectRef], steps: list[JoinStep], labels_schema: pa.Schema | None
) -> list[ObjectRef]:
    """Append every step's features to the label blocks (steps share entity keys and buckets).

    Only the labels are partitioned (by the views' entity bucket); each
    bucket's task reads that bucket's files of the pinned table versions.
    """
    keys = steps[0].spec.entity_keys
    buckets = {s.snapshot.num_buckets for s in steps}
    if len(buckets) > 1:  # tables created with different bucket counts: one split each
        out = list(refs)
        for step in steps:
            out = join_group(out, [step], labels_schema)
            if labels_schema is not None:
                labels_schema = pa.schema([*labels_schema, *step.fields])
        return out
    n = buckets.pop()
    parts = split_blocks(refs, keys, n, _CheckKeys(keys, labels_schema))
    return [_join_bucket.remote(steps, b, labels_schema, *parts[b]) for b in range(n)]


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
    steps: list[JoinStep], bucket: int, labels_schema: pa.Schema | None, *pieces: pa.Table
) -> pa.Table:
    """Join one bucket's labels (pieces from every label block) with each view's bucket rows."""
    labels = concat([p for p in pieces if p.num_rows] or pieces, labels_schema)
    if labels.num_rows == 0:
        return pa.schema([*labels.schema, *(f for s in steps for f in s.fields)]).empty_table()
    times = labels.column(steps[0].spec.label_time)
    first, last = pc.min(times), pc.max(times)
    for step in steps:
        spec, fields = step.spec, step.fields
        out_schema = pa.schema([*labels.schema, *fields])
        # Rows after the last label time can never be visible; with a TTL, rows at or
        # before the first label time minus the TTL can never be fresh enough.
        scan = pc.field(EVENT_TIME) <= last
        if spec.ttl_us is not None:
            edge = pa.scalar(first.value - spec.ttl_us, pa.int64()).cast(first.type)
            scan = scan & (pc.field(EVENT_TIME) > edge)
        feats = step.snapshot.read_bucket(bucket, step.columns, scan)
        if feats is None:
            feats = _empty_features(step.columns, labels.schema, fields, spec)
        out = asof_join(labels, feats, spec)
        names = [*labels.column_names, *[f.name for f in fields]]
        labels = out.rename_columns(names).cast(out_schema)
    return labels


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
