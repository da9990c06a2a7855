"""The multi-node checks' steps: run the same way on one node and on the loopback cluster.

The pytest process runs them on the test session's single-node Ray (the
reference); ``multinode_driver.py`` runs them as the driver of a two-node
cluster. Each step returns plain JSON-able values, so the two runs can
be compared exactly. Nothing here is sent to a Ray worker as code (only
mlray's own functions run there), so the cluster's workers need not import
this module.
"""

from __future__ import annotations

import hashlib
import sys
from copy import deepcopy
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import yaml

from mlray.config import Settings

# The driver runs as a script from this directory: the shared test data lives in tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pit_frames import chunks, make  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
PRODUCTION = ROOT / "serve_configs" / "production.yaml"
FEATURES = "ctr_model_v1"
LOG_TABLE = "multinode_predictions"
EPOCH_METRICS = ("epoch", "train_loss", "val_loss", "val_auc", "samples", "world_size")
MULTI, SINGLE = "mn-multi", "mn-single"  # the two materializations' Redis key prefixes
REQUESTS: list[dict[str, dict[str, Any]]] = [
    {"entities": {"user_id": u, "item_id": i}, "context": {"device": d, "price": p}}
    for u, i, d, p in [(3, 7, "mobile", 5), (11, 2, "desktop", 19.5), (42, 30, "tablet", 1)]
]


def settings_args(s: Settings) -> dict[str, Any]:
    """The overrides that rebuild ``s`` (data root, project, buckets, Redis) in another process."""
    return {
        "data_root": s.data_root,
        "project": s.project,
        "num_buckets": s.num_buckets,
        "redis": s.redis.model_dump(),
    }


def table_hash(table: pa.Table, order: list[str]) -> str:
    """SHA-256 of ``table`` sorted by ``order``, over its Arrow IPC stream (schema and values)."""
    table = table.sort_by([(c, "ascending") for c in order]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def pit_frames(n_labels: int = 4000, n_feats: int = 20000, entities: int = 300):
    """Arbitrary labels and feature rows (late availability, nulls, unknown entities), seeded."""
    return make(n_labels, n_feats, entities, seed=13)


def pit_join_result() -> dict[str, Any]:
    """``point_in_time_join`` of :func:`pit_frames` from many shuffled blocks; rows and hash."""
    from datetime import timedelta

    import ray.data

    from mlray.offline.pit_join import point_in_time_join

    labels, feats = pit_frames()
    out = point_in_time_join(
        ray.data.from_pandas(chunks(labels.sample(frac=1, random_state=2), 4)),
        ray.data.from_pandas(chunks(feats.sample(frac=1, random_state=3), 6)),
        entity_keys=["user_id"],
        label_time="event_time",
        feature_time="event_time",
        available_time="available_time",
        ttl=timedelta(hours=3),
        num_partitions=4,
    )
    table = pa.concat_tables(ray.get(list(out.to_arrow_refs())))
    nulls = int(table["f"].null_count)
    return {"rows": table.num_rows, "nulls": nulls, "hash": table_hash(table, ["label_id"])}


def labels_frame(settings: Settings, end: datetime) -> pd.DataFrame:
    """The demo's impressions before ``end`` (ids, times), read from the raw Delta table."""
    import deltalake

    t = deltalake.DeltaTable(settings.table_uri("raw", "impressions")).to_pyarrow_table(
        columns=["user_id", "item_id", "event_time", "clicked"]
    )
    df = t.to_pandas()
    return df[df.event_time < pd.Timestamp(end)].reset_index(drop=True)


def training_data_result(settings: Settings, end: datetime) -> dict[str, Any]:
    """``FeatureStore.get_training_data`` from the offline store: rows and content hash."""
    from mlray.store import FeatureStore

    store = FeatureStore(settings)
    ts = store.get_training_data(labels_frame(settings, end), FEATURES)
    return {"rows": ts.dataset.count(), "hash": ts.content_hash(), "features": ts.features}


def online_settings(settings: Settings, redis_url: str, prefix: str) -> Settings:
    """``settings`` writing to the Redis at ``redis_url`` under a key prefix of its own."""
    redis = settings.redis.model_copy(update={"url": redis_url, "key_prefix": prefix})
    return settings.model_copy(update={"redis": redis})


def materialize_result(settings: Settings, end: datetime) -> list[dict[str, Any]]:
    """A full materialization as of ``end``; per view what it wrote (the counts, not the time)."""
    from mlray.store import FeatureStore

    store = FeatureStore(settings)
    try:
        results = store.materialize(end)
    finally:
        store.close()
    keep = ("view", "table_version", "entities", "written", "unchanged", "older", "expired")
    return [{k: getattr(r, k) for k in keep} for r in results]


def train_config(num_workers: int, cpus_per_worker: float, end: datetime) -> Any:
    """One epoch, no tuning, one torch thread per worker (so the two runs differ only in
    where the workers are placed)."""
    from mlray.training.config import load_train_config

    return load_train_config(
        None,
        experiment="it-multinode",
        tune={"num_samples": 0},
        labels={"end": end.isoformat()},
        training={
            "epochs": 1,
            "batch_size": 256,
            "num_workers": num_workers,
            "cpus_per_worker": cpus_per_worker,
            "torch_threads": 1,
            "seed": 3,
        },
    )


def train_result(settings: Settings, cfg: Any, storage: Path, name: str) -> dict[str, Any]:
    """The pipeline's data stages and one Ray Train run; its epochs, data hash and test metrics."""
    from mlray.training.dataset import build_training_set, encode, fit_spec, split_by_time
    from mlray.training.evaluate import metrics, score_dataset
    from mlray.training.train_loop import load_checkpoint
    from mlray.training.trainer import train_once

    data = build_training_set(settings, cfg)
    splits = split_by_time(data.dataset, cfg.labels.time, cfg.split)
    spec = fit_spec(splits.train, data, cfg)
    outcome = train_once(
        cfg,
        spec,
        encode(splits.train, spec, shuffle_seed=cfg.training.seed),
        encode(splits.validation, spec),
        storage_path=str(storage),
        name=name,
    )
    chosen_spec, state, _ = load_checkpoint(outcome.checkpoint_path)
    return {
        "content_hash": data.lineage["content_hash"],
        "rows": {
            "train": splits.train.count(),
            "validation": splits.validation.count(),
        },
        "history": [{k: row[k] for k in EPOCH_METRICS} for row in outcome.history],
        "test": metrics(*score_dataset(splits.test, chosen_spec, state)),
    }


def cpu_production_config(
    port: int, settings: dict[str, Any], base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``serve_configs/production.yaml`` made to fit two CPU nodes of this machine.

    Only what a CPU-only loopback cluster needs changes: HTTP on 127.0.0.1 and a
    free port; the model deployment without a GPU and with a quarter CPU (one
    replica, ONNX Runtime as ``runtime: auto`` picks without CUDA); ingress
    replicas of a quarter CPU, exactly two and at most one per node; the mlray
    settings of the test; the prediction log in a table of its own. The rest
    (shape, shadow, EveryNode proxies, batching, store_down, log batching) is
    production's.
    """
    body = deepcopy(base if base is not None else yaml.safe_load(PRODUCTION.read_text()))
    body["http_options"].update(host="127.0.0.1", port=port)
    (app,) = body["applications"]
    args = app["args"]
    args["model_deployment"].update(num_gpus=0, num_cpus=0.25)
    args["ingress_cpus"] = 0.25
    args["settings"] = settings
    args["log"]["table"] = LOG_TABLE
    for d in app["deployments"]:
        scaling = d["autoscaling_config"]
        n = 2 if d["name"] == "Ingress" else 1
        scaling.update(min_replicas=n, max_replicas=n)
        if d["name"] == "Ingress":
            d["max_replicas_per_node"] = 1
    return body
