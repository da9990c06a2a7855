"""Point-in-time join of two Ray Datasets, scaled out with Ray Data.

Both sides are padded to one schema, unioned and hash-partitioned by the
entity keys (``Dataset.repartition(keys=...)`` keeps each partition in one
block), then every partition runs the as-of kernel in :mod:`mlray.offline.asof`.
No table is collected into one process. When the features already live in
the offline store, :mod:`mlray.offline.training_set` skips the feature
shuffle by reading the view's entity buckets directly.
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

from mlray.errors import SchemaError
from mlray.offline import inputs
from mlray.offline.asof import JoinSpec, asof_join, output_schema

_SIDE = "__mlray_side"
_FPREFIX = "__mlray_f__"


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
) -> ray.data.Dataset:
    """Join ``features`` onto ``labels`` by the point-in-time rule of DESIGN.md.

    For each label row: per entity, the feature row with the greatest
    ``feature_time <= label_time`` among rows with ``available_time <=
    label_time`` (when given) and ``feature_time > label_time - ttl`` (when
    given); ties on ``feature_time`` go to the greatest ``available_time``.
    No qualifying row gives nulls (or ``defaults``).

    Args:
        labels, features: Ray Datasets, pandas DataFrames or Arrow Tables.
        entity_keys: join key columns present on both sides.
        label_time, feature_time, available_time: timestamp columns.
        ttl: maximum age of a feature value (exclusive edge).
        feature_columns: feature columns to bring over (default: all others).
        defaults: per-feature value used instead of null.
        num_partitions: hash partitions (default: 4 per cluster CPU).
        default_timezone: zone for naive timestamps; None makes them an error.

    Returns:
        A lazy Dataset: every label row exactly once, with all label columns
        and the feature columns, in no particular order.

    Raises:
        SchemaError: a missing column, wrong type, naive timestamp or a
            feature column that collides with a label column.
    """
    keys = tuple(entity_keys)
    lds, fds = inputs.as_dataset(labels, "labels"), inputs.as_dataset(features, "features")
    lschema, fschema = inputs.arrow_schema(lds, "labels"), inputs.arrow_schema(fds, "features")
    inputs.require_columns(lschema, [*keys, label_time], "labels")
    times = [feature_time] + ([available_time] if available_time else [])
    inputs.require_columns(fschema, [*keys, *times], "features")
    for col, schema, what in [(label_time, lschema, "labels")] + [(t, fschema, "features") for t in times]:
        inputs.check_time_column(schema, col, what, default_timezone)
    inputs.check_key_types(fschema, keys, lschema, "features")
    if feature_columns is None:
        feature_columns = [c for c in fschema.names if c not in {*keys, *times}]
    inputs.require_columns(fschema, feature_columns, "features")
    clash = sorted(set(feature_columns) & set(lschema.names))
    if clash:
        raise SchemaError(f"feature column(s) {clash} also exist in labels; rename one side before joining.")

    fcols = list(dict.fromkeys([*times, *feature_columns]))
    utc = pa.timestamp("us", tz="UTC")
    lfields = [pa.field(f.name, utc if f.name == label_time else f.type) for f in lschema]
    ffields = [pa.field(_FPREFIX + c, utc if c in times else fschema.field(c).type) for c in fcols]
    union = pa.schema([*lfields, *ffields, pa.field(_SIDE, pa.int8())])
    spec = JoinSpec(keys, label_time, _FPREFIX + feature_time, tuple(_FPREFIX + c for c in feature_columns),
                    _FPREFIX + available_time if available_time else None,
                    int(ttl.total_seconds() * 1_000_000) if ttl else None,
                    {_FPREFIX + k: v for k, v in (defaults or {}).items()})
    out_schema = pa.schema(output_schema(pa.schema(lfields), pa.schema(ffields), spec))
    n = num_partitions or max(4, 4 * int(ray.cluster_resources().get("CPU", 1)))

    left = lds.map_batches(_Pad(union, 0, [label_time], keys, default_timezone), batch_format="pyarrow")
    right = fds.map_batches(_Pad(union, 1, times, keys, default_timezone, rename=fcols), batch_format="pyarrow")
    both = left.union(right).repartition(n, keys=list(keys))
    return both.map_batches(_JoinPartition(spec, lschema.names, out_schema, _FPREFIX), batch_format="pyarrow",
                            batch_size=None)


class _Pad:
    """Bring one side to the union schema: its own columns, nulls for the other side's."""

    def __init__(self, union: pa.Schema, side: int, times: list[str], keys: tuple[str, ...],
                 tz: str | None, rename: list[str] | None = None) -> None:
        self.union, self.side, self.times, self.keys, self.tz = union, side, times, keys, tz
        self.rename = rename

    def __call__(self, batch: pa.Table) -> pa.Table:
        batch = inputs.normalize_times(batch, self.times, self.tz)
        what = "labels" if self.side == 0 else "features"
        if self.side == 0:
            inputs.check_not_null(batch, [*self.keys, *self.times], what)
        else:
            # Feature rows with a null key or time can never qualify: drop them.
            mask = None
            for c in [*self.keys, *self.times]:
                valid = pc.is_valid(batch.column(c))
                mask = valid if mask is None else pc.and_(mask, valid)
            batch = batch.filter(mask)
            batch = batch.rename_columns([_FPREFIX + c if c in self.rename else c for c in batch.column_names])
        n = batch.num_rows
        cols = []
        for f in self.union:
            if f.name == _SIDE:
                cols.append(pa.array([self.side] * n, pa.int8()) if n else pa.array([], pa.int8()))
            elif f.name in batch.column_names:
                cols.append(batch.column(f.name).cast(f.type))
            else:
                cols.append(pa.nulls(n, f.type))
        return pa.Table.from_arrays(cols, schema=self.union)


class _JoinPartition:
    """Split one hash partition back into its two sides and run the kernel."""

    def __init__(self, spec: JoinSpec, label_cols: list[str], out_schema: pa.Schema, prefix: str) -> None:
        self.spec, self.label_cols, self.out_schema, self.prefix = spec, label_cols, out_schema, prefix

    def __call__(self, batch: pa.Table) -> pa.Table:
        side = batch.column(_SIDE)
        labels = batch.filter(pc.equal(side, 0)).select(self.label_cols)
        feats = batch.filter(pc.equal(side, 1))
        if labels.num_rows == 0:
            out = self.out_schema.empty_table()
        else:
            out = asof_join(labels, feats, self.spec).select(self.out_schema.names).cast(self.out_schema)
        names = [c[len(self.prefix):] if c.startswith(self.prefix) else c for c in out.column_names]
        return out.rename_columns(names)
