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
import ray
import ray.data

from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.offline import inputs
from mlray.offline.asof import JoinSpec, asof_join
from mlray.offline.delta_store import ViewSnapshot
from mlray.offline.shuffle import block_refs, concat, split_blocks


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


def join_view(
    labels: ray.data.Dataset,
    view: FeatureView,
    snap: ViewSnapshot,
    features: list[str],
    label_time: str,
    *,
    event_time_as: str | None = None,
    rename: dict[str, str] | None = None,
) -> ray.data.Dataset:
    """Append ``features`` of ``view`` to every label row, reading the view's buckets directly.

    Only the labels are partitioned (by the view's entity bucket); each
    bucket's task reads that bucket's files of the pinned table version.
    ``rename`` maps feature names to output column names (done in the join
    tasks: a separate Ray Data rename is one more streaming execution per view).
    """
    ttl_us = int(view.ttl.total_seconds() * 1_000_000) if view.ttl else None
    defaults = {f: view.field(f).default for f in features if view.field(f).default is not None}
    spec = JoinSpec(
        view.join_keys,
        label_time,
        EVENT_TIME,
        tuple(features),
        view.available_time,
        ttl_us,
        defaults,
        event_time_as,
    )
    fields = [view.table_schema().field(f).with_name((rename or {}).get(f, f)) for f in features]
    if event_time_as:
        fields.append(pa.field(event_time_as, view.table_schema().field(EVENT_TIME).type))
    columns = list(dict.fromkeys([*view.join_keys, EVENT_TIME, AVAILABLE_TIME, *features]))
    parts = split_blocks(
        block_refs(labels), view.join_keys, snap.num_buckets, _CheckKeys(view.join_keys)
    )
    outs = [
        _join_bucket.remote(spec, snap, b, columns, fields, *parts[b])
        for b in range(snap.num_buckets)
    ]
    return ray.data.from_arrow_refs(outs)


class _CheckKeys:
    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys

    def __call__(self, table: pa.Table) -> pa.Table:
        inputs.check_not_null(table, self.keys, "labels")
        return table


@ray.remote
def _join_bucket(
    spec: JoinSpec,
    snap: ViewSnapshot,
    bucket: int,
    columns: list[str],
    fields: list[pa.Field],
    *pieces: pa.Table,
) -> pa.Table:
    """Join one bucket's labels (pieces from every label block) with that bucket's feature rows."""
    labels = concat(pieces)
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
    ts = pa.timestamp("us", tz="UTC")
    by_name = {c: f.type for c, f in zip(spec.feature_columns, fields)}  # fields carry output names
    types = [
        label_schema.field(c).type if c in spec.entity_keys else by_name.get(c, ts) for c in columns
    ]
    return pa.schema(list(zip(columns, types))).empty_table()
