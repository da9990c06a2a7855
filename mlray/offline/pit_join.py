"""Point-in-time join of two Ray Datasets, scaled out over the cluster.

Both sides are hash-partitioned by the entity keys (:mod:`mlray.offline.shuffle`,
one Ray task per input block), then one task per partition runs the as-of
kernel in :mod:`mlray.offline.asof` on its labels and feature rows. No table
is collected into one process. When the features already live in the
offline store, :mod:`mlray.offline.training_set` skips the feature shuffle
by reading the view's entity buckets directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from os import PathLike

import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data
from ray import ObjectRef

from mlray.errors import SchemaError
from mlray.features.times import TIMESTAMP, ttl_to_us
from mlray.offline import inputs
from mlray.offline.asof import JoinSpec, asof_join, output_schema
from mlray.offline.labels import LabelSource, open_source
from mlray.offline.shuffle import block_refs, concat, split_blocks


def point_in_time_join(
    labels: object,
    features: object,
    *,
    entity_keys: list[str] | tuple[str, ...],
    label_time: str,
    feature_time: str,
    available_time: str | None = None,
    ttl: timedelta | None = None,
    feature_columns: list[str] | None = None,
    defaults: dict[str, object] | None = None,
    num_partitions: int | None = None,
    default_timezone: str | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> ray.data.Dataset:
    """Join ``features`` onto ``labels`` by the point-in-time rule of DESIGN.md.

    For each label row: per entity, the feature row with the greatest
    ``feature_time <= label_time`` among rows with ``available_time <=
    label_time`` (when given) and ``feature_time > label_time - ttl`` (when
    given); ties on ``feature_time`` go to the greatest ``available_time``.
    No qualifying row gives nulls (or ``defaults``).

    Args:
        labels, features: Ray Datasets, pandas DataFrames, Arrow Tables, or paths/URIs of
            Parquet files, Parquet directories or Delta tables (Parquet files are read
            by one plain task each, without a Ray Data execution).
        entity_keys: join key columns present on both sides.
        label_time, feature_time, available_time: timestamp columns.
        ttl: maximum age of a feature value (exclusive edge); None: no limit.
        feature_columns: feature columns to bring over (default: all others).
        defaults: per-feature value used instead of null.
        num_partitions: hash partitions (default: 2 per cluster CPU, at least 4).
        default_timezone: zone for naive timestamps; None makes them an error.
        storage_options: object-store options for path inputs (as for deltalake).

    Returns:
        A Dataset: every label row exactly once, with all label columns and
        the feature columns, in no particular order. The join's tasks are
        running when it returns.

    Raises:
        SchemaError: a missing column, wrong type, naive timestamp or a
            feature column that collides with a label column (null keys or
            label times raise it from the tasks).
        DefinitionError: ``ttl`` is zero or negative.
    """
    ttl_us = ttl_to_us(ttl, "point_in_time_join(ttl=...)")
    keys = tuple(entity_keys)
    lin, fin = (
        _Input(labels, "labels", storage_options),
        _Input(features, "features", storage_options),
    )
    lschema, fschema = lin.schema, fin.schema
    inputs.require_columns(lschema, [*keys, label_time], "labels")
    times = [feature_time] + ([available_time] if available_time else [])
    inputs.require_columns(fschema, [*keys, *times], "features")
    for col, schema, what in [(label_time, lschema, "labels")] + [
        (t, fschema, "features") for t in times
    ]:
        inputs.check_time_column(schema, col, what, default_timezone)
    inputs.check_key_types(fschema, keys, lschema, "features")
    if feature_columns is None:
        feature_columns = [c for c in fschema.names if c not in {*keys, *times}]
    inputs.require_columns(fschema, feature_columns, "features")
    clash = sorted(set(feature_columns) & set(lschema.names))
    if clash:
        raise SchemaError(
            f"feature column(s) {clash} also exist in labels; rename one side before joining."
        )

    spec = JoinSpec(
        keys,
        label_time,
        feature_time,
        tuple(feature_columns),
        available_time,
        ttl_us,
        dict(defaults or {}),
    )
    lfields = pa.schema(
        [pa.field(f.name, TIMESTAMP if f.name == label_time else f.type) for f in lschema]
    )
    fcols = list(dict.fromkeys([*keys, *times, *feature_columns]))
    ffields = pa.schema(
        [pa.field(c, TIMESTAMP if c in times else fschema.field(c).type) for c in fcols]
    )
    out_schema = pa.schema(output_schema(lfields, ffields, spec))
    n = num_partitions or max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))

    left = split_blocks(
        lin.blocks(), keys, n, _PrepareLabels(keys, label_time, default_timezone, lfields)
    )
    right = split_blocks(
        fin.blocks(), keys, n, _PrepareFeatures(keys, times, default_timezone, ffields)
    )
    outs = [
        _join_partition.remote(
            spec, out_schema, lfields, ffields, len(left[p]), *left[p], *right[p]
        )
        for p in range(n)
    ]
    return ray.data.from_arrow_refs(outs)


class _Input:
    """One side of the join: its schema (read without executing anything) and its blocks."""

    def __init__(self, data: object, what: str, storage_options: Mapping[str, str] | None) -> None:
        self.source: LabelSource | None = None
        self.dataset: ray.data.Dataset | None = None
        if isinstance(data, str | PathLike):
            self.source = open_source(str(data), storage_options)
            self.schema = self.source.schema
        else:
            self.dataset = inputs.as_dataset(data, what)
            self.schema = inputs.arrow_schema(self.dataset, what)

    def blocks(self) -> list[ObjectRef]:
        if self.source is not None:
            return self.source.blocks()
        assert self.dataset is not None
        return block_refs(self.dataset)


class _PrepareLabels:
    """UTC label times; null keys or times refused (they would silently vanish)."""

    def __init__(
        self, keys: tuple[str, ...], label_time: str, tz: str | None, schema: pa.Schema
    ) -> None:
        self.keys, self.label_time, self.tz, self.schema = keys, label_time, tz, schema

    def __call__(self, table: pa.Table) -> pa.Table:
        inputs.check_not_null(table, [*self.keys, self.label_time], "labels")
        return (
            inputs.normalize_times(table, [self.label_time], self.tz)
            .select(self.schema.names)
            .cast(self.schema)
        )


class _PrepareFeatures:
    """UTC times, only the needed columns; rows with a null key or time can never qualify."""

    def __init__(
        self, keys: tuple[str, ...], times: list[str], tz: str | None, schema: pa.Schema
    ) -> None:
        self.keys, self.times, self.tz, self.schema = keys, times, tz, schema

    def __call__(self, table: pa.Table) -> pa.Table:
        table = table.select(self.schema.names)
        mask = None
        for c in [*self.keys, *self.times]:
            valid = pc.is_valid(table.column(c))
            mask = valid if mask is None else pc.and_(mask, valid)
        if mask is not None and table.num_rows:
            table = table.filter(mask)
        return inputs.normalize_times(table, self.times, self.tz).cast(self.schema)


@ray.remote
def _join_partition(
    spec: JoinSpec,
    out_schema: pa.Schema,
    lschema: pa.Schema,
    fschema: pa.Schema,
    n_left: int,
    *pieces: pa.Table,
) -> pa.Table:
    labels = concat(pieces[:n_left], lschema)
    if labels.num_rows == 0:
        return out_schema.empty_table()
    feats = concat(pieces[n_left:], fschema)
    return asof_join(labels, feats, spec).select(out_schema.names).cast(out_schema)
