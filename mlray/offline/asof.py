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

import polars as pl
import pyarrow as pa

_T, _FT, _AT, _V = "__mlray_t", "__mlray_ft", "__mlray_at", "__mlray_v"
_ROW, _RANK, _BEST = "__mlray_row", "__mlray_rank", "__mlray_best"


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
    every label row comes out exactly once, with its columns unchanged and
    the feature columns appended. Order of output rows is not specified.
    """
    keys = list(spec.entity_keys)
    left = pl.from_arrow(labels)
    assert isinstance(left, pl.DataFrame)
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
    if left.height == 0 or raw.height == 0:
        return _nulls(labels, features.schema, spec)
    raw = raw.with_columns([pl.col(k).cast(left.schema[k]) for k in keys])
    rows, index = _visible_index(raw, spec)
    left = left.with_columns(pl.col(spec.label_time).dt.epoch("us").alias(_T)).sort([*keys, _T])
    # Sorted within each entity is all a grouped backward as-of join needs.
    out = left.join_asof(
        index, left_on=_T, right_on=_V, by=keys, strategy="backward", check_sortedness=False
    )
    best = out.get_column(_BEST)
    chosen = rows[best.fill_null(0).to_numpy()]
    valid = best.is_not_null()
    if spec.ttl_us is not None:
        valid = valid & (chosen.get_column(_FT) > out.get_column(_T) - spec.ttl_us)
    values = raw.select(spec.feature_columns)[chosen.get_column(_ROW).to_numpy()]
    return _output(out.select(left.columns).drop(_T), values, chosen.get_column(_FT), valid, spec)


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


def _visible_index(raw: pl.DataFrame, spec: JoinSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rank rows by (keys, feature_time, available_time); per (keys, v) the best rank visible at v.

    Ranks of one entity form a contiguous block above every earlier entity's,
    so a plain running max over rows sorted by (keys, v, rank) is the
    per-entity running arg-max. Only keys and times are sorted; values are
    gathered by position at the end.
    """
    keys = list(spec.entity_keys)
    ft = pl.col(spec.feature_time).dt.epoch("us")
    at = pl.col(spec.available_time).dt.epoch("us") if spec.available_time else ft
    rows = (
        raw.select([*keys, ft.alias(_FT), at.alias(_AT)])
        .with_row_index(_ROW)
        .drop_nulls([*keys, _FT, _AT])
        .sort([*keys, _FT, _AT])
    )
    index = (
        rows.select([*keys, pl.max_horizontal(_FT, _AT).alias(_V)])
        .with_row_index(_RANK)
        .sort([*keys, _V, _RANK])
        .with_columns(pl.col(_RANK).cum_max().alias(_BEST))
    )
    last = pl.any_horizontal([pl.col(c) != pl.col(c).shift(-1) for c in [*keys, _V]]).fill_null(
        True
    )
    return rows.select([_ROW, _FT]), index.filter(last).select([*keys, _V, _BEST])


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
