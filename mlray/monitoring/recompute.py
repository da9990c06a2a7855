"""Logged predictions recomputed offline: the features a point-in-time join gives at request time.

The skew audit (:mod:`mlray.monitoring.skew`) and the replay of one
prediction (:mod:`mlray.monitoring.replay`) both rebuild what serving read
online from the offline store. The logged rows become label rows (their
entity keys, the request time as the label time, the request fields of the
logged context), and the training-set join
(:func:`mlray.offline.training_set.get_training_data`) does the rest: the
point-in-time rule per stored view, then the request-time transforms
through the one code path serving also uses
(:meth:`mlray.features.on_demand.OnDemandFeatureView.compute`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mlray.config import Settings
from mlray.errors import SchemaError
from mlray.features.feature_view import FeatureRef
from mlray.features.on_demand import REQUEST_TIME, OnDemandFeatureView
from mlray.features.repository import FeatureRepository
from mlray.features.times import TIMESTAMP

ROW = "mlray_audit_row"  # the label rows' position, to put the join's output back in order


@dataclass(frozen=True)
class Recomputed:
    """Per logged row (in the order given): the recomputed values and the views' event times.

    Attributes:
        values: one ``{column: value}`` per row (``view__feature``, as logged).
        event_us: one ``{view: event time µs or None}`` per row (stored views only).
        versions: per stored view, the offline table version the join read.
    """

    values: list[dict[str, Any]]
    event_us: list[dict[str, int | None]]
    versions: dict[str, int]


def served_refs(
    features: Sequence[Mapping[str, Any]], repo: FeatureRepository
) -> tuple[list[FeatureRef], list[str]]:
    """The refs behind the logged ``features`` columns, and the columns no definition has.

    Args:
        features: the logged ``features`` objects (``view__feature -> value``).
        repo: the definitions.

    Returns:
        The refs (in first-logged order) and the logged columns that match no
        feature of the repository (a view renamed or removed since).
    """
    parsed = [FeatureRef(*r.split(":", 1)) for r in repo.all_refs()]
    by_column = {r.column: r for r in parsed}
    refs: dict[str, FeatureRef] = {}
    unknown: dict[str, None] = {}
    for row in features:
        for col in row or {}:
            if col in by_column:
                refs.setdefault(col, by_column[col])
            else:
                unknown[col] = None
    return list(refs.values()), list(unknown)


def label_rows(rows: pd.DataFrame, repo: FeatureRepository, refs: Sequence[FeatureRef]) -> pa.Table:
    """The logged rows as label rows: position, request time, entity keys, request fields.

    Raises:
        SchemaError: a logged row lacks a key or request field, or has a mistyped one.
    """
    cols: dict[str, pa.Array] = {
        ROW: pa.array(np.arange(len(rows)), pa.int64()),
        REQUEST_TIME: pa.array(_us(rows["request_time"]), pa.int64()).cast(TIMESTAMP),
    }
    entities = list(rows["entities"])
    context = list(rows["context"])
    for name in _stored_views(repo, refs):
        view = repo.view(name)
        for key in view.key_schema():
            if key.name not in cols:
                cols[key.name] = _column(entities, key.name, key.type, "entities")
    for od in used_on_demand(repo, refs):
        for f in od.request:
            if f.name not in cols:
                cols[f.name] = _column(context, f.name, f.dtype, "context")
    return pa.table(cols)


def recompute(
    settings: Settings,
    repo: FeatureRepository,
    rows: pd.DataFrame,
    refs: Sequence[FeatureRef],
    versions: Mapping[str, int] | None = None,
) -> Recomputed:
    """The features ``refs`` of each logged row, by a point-in-time join at its request time.

    Ray must be up (:func:`mlray.ray_session.ensure_ray`) or it is started the
    settings' way.

    Args:
        settings: the settings (offline tables).
        repo: the definitions.
        rows: decoded log rows (``request_time``, ``entities``, ``context``).
        refs: the stored and request-time features to recompute.
        versions: pin stored views to offline table versions (default: the latest).

    Raises:
        SchemaError: a logged row lacks a key or request field the features need.
        NotFoundError: a view's offline table (or the pinned version) does not exist.
    """
    import ray

    from mlray.offline.training_set import get_training_data

    labels = label_rows(rows, repo, refs)
    ts = get_training_data(
        settings,
        repo,
        labels,
        [str(r) for r in refs],
        label_time=REQUEST_TIME,
        versions=dict(versions) if versions else None,
        include_feature_times=True,
    )
    parts = [t for t in ray.get(list(ts.dataset.to_arrow_refs())) if t.num_rows]
    if not parts:
        return Recomputed([], [], _versions(ts.metadata))
    table = pa.concat_tables(parts).sort_by(ROW)
    columns = [r.column for r in refs]
    values = {c: table.column(c).to_pylist() for c in columns}
    views = _stored_views(repo, refs)
    times = {v: table.column(f"{v}__event_time").cast(pa.int64()).to_pylist() for v in views}
    n = table.num_rows
    return Recomputed(
        [{c: values[c][i] for c in columns} for i in range(n)],
        [{v: times[v][i] for v in views} for i in range(n)],
        _versions(ts.metadata),
    )


def _versions(metadata: Mapping[str, Any]) -> dict[str, int]:
    return {v: int(info["version"]) for v, info in metadata.get("views", {}).items()}


def used_on_demand(
    repo: FeatureRepository, refs: Sequence[FeatureRef]
) -> list[OnDemandFeatureView]:
    """The request-time views among ``refs``, once each, in order."""
    names = dict.fromkeys(r.view for r in refs if repo.is_on_demand(r))
    return [repo.on_demand[n] for n in names]


def source_views(repo: FeatureRepository, ref: FeatureRef) -> list[str]:
    """The stored views a feature's value comes from: its own, or a request-time one's sources."""
    if repo.is_on_demand(ref):
        return list(dict.fromkeys(s.view for s in repo.on_demand[ref.view].source_refs))
    return [ref.view]


def _stored_views(repo: FeatureRepository, refs: Sequence[FeatureRef]) -> list[str]:
    """Every stored view the refs read, directly or as request-time inputs."""
    return list(dict.fromkeys(v for r in refs for v in source_views(repo, r)))


def transform_on_served(
    od: OnDemandFeatureView, rows: pd.DataFrame, repo: FeatureRepository
) -> dict[str, list[Any]] | None:
    """The request-time view's outputs on the *served* inputs (logged context and source values).

    None when the log lacks one of the view's stored inputs (the model did not
    read it, so it was not logged): then only the offline recomputation exists.
    """
    feats = list(rows["features"])
    cols: dict[str, pa.Array] = {
        REQUEST_TIME: pa.array(_us(rows["request_time"]), pa.int64()).cast(TIMESTAMP)
    }
    context = list(rows["context"])
    for f in od.request:
        cols[f.name] = _column(context, f.name, f.dtype, "context")
    for col, ref in zip(od.source_columns, od.source_refs, strict=True):
        if any(col not in (r or {}) for r in feats):
            return None
        cols[col] = pa.array([r[col] for r in feats], repo.field(ref).dtype, from_pandas=True)
    out = od.compute(cols)
    return {f: out[f].to_pylist() for f in od.feature_names}


def values_equal(a: Any, b: Any, rel: float, abs_: float) -> bool:
    """Whether a served and a recomputed value agree: numbers within tolerance, nulls alike."""
    if is_null(a) or is_null(b):
        return is_null(a) and is_null(b)
    if _is_number(a) and _is_number(b):
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_)
    return a == b


def abs_diff(a: Any, b: Any) -> float | None:
    """``|a - b|`` for two non-null numbers, else None."""
    if is_null(a) or is_null(b) or not (_is_number(a) and _is_number(b)):
        return None
    return abs(float(a) - float(b))


def is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def plain(v: Any) -> Any:
    """A JSON-ready value: NumPy scalars as Python, NaN as None."""
    if hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and math.isnan(v) else v


def degraded_mask(served_df: pd.DataFrame) -> np.ndarray:
    """The logged rows served while the store was down (every default), as a boolean mask."""
    if "degraded" not in served_df.columns:
        return np.zeros(len(served_df), dtype=bool)
    return served_df["degraded"].fillna(False).to_numpy(dtype=bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, str)


def _us(col: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(col, utc=True)
    return ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)).to_numpy(np.int64)


def _column(
    objs: Sequence[Mapping[str, Any]], name: str, dtype: pa.DataType, where: str
) -> pa.Array:
    """One field of the logged JSON objects as a typed column."""
    try:
        values = [(o or {})[name] for o in objs]
    except KeyError:
        raise SchemaError(
            f"A logged prediction's {where} lacks {name!r}, which the features need; "
            "it cannot be recomputed (was the feature definition changed since?)."
        ) from None
    try:
        return pa.array(values, dtype, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(
            f"Logged {where} field {name!r} does not fit {dtype} ({values[:3]!r}...): {e}"
        ) from e
