"""The point-in-time rule, on one in-memory partition. The only implementation.

For each label row at time ``t`` and each entity, pick the feature row with
the greatest ``feature_time <= t`` among rows with ``available_time <= t``;
ties on ``feature_time`` go to the greatest ``available_time``. With a TTL
the row must also have ``feature_time > t - ttl``. No qualifying row: nulls
(or the declared defaults).

How: a row is *visible* at ``t`` iff ``v = max(feature_time, available_time)
<= t``. Sorting feature rows by ``v`` per entity and keeping a running
arg-max of ``(feature_time, available_time)`` turns the rule into a plain
backward as-of join on ``v``. The TTL is then a filter on the chosen row:
every visible row has ``feature_time <=`` the chosen one, so if the chosen
row is too old, all are. Both the offline join (Ray Data, per partition) and
online materialization call :func:`asof_join`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

_T, _FT, _AT = "__mlray_t", "__mlray_ft", "__mlray_at"
_ROW, _G = "__mlray_row", "__mlray_g"
TIMESTAMP_US = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class JoinSpec:
    """What to join: the columns of both sides and the rule's parameters.

    ``ttl_us`` is the TTL in microseconds. ``event_time_as`` optionally also
    outputs the chosen row's feature time under that name (null if none).
    """

    entity_keys: tuple[str, ...]
    label_time: str
    feature_time: str
    feature_columns: tuple[str, ...]
    available_time: str | None = None
    ttl_us: int | None = None
    defaults: Mapping[str, object] = field(default_factory=dict)
    event_time_as: str | None = None


def asof_join(labels: pa.Table, features: pa.Table, spec: JoinSpec) -> pa.Table:
    """Left-join ``features`` onto ``labels`` by the point-in-time rule.

    Both tables must hold only rows whose entities may match (a partition);
    every label row comes out exactly once, in the labels' order, with its
    columns unchanged and the feature columns appended. Feature rows already
    in (keys, feature_time, available_time) order (the offline store's
    compacted files) are not sorted again; only a cheap check reads them.
    """
    if labels.num_rows == 0 or features.num_rows == 0:
        return _nulls(labels, features.schema, spec)
    index = VisibleIndex(features, spec, labels.schema)
    if index.empty:
        return _nulls(labels, features.schema, spec)
    chosen, valid = index.lookup(labels)
    return _append(labels, features, index.rows(chosen), index.chosen_ft(chosen), valid, spec)


class VisibleIndex:
    """The feature rows of one partition, indexed by (entity, visible time) for as-of lookups.

    Rows are put in (keys, feature_time, available_time) order (``rank``:
    the position in that order), unless they already are. Entity groups get
    consecutive ids ``g``; each row's visible time ``v = max(feature_time,
    available_time)`` becomes one int64 search key ``g * width + v'`` (``v'``
    is ``v`` minus the smallest ``v``, or its dense rank when that would not
    fit in 62 bits). Sorting the search keys (stable: ties keep rank order)
    and taking the running max of rank gives, at each position, the best row
    visible at that time: ranks of one entity all exceed every earlier
    entity's, so the running max never crosses an entity boundary.
    """

    def __init__(self, features: pa.Table, spec: JoinSpec, label_schema: pa.Schema) -> None:
        self.spec, keys = spec, list(spec.entity_keys)
        at_col = spec.available_time or spec.feature_time
        cols = {k: features.column(k).cast(label_schema.field(k).type) for k in keys}
        frame = (
            _frame(pa.table(cols))
            .with_columns(_epoch_us(features, spec.feature_time, _FT))
            .with_columns(_epoch_us(features, at_col, _AT))
            .with_row_index(_ROW)
        )
        if frame.select(pl.any_horizontal(pl.all().is_null().any())).item():
            frame = frame.drop_nulls()  # a row without key or times can never qualify
        self.empty = frame.height == 0
        if self.empty:
            return
        order = [*keys, _FT, _AT]
        if not frame.select(_nondecreasing(order)).item():
            frame = frame.sort(order)
        new = pl.any_horizontal([pl.col(k) != pl.col(k).shift(1) for k in keys]).fill_null(True)
        frame = frame.with_columns(new.cum_sum().cast(pl.Int64).sub(1).alias(_G))
        self.keys = frame.filter(new).select([*keys, _G])
        self.row = frame.get_column(_ROW).to_numpy()
        self.ft = frame.get_column(_FT).to_numpy()
        g = frame.get_column(_G).to_numpy()
        v = np.maximum(self.ft, frame.get_column(_AT).to_numpy())
        self.v0, span = int(v.min()), int(v.max()) - int(v.min()) + 1
        self.levels: np.ndarray | None = None
        if (int(g[-1]) + 1) * span >= 1 << 62:  # dense ranks of v instead: width <= rows
            self.levels, v = np.unique(v, return_inverse=True)
            self.v0, span = 0, len(self.levels)
        self.width = span
        key = g * span + (v - self.v0)
        by_key = np.argsort(key, kind="stable")  # nearly sorted: timsort runs
        self.search = key[by_key]
        self.best = np.maximum.accumulate(by_key)

    def lookup(self, labels: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """Per label row: the chosen row's rank (0 where none) and whether a row qualified."""
        spec = self.spec
        left = _frame(labels.select(list(spec.entity_keys)))
        g = left.join(self.keys, on=list(spec.entity_keys), how="left", maintain_order="left")
        group = g.get_column(_G)
        known = group.is_not_null().to_numpy()
        gid = group.fill_null(0).to_numpy()
        t = _epoch_us(labels, spec.label_time, _T).to_numpy()
        if self.levels is None:
            offset = np.clip(t - self.v0, -1, self.width - 1)
        else:
            offset = np.searchsorted(self.levels, t, side="right") - 1
        query = gid * self.width + offset
        # Sorted queries search far faster (each starts where the last ended).
        by_query = np.argsort(query, kind="stable")
        pos = np.empty(len(query), np.int64)
        pos[by_query] = np.searchsorted(self.search, query[by_query], side="right") - 1
        hit = pos >= 0
        pos = np.where(hit, pos, 0)
        valid = known & hit & (self.search[pos] // self.width == gid)
        chosen = np.where(valid, self.best[pos], 0)
        if spec.ttl_us is not None:
            valid &= self.ft[chosen] > t - spec.ttl_us
        return chosen, valid

    def rows(self, chosen: np.ndarray) -> np.ndarray:
        """Positions in the input feature table of the chosen ranks."""
        return self.row[chosen]

    def chosen_ft(self, chosen: np.ndarray) -> np.ndarray:
        return self.ft[chosen]


def _frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _epoch_us(table: pa.Table, column: str, name: str) -> pl.Series:
    """A timestamp column as int64 microseconds since the epoch, named ``name``."""
    return _frame(table.select([column])).get_column(column).dt.epoch("us").alias(name)


def _nondecreasing(cols: list[str]) -> pl.Expr:
    """True when rows are in lexicographic order of ``cols`` (ties allowed)."""
    expr = pl.col(cols[-1]) >= pl.col(cols[-1]).shift(1)
    for c in reversed(cols[:-1]):
        cur, prev = pl.col(c), pl.col(c).shift(1)
        expr = (cur > prev) | ((cur == prev) & expr)
    return expr.fill_null(True).all()


def _append(
    labels: pa.Table,
    features: pa.Table,
    rows: np.ndarray,
    chosen_ft: np.ndarray,
    valid: np.ndarray,
    spec: JoinSpec,
) -> pa.Table:
    """Label columns plus the chosen rows' values: null (or the default) where none qualified."""
    take = pa.array(rows, pa.int64(), mask=~valid)
    out = labels
    for c in spec.feature_columns:
        col = features.column(c).take(take)
        default = spec.defaults.get(c)
        if default is not None:
            col = pc.if_else(pa.array(valid), col, pa.scalar(default, col.type))
        out = out.append_column(pa.field(c, features.schema.field(c).type), col)
    if spec.event_time_as:
        typ = features.schema.field(spec.feature_time).type
        ft = pa.array(chosen_ft, pa.int64(), mask=~valid).cast(TIMESTAMP_US).cast(typ)
        out = out.append_column(spec.event_time_as, ft)
    return out


def _output(
    labels: pl.DataFrame,
    values: pl.DataFrame,
    chosen_ft: pl.Series,
    valid: pl.Series,
    spec: JoinSpec,
) -> pa.Table:
    """Label columns plus the chosen values, masked (null or default) where no row qualified."""
    cols = [_masked(values.get_column(c), valid, spec.defaults) for c in spec.feature_columns]
    if spec.event_time_as:
        ft = pl.from_epoch(chosen_ft, time_unit="us").dt.replace_time_zone("UTC")
        cols.append(_masked(ft.alias(spec.event_time_as), valid, {}))
    result = pl.concat([labels, pl.DataFrame(cols)], how="horizontal")
    return result.to_arrow(compat_level=pl.CompatLevel.oldest())


def _masked(values: pl.Series, valid: pl.Series, defaults: Mapping[str, object]) -> pl.Series:
    """The chosen values where a row qualified, else the declared default (or null)."""
    fallback = defaults.get(values.name)
    other = (
        pl.lit(fallback, dtype=values.dtype)
        if fallback is not None
        else pl.lit(None, dtype=values.dtype)
    )
    return pl.select(pl.when(valid).then(values).otherwise(other).alias(values.name)).to_series()


def _nulls(out: pa.Table, feature_schema: pa.Schema, spec: JoinSpec) -> pa.Table:
    """No feature rows (or no labels): every label gets nulls (or defaults)."""
    names = list(spec.feature_columns) + ([spec.event_time_as] if spec.event_time_as else [])
    sources = list(spec.feature_columns) + ([spec.feature_time] if spec.event_time_as else [])
    for name, src in zip(names, sources, strict=True):
        typ = feature_schema.field(src).type
        default = spec.defaults.get(name)
        arr = (
            pa.nulls(out.num_rows, typ)
            if default is None
            else pa.array([default] * out.num_rows, typ)
        )
        out = out.append_column(name, arr)
    return out


def latest_per_entity(features: pa.Table, spec: JoinSpec, entities: pa.Table) -> pa.Table:
    """The row the rule picks for each entity in ``entities`` at ``spec.label_time``'s value.

    ``entities`` holds the join keys and the as-of time column ``spec.label_time``.
    Used by materialization, so online values are exactly the offline join's.
    With one as-of time for every entity (materialization's case) the rule is
    just "the last visible row by (feature_time, available_time)", which
    needs one filter and one sort instead of the general as-of machinery.
    """
    keys = list(spec.entity_keys)
    left = pl.from_arrow(entities)
    assert isinstance(left, pl.DataFrame)
    if (
        left.height == 0
        or features.num_rows == 0
        or left.get_column(spec.label_time).n_unique() != 1
    ):
        return asof_join(entities, features, spec)
    t = left.get_column(spec.label_time).dt.epoch("us")[0]
    raw = pl.from_arrow(
        features.select(
            list(
                dict.fromkeys(
                    [
                        *keys,
                        spec.feature_time,
                        *([spec.available_time] if spec.available_time else []),
                        *spec.feature_columns,
                    ]
                )
            )
        )
    )
    assert isinstance(raw, pl.DataFrame)
    ft = pl.col(spec.feature_time).dt.epoch("us")
    at = pl.col(spec.available_time).dt.epoch("us") if spec.available_time else ft
    best = (
        raw.with_columns([pl.col(k).cast(left.schema[k]) for k in keys])
        .with_columns(ft.alias(_FT), at.alias(_AT))
        .drop_nulls([*keys, _FT, _AT])
        .filter((pl.col(_FT) <= t) & (pl.col(_AT) <= t))
        .sort([*keys, _FT, _AT], maintain_order=True)
        .unique(keys, keep="last", maintain_order=True)
    )
    out = left.join(best, on=keys, how="left", suffix="__mlray_r")
    valid = out.get_column(_FT).is_not_null()
    if spec.ttl_us is not None:
        valid = valid & (out.get_column(_FT) > t - spec.ttl_us)
    values = out.select(
        [c if c not in left.columns else f"{c}__mlray_r" for c in spec.feature_columns]
    )
    values.columns = list(spec.feature_columns)
    return _output(out.select(left.columns), values, out.get_column(_FT), valid, spec)


def output_schema(labels: pa.Schema, features: pa.Schema, spec: JoinSpec) -> Sequence[pa.Field]:
    """Fields appended by :func:`asof_join` (for building empty results)."""
    extra = [features.field(c) for c in spec.feature_columns]
    if spec.event_time_as:
        extra.append(pa.field(spec.event_time_as, features.field(spec.feature_time).type))
    return [*labels, *extra]
