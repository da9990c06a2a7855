"""The training data: the point-in-time training set, its lineage, the time split and the encoded slices.

Stage functions, each taking and returning typed values:
:func:`build_training_set` -> :class:`TrainingData`; :func:`split_by_time` ->
:class:`Splits`; :func:`fit_spec` (statistics of the train slice) ->
:class:`~mlray.training.model.ModelSpec`; :func:`encode` -> datasets of ``x``/``y``
for Ray Train.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import deltalake
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from mlray.config import Settings
from mlray.errors import NotFoundError, SchemaError, ValidationFailed
from mlray.features.feature_view import Field
from mlray.offline.training_set import TrainingSet
from mlray.store import FeatureStore
from mlray.training.config import SplitConfig, TrainConfig
from mlray.training.model import ModelSpec
from mlray.training.preprocess import (
    EncodeBatch,
    merge_stats,
    partial_stats,
    spec_from_stats,
)

TIME_SAMPLE = 50_000


@dataclass
class TrainingData:
    """A materialized training set with what the model reads and where the rows came from.

    Attributes:
        training_set: the point-in-time training set (its dataset materialized).
        fields: feature column -> declared field (for the schema checks).
        numeric, categorical: the feature columns by kind, in model input order.
        feature_refs: the ``view:feature`` refs, in column order.
        lineage: Delta versions (views and labels), the content hash, the feature schema hash.
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


def labels_location(settings: Settings, table: str) -> str:
    """A labels table given by name (under ``<data_root>/raw``) or by path/URI."""
    if "/" in table or "://" in table or table.startswith("."):
        return table
    return settings.table_uri("raw", table)


def read_labels(settings: Settings, cfg: TrainConfig) -> tuple[ray.data.Dataset, dict[str, Any]]:
    """The label rows (pinned Delta version when a Delta table) and where they came from.

    Raises:
        NotFoundError: the table does not exist.
        SchemaError: a configured column is missing.
    """
    uri = labels_location(settings, cfg.labels.table)
    opts = settings.storage_options or None
    if "://" not in uri and not Path(uri).exists():
        raise NotFoundError(
            f"Labels table {uri} does not exist; run `mlray demo generate` or set labels.table "
            "in the training config to a Delta table or Parquet path."
        )
    version = None
    if _is_delta(uri, opts):
        version = deltalake.DeltaTable(uri, storage_options=opts).version()
        ds = ray.data.read_delta(uri, version=version, storage_options=opts)
    else:
        ds = ray.data.read_parquet(uri)
    names = ds.schema().names
    wanted = cfg.labels.columns or names
    needed = list(dict.fromkeys([*wanted, cfg.labels.label, cfg.labels.time]))
    missing = [c for c in needed if c not in names]
    if missing:
        raise SchemaError(
            f"Labels table {uri} lacks columns {missing}; it has {names}. Fix labels.columns, "
            "labels.label or labels.time in the training config."
        )
    ds = ds.select_columns(needed)
    if cfg.labels.start or cfg.labels.end:
        ds = ds.map_batches(
            TimeSlice(cfg.labels.time, cfg.labels.start, cfg.labels.end), batch_format="pyarrow"
        )
    return ds, {"uri": uri, "version": version}


def _is_delta(uri: str, opts: dict[str, str] | None) -> bool:
    if "://" not in uri:
        return Path(uri, "_delta_log").is_dir()
    try:
        return deltalake.DeltaTable.is_deltatable(uri, storage_options=opts)
    except OSError:  # a single Parquet object, not a table directory
        return False


def feature_fields(store: FeatureStore, refs: list[str]) -> dict[str, Field]:
    """Column name (``view__feature``) -> declared field, for stored and on-demand features alike."""
    out: dict[str, Field] = {}
    for ref in refs:
        view, _, feat = ref.partition(":")
        if view in store.on_demand:
            fields = {f.name: f for f in store.on_demand[view].schema}
            if feat not in fields:
                raise NotFoundError(
                    f"On-demand feature view {view!r} has no feature {feat!r}; "
                    f"it has {sorted(fields)}."
                )
            out[f"{view}__{feat}"] = fields[feat]
        else:
            out[f"{view}__{feat}"] = store.repo.view(view).field(feat)
    return out


def build_training_set(
    settings: Settings, cfg: TrainConfig, store: FeatureStore | None = None
) -> TrainingData:
    """Point-in-time training set for the configured labels and features, materialized once.

    Raises:
        NotFoundError, SchemaError: unknown features, missing tables or columns.
        ValidationFailed: no label rows.
    """
    store = store or FeatureStore(settings)
    labels, label_source = read_labels(settings, cfg)
    wanted: list[str] = (
        [str(r) for r in store.repo.resolve(cfg.features)]
        if isinstance(cfg.features, str)
        else list(cfg.features)
    )
    refs = list(dict.fromkeys([*wanted, *cfg.extra_features]))
    ts = store.get_training_data(labels, refs, label_time=cfg.labels.time)
    ts = TrainingSet(ts.dataset.materialize(), ts.features, ts.label_time, ts.metadata)
    if ts.dataset.count() == 0:
        raise ValidationFailed(
            f"No label rows in {label_source['uri']} (window {cfg.labels.start} .. "
            f"{cfg.labels.end}); nothing to train on."
        )
    fields = feature_fields(store, refs)
    forced = {r.replace(":", "__", 1) for r in cfg.categorical}
    categorical = [
        c
        for c in fields
        if c in forced
        or pa.types.is_string(fields[c].dtype)
        or pa.types.is_large_string(fields[c].dtype)
    ]
    numeric = [c for c in fields if c not in categorical]
    lineage = {
        "views": {v: m["version"] for v, m in ts.metadata["views"].items()},
        "view_uris": {v: m["uri"] for v, m in ts.metadata["views"].items()},
        "labels": label_source,
        "feature_schema_hash": ts.metadata["feature_schema_hash"],
        "on_demand": ts.metadata.get("on_demand", {}),
        "content_hash": ts.content_hash(),
        "rows": ts.dataset.count(),
    }
    by_column = {r.replace(":", "__", 1): r for r in refs}
    return TrainingData(
        ts, fields, numeric, categorical, [by_column[c] for c in [*numeric, *categorical]], lineage
    )


class TimeSlice:
    """``map_batches`` filter keeping rows with ``start <= time < end`` (either bound optional)."""

    def __init__(self, column: str, start: datetime | None, end: datetime | None) -> None:
        self.column, self.start, self.end = column, _us(start), _us(end)

    def __call__(self, batch: pa.Table) -> pa.Table:
        t = pc.cast(pc.cast(batch.column(self.column), pa.timestamp("us", tz="UTC")), pa.int64())
        mask = pc.is_valid(t)
        if self.start is not None:
            mask = pc.and_(mask, pc.greater_equal(t, self.start))
        if self.end is not None:
            mask = pc.and_(mask, pc.less(t, self.end))
        return batch.filter(mask)


def _us(t: datetime | None) -> int | None:
    if t is None:
        return None
    if t.tzinfo is None:
        raise SchemaError(
            f"Time {t.isoformat()} has no time zone; write it with Z or an offset, e.g. "
            "2026-01-08T00:00:00Z."
        )
    return int((t - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)


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
        us = np.sort(
            pc.cast(pc.cast(times, pa.timestamp("us", tz="UTC")), pa.int64()).to_numpy(
                zero_copy_only=False
            )
        )
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
    """Normalization statistics and vocabularies from the train slice (summed per block), as a spec."""
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
    """The slice as ``x`` (float32[F]) and ``y`` rows for Ray Train, encoded by the shared function, materialized.

    With ``shuffle_seed`` the rows are shuffled once, globally: the training set
    comes out of the join grouped by entity, and batches must not be.
    """
    encoded = ds.map_batches(EncodeBatch(spec, spec.label), batch_format="pyarrow")
    if shuffle_seed is not None:
        encoded = encoded.random_shuffle(seed=shuffle_seed)
    return encoded.materialize()
