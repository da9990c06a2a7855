"""Training-set plans: what a point-in-time training set joins, checked before any Ray work.

Like the online reader's plan (:mod:`mlray.online.reader`), a
:class:`TrainingPlan` is built once from the repository, the feature refs and
the labels' Arrow schema. Every cheap check happens here: the names resolve,
the labels have the time column (with a zone), every join key (of a matching
type) and every request field, and no output column clashes.
:func:`mlray.offline.training_set.join_training_set` then executes the plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from mlray.errors import SchemaError
from mlray.features.feature_view import EVENT_TIME, FeatureRef, FeatureView, Field
from mlray.features.on_demand import OnDemandFeatureView
from mlray.features.repository import FeatureRepository, group_by_view
from mlray.features.times import TIMESTAMP
from mlray.offline import inputs


@dataclass(frozen=True)
class ViewJoin:
    """One stored view's part of the join.

    Attributes:
        view: the view.
        features: its features to bring over (asked for, or inputs of request-time features).
        columns: feature -> output column.
        event_time_as: also output the chosen row's event time under this name (or not).
        version: the table version to read (None: the latest).
    """

    view: FeatureView
    features: tuple[str, ...]
    columns: Mapping[str, str]
    event_time_as: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class TrainingPlan:
    """What a training set joins, in which order, under which names.

    Attributes:
        refs: the features asked for, in order.
        features: their output columns, in the same order.
        label_time: the labels' time column (also the request time of request-time features).
        default_timezone: zone of naive label times (None: they were refused).
        joins: one per stored view, in join order.
        on_demand: the request-time views to run after the joins.
        columns: ``"view:feature"`` -> output column, for every feature joined or computed.
        hidden: output columns joined only as inputs of request-time features (dropped at the end).
        fields: output column -> declared field, for the features asked for.
        feature_schema_hash: one hash over every definition used.
        on_demand_hashes: request-time view -> its schema hash.
        labels: the label rows' schema as the joins see it (label time in UTC microseconds).
    """

    refs: tuple[FeatureRef, ...]
    features: list[str]
    label_time: str
    default_timezone: str | None
    joins: tuple[ViewJoin, ...]
    on_demand: tuple[OnDemandFeatureView, ...]
    columns: Mapping[str, str]
    hidden: tuple[str, ...]
    fields: Mapping[str, Field]
    feature_schema_hash: str
    on_demand_hashes: Mapping[str, str] = field(default_factory=dict)
    labels: pa.Schema = field(default_factory=lambda: pa.schema([]))

    @property
    def not_null(self) -> list[str]:
        """The label columns that may hold no null: the label time and every join key."""
        keys = [k for j in self.joins for k in j.view.join_keys]
        return list(dict.fromkeys([self.label_time, *keys]))

    def output_schema(self) -> pa.Schema:
        """The training set's columns: the labels', each join's, then the request-time outputs."""
        fields = list(self.labels)
        for j in self.joins:
            fields += join_fields(j.view, j.features, j.columns, j.event_time_as)
        for od in self.on_demand:
            fields += [
                pa.field(self.columns[str(r)], od.field(r.feature).dtype)
                for r in self.refs
                if r.view == od.name
            ]
        return pa.schema([f for f in fields if f.name not in self.hidden])


def join_fields(
    view: FeatureView,
    features: Sequence[str],
    rename: Mapping[str, str] | None = None,
    event_time_as: str | None = None,
) -> list[pa.Field]:
    """The columns a view's join appends: its features (renamed), then the chosen row's time."""
    schema = view.table_schema()
    fields = [schema.field(f).with_name((rename or {}).get(f, f)) for f in features]
    if event_time_as:
        fields.append(pa.field(event_time_as, schema.field(EVENT_TIME).type))
    return fields


def plan_training_set(
    repo: FeatureRepository,
    features: str | Sequence[str],
    labels: pa.Schema,
    *,
    label_time: str = "event_time",
    versions: Mapping[str, int] | None = None,
    full_feature_names: bool = True,
    include_feature_times: bool = False,
    default_timezone: str | None = None,
) -> TrainingPlan:
    """Resolve ``features`` and check them against the labels' schema.

    Args:
        repo: the definitions.
        features: ``["view:feature", ...]`` (request-time refs included) or a feature service.
        labels: the label rows' Arrow schema.
        label_time: the labels' time column.
        versions: pin views to table versions (default: latest).
        full_feature_names: name output columns ``view__feature`` (else ``feature``).
        include_feature_times: add ``view__event_time``, the chosen row's time.
        default_timezone: zone for naive label times; None makes them an error.

    Raises:
        NotFoundError: an unknown feature, view or service.
        SchemaError: the labels lack a key, time or request column, have a
            naive time or a mistyped key, or an output column would clash.
    """
    refs = repo.resolve(features)
    stored = [r for r in refs if not repo.is_on_demand(r)]
    used = {r.view: repo.on_demand[r.view] for r in refs if repo.is_on_demand(r)}
    hidden = list(
        dict.fromkeys(s for od in used.values() for s in od.source_refs if s not in stored)
    )
    by_view = group_by_view(list(dict.fromkeys([*stored, *hidden])))
    inputs.require_columns(labels, [label_time], "labels")
    inputs.check_time_column(labels, label_time, "labels", default_timezone)
    columns = {str(r): (r.column if full_feature_names else r.feature) for r in [*refs, *hidden]}
    _check_output_names(labels, columns, full_feature_names)
    for od in used.values():
        inputs.require_columns(labels, [f.name for f in od.request], f"labels (for {od.where})")
    joins = []
    for vname, feats in by_view.items():
        view = repo.view(vname)
        inputs.require_columns(labels, view.join_keys, f"labels (for feature view {vname!r})")
        inputs.check_key_types(labels, view.join_keys, view.key_schema(), "labels")
        joins.append(
            ViewJoin(
                view,
                tuple(feats),
                {f: columns[f"{vname}:{f}"] for f in feats},
                f"{vname}__event_time" if include_feature_times else None,
                (versions or {}).get(vname),
            )
        )
    return TrainingPlan(
        tuple(refs),
        [columns[str(r)] for r in refs],
        label_time,
        default_timezone,
        tuple(joins),
        tuple(used.values()),
        columns,
        tuple(columns[str(h)] for h in hidden),
        {columns[str(r)]: repo.field(r) for r in refs},
        repo.schema_hash([*by_view, *used]),
        {n: od.schema_hash() for n, od in used.items()},
        pa.schema([f.with_type(TIMESTAMP) if f.name == label_time else f for f in labels]),
    )


def _check_output_names(schema: pa.Schema, names: dict[str, str], full: bool) -> None:
    outs = list(names.values())
    dup = sorted({n for n in outs if outs.count(n) > 1})
    if dup:
        raise SchemaError(
            f"Feature names {dup} appear in more than one view; pass full_feature_names=True "
            "to name columns 'view__feature'."
        )
    clash = sorted(set(outs) & set(schema.names))
    if clash:
        raise SchemaError(
            f"labels already have column(s) {clash}; rename them before joining features."
        )
