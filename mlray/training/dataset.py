"""The training data: the point-in-time training set, its lineage, the split, the encoded slices.

Stage functions, each taking and returning typed values:
:func:`build_training_set` -> :class:`TrainingData`; :func:`split_by_time` ->
:class:`Splits`; :func:`fit_spec` (statistics of the train slice) ->
:class:`~mlray.training.model.ModelSpec`; :func:`encode` -> datasets of ``x``/``y``
for Ray Train.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import ray.data

from mlray.config import Settings
from mlray.errors import ValidationFailed
from mlray.features.feature_view import Field
from mlray.features.kinds import categorical_columns
from mlray.features.repository import FeatureRepository
from mlray.features.times import epoch_us, to_us
from mlray.offline import inputs
from mlray.offline.delta_store import OfflineStore
from mlray.offline.labels import LabelTable, TimeSlice
from mlray.offline.labels import read_labels as read_label_table
from mlray.offline.lookback import lookback_filled
from mlray.offline.plan import TrainingPlan, plan_training_set
from mlray.offline.training_set import TrainingSet, join_training_set
from mlray.ray_session import ensure_ray
from mlray.registry.lineage import relative_path
from mlray.runtimes.model_spec import ModelSpec
from mlray.training.config import SplitConfig, TrainConfig
from mlray.training.preprocess import (
    EncodeBatch,
    merge_stats,
    partial_stats,
    spec_from_stats,
)

TIME_SAMPLE = 50_000
log = logging.getLogger("mlray.training")


@contextmanager
def ordered_execution() -> Iterator[None]:
    """Ray Data datasets created inside keep their rows in order whenever they run.

    By default Ray Data passes blocks on as their tasks finish, so the label
    read, the training set, its slices and the encoded rows came out in a
    different order each run; the seeded global shuffle then permuted a
    different input, the first epoch read other batches first, and retrains
    on identical data chose different models. A dataset captures a copy of the
    current ``DataContext`` when it is created (derived ones share their
    parent's), so this setting follows the datasets after the block exits.
    """
    ctx = ray.data.DataContext.get_current()
    before = ctx.execution_options.preserve_order
    ctx.execution_options.preserve_order = True
    try:
        yield
    finally:
        ctx.execution_options.preserve_order = before


@dataclass
class TrainingData:
    """A materialized training set with what the model reads and where the rows came from.

    Attributes:
        training_set: the point-in-time training set (its dataset materialized).
        fields: feature column -> declared field (for the schema checks).
        numeric, categorical: the feature columns by kind, in model input order.
        feature_refs: the ``view:feature`` refs, in column order.
        lineage: Delta versions (views and labels), the content hash, the feature schema
            hash; paths relative to the data root when under it.
    """

    training_set: TrainingSet
    fields: dict[str, Field]
    numeric: list[str]
    categorical: list[str]
    feature_refs: list[str]
    lineage: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> ray.data.Dataset:
        return self.training_set.dataset


def read_labels(settings: Settings, cfg: TrainConfig) -> LabelTable:
    """The configured label rows (pinned Delta version when a Delta table) and their source.

    Raises:
        NotFoundError: the table does not exist.
        SchemaError: a configured column is missing.
    """
    lc = cfg.labels
    return read_label_table(
        settings,
        lc.table,
        columns=None if lc.columns is None else [*lc.columns, lc.label],
        required=[lc.label],
        time_column=lc.time,
        start=lc.start,
        end=lc.end,
        fix="Fix labels.columns, labels.label or labels.time in the training config.",
    )


def build_training_set(
    settings: Settings, cfg: TrainConfig, repo: FeatureRepository | None = None
) -> TrainingData:
    """Point-in-time training set for the configured labels and features, materialized once.

    Plans the join over the labels' schema (every name and column checked
    before Ray work), then executes it through the offline store.

    Raises:
        NotFoundError, SchemaError: unknown features, missing tables or columns.
        ValidationFailed: no label rows.
    """
    ensure_ray(settings)
    repo = repo or FeatureRepository.from_module(settings.feature_repo)
    with ordered_execution():
        labels = read_labels(settings, cfg)
        refs = list(dict.fromkeys([*repo.resolve(cfg.features), *repo.resolve(cfg.extra_features)]))
        plan = plan_training_set(
            repo,
            [str(r) for r in refs],
            inputs.arrow_schema(labels.dataset, "labels"),
            label_time=cfg.labels.time,
            default_timezone=settings.default_timezone,
        )
        rows, lookback = after_lookback(settings, cfg, plan, labels.dataset)
        ts = join_training_set(plan, rows, OfflineStore(settings))
        ts = TrainingSet(ts.dataset.materialize(), ts.features, ts.label_time, ts.metadata)
    n = ts.dataset.count()
    if lookback is not None:
        lookback["dropped_rows"] = lookback.pop("label_rows") - n
        log.info(
            "Training set starts %s, once every view's lookback has filled (view %r: first event "
            "%s + %s); %d earlier label rows dropped, %d kept (labels.start_after_lookback).",
            lookback["start"],
            lookback["view"],
            lookback["first_event"],
            lookback["lookback"],
            lookback["dropped_rows"],
            n,
        )
    if n == 0:
        after = (
            f"; all {lookback['dropped_rows']:,} are before {lookback['start']}, when every "
            "view's lookback has filled: give more history, or set "
            "labels.start_after_lookback: false"
            if lookback
            else ""
        )
        raise ValidationFailed(
            f"No label rows in {labels.uri} (window {cfg.labels.start} .. "
            f"{cfg.labels.end}){after}; nothing to train on."
        )
    fields = dict(plan.fields)
    forced = {r.replace(":", "__", 1) for r in cfg.categorical}
    categorical = categorical_columns({c: f.dtype for c, f in fields.items()}, forced)
    numeric = [c for c in fields if c not in categorical]
    root = str(settings.data_root)
    lc = cfg.labels
    lineage = {
        "views": {v: m["version"] for v, m in ts.metadata["views"].items()},
        "view_uris": {v: relative_path(m["uri"], root) for v, m in ts.metadata["views"].items()},
        "labels": {
            "uri": relative_path(labels.uri, root),
            "version": labels.version,
            **lc.model_dump(mode="json", include={"label", "time", "columns", "start", "end"}),
            **({"start": lookback["start"]} if lookback else {}),
        },
        "lookback": lookback,
        "feature_schema_hash": ts.metadata["feature_schema_hash"],
        "on_demand": ts.metadata.get("on_demand", {}),
        "content_hash": ts.content_hash(),
        "rows": ts.dataset.count(),
    }
    by_column = {r.column: str(r) for r in refs}
    return TrainingData(
        ts, fields, numeric, categorical, [by_column[c] for c in [*numeric, *categorical]], lineage
    )


def after_lookback(
    settings: Settings, cfg: TrainConfig, plan: TrainingPlan, labels: ray.data.Dataset
) -> tuple[ray.data.Dataset, dict[str, Any] | None]:
    """The label rows from when every joined view's lookback has filled, if so configured.

    Returns:
        The rows to join, and None when nothing is cut (turned off, no view with
        a lookback, or ``labels.start`` already later); else what was cut:
        ``start``, ``view``, ``first_event``, ``lookback`` and ``label_rows``
        (every label row, before the cut; the caller turns it into ``dropped_rows``).
    """
    lc = cfg.labels
    if not lc.start_after_lookback:
        return labels, None
    filled = lookback_filled(settings, [j.view for j in plan.joins])
    if filled is None or (lc.start is not None and to_us(lc.start) >= to_us(filled.start)):
        return labels, None
    labels = labels.materialize()
    info = {
        "start": filled.start.isoformat(),
        "view": filled.view,
        "first_event": filled.first_event.isoformat(),
        "lookback": str(filled.lookback),
        "label_rows": labels.count(),
    }
    kept = labels.map_batches(TimeSlice(lc.time, filled.start, None), batch_format="pyarrow")
    return kept, info


@dataclass
class Splits:
    """The three time slices (materialized) and the boundaries between them."""

    train: ray.data.Dataset
    validation: ray.data.Dataset
    test: ray.data.Dataset
    validation_start: datetime
    test_start: datetime
    rows: dict[str, int]


def split_by_time(ds: ray.data.Dataset, time_column: str, split: SplitConfig) -> Splits:
    """Earliest slice for training, the next for validation, the latest for testing.

    Boundaries are the configured ones, else quantiles of the label time (from
    a proportional sample) at the configured fractions.

    Raises:
        ValidationFailed: a slice is empty (the message gives the boundaries to change).
    """
    if split.validation_start is not None and split.test_start is not None:
        val_start, test_start = split.validation_start, split.test_start
    else:
        total = ds.count()
        sample = ds.select_columns([time_column])
        if total > TIME_SAMPLE:
            sample = sample.random_sample(TIME_SAMPLE / total, seed=0)
        times = pa.concat_tables(ray.get(list(sample.to_arrow_refs()))).column(time_column)
        us = np.sort(epoch_us(times).to_numpy(zero_copy_only=False))
        cut = np.quantile(us, [split.train, split.train + split.validation], method="higher")
        val_start, test_start = (datetime.fromtimestamp(int(c) / 1e6, tz=UTC) for c in cut)
    slices = {
        "train": ds.map_batches(
            TimeSlice(time_column, None, val_start), batch_format="pyarrow"
        ).materialize(),
        "validation": ds.map_batches(
            TimeSlice(time_column, val_start, test_start), batch_format="pyarrow"
        ).materialize(),
        "test": ds.map_batches(
            TimeSlice(time_column, test_start, None), batch_format="pyarrow"
        ).materialize(),
    }
    rows = {k: v.count() for k, v in slices.items()}
    empty = [k for k, n in rows.items() if n == 0]
    if empty:
        raise ValidationFailed(
            f"The time split leaves the {', '.join(empty)} slice(s) empty (validation starts "
            f"{val_start.isoformat()}, test starts {test_start.isoformat()}); change split "
            "fractions or boundaries in the training config."
        )
    return Splits(
        slices["train"], slices["validation"], slices["test"], val_start, test_start, rows
    )


def fit_spec(train: ray.data.Dataset, data: TrainingData, cfg: TrainConfig) -> ModelSpec:
    """Normalization statistics and vocabularies of the train slice (summed by block), as a spec."""
    parts = train.map_batches(
        _Stats(data.numeric, data.categorical), batch_format="pyarrow", batch_size=None
    ).take_all()
    stats = merge_stats([json.loads(p["stats"]) for p in parts])
    return spec_from_stats(
        stats,
        data.numeric,
        data.categorical,
        hidden=cfg.model.hidden(),
        embedding_dim=cfg.model.embedding_dim,
        dropout=cfg.model.dropout,
        feature_refs=data.feature_refs,
        label=cfg.labels.label,
        label_time=cfg.labels.time,
    )


class _Stats:
    def __init__(self, numeric: list[str], categorical: list[str]) -> None:
        self.numeric, self.categorical = numeric, categorical

    def __call__(self, batch: pa.Table) -> dict[str, np.ndarray]:
        return {
            "stats": np.array(
                [json.dumps(partial_stats(batch, self.numeric, self.categorical))], dtype=object
            )
        }


def encode(
    ds: ray.data.Dataset, spec: ModelSpec, shuffle_seed: int | None = None
) -> ray.data.Dataset:
    """The slice as ``x`` (float32[F]) and ``y`` rows for Ray Train, materialized.

    Encoded by the shared function (:class:`~mlray.training.preprocess.EncodeBatch`).

    With ``shuffle_seed`` the rows are shuffled once, globally: the training set
    comes out of the join grouped by entity, and batches must not be.
    """
    encoded = ds.map_batches(EncodeBatch(spec, spec.label), batch_format="pyarrow")
    if shuffle_seed is not None:
        encoded = encoded.random_shuffle(seed=shuffle_seed)
    return encoded.materialize()
