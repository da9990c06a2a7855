"""Training runs a user can trust and read.

Reproducible: the data stages and Ray Tune (2 samples, 2 epochs) run twice on
the session's small demo data with the same config and seed, and choose the
same model with the same metrics. The rest reads the session's tuned
pipeline run (``first_run``): the run and the version record the model
actually registered, under one name per metric, with the INT8 verdict and
lineage that survives a moved data root.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from training_helpers import mlflow_client, small_config

from mlray.config import Settings, load_settings
from mlray.pipeline import PipelineResult
from mlray.registry import lineage
from mlray.registry.download import download_version
from mlray.registry.versions import STATE_FILE
from mlray.training.config import TrainConfig
from mlray.training.dataset import build_training_set, encode, fit_spec, split_by_time
from mlray.training.evaluate import metrics, score_dataset
from mlray.training.rebuild import rebuild_test_slice
from mlray.training.train_loop import load_checkpoint
from mlray.training.tune import tune_model

MODEL = "ctr_model"
EPOCH_METRICS = ("epoch", "train_loss", "val_loss", "val_auc")


def tune_and_train(settings: Settings, cfg: TrainConfig, storage: Path, name: str) -> dict:
    """The pipeline's data stages and Tune, from the tables up; what a retrain would choose."""
    data = build_training_set(settings, cfg)
    splits = split_by_time(data.dataset, cfg.labels.time, cfg.split)
    spec = fit_spec(splits.train, data, cfg)
    train_x = encode(splits.train, spec, shuffle_seed=cfg.training.seed)
    outcome = tune_model(
        cfg, spec, train_x, encode(splits.validation, spec), storage_path=str(storage), name=name
    )
    chosen_spec, state, _ = load_checkpoint(outcome.checkpoint_path)
    test: dict[str, Any] = metrics(*score_dataset(splits.test, chosen_spec, state))
    return {
        "params": outcome.params,
        "chosen": {k: outcome.metrics[k] for k in EPOCH_METRICS},
        "trials": [
            [{k: row[k] for k in EPOCH_METRICS} for row in t["history"]] for t in outcome.trials
        ],
        "test": test,
    }


@pytest.fixture(scope="module")
def retrained(train_root: Settings, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    cfg = small_config(
        tune={"num_samples": 2, "max_concurrent_trials": 1},
        training={"epochs": 2, "batch_size": 256, "seed": 11},
    )
    storage = tmp_path_factory.mktemp("repro")
    return [tune_and_train(train_root, cfg, storage, f"repro-{i}") for i in range(2)]


def test_same_data_config_and_seed_give_the_same_model_and_metrics(retrained: list[dict]):
    first, second = retrained
    assert first["params"] == second["params"]
    assert len(first["trials"]) == len(second["trials"]) == 2
    for a, b in zip(
        [first["chosen"], *sum(first["trials"], [])],
        [second["chosen"], *sum(second["trials"], [])],
        strict=True,
    ):
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], abs=1e-6), k
    for k, v in first["test"].items():
        assert second["test"][k] == pytest.approx(v, abs=1e-6), k


def test_the_run_logs_the_registered_models_params(train_root: Settings, first_run: PipelineResult):
    first = first_run
    params = mlflow_client(train_root).get_run(first.run_id).data.params
    for k, v in first.params.items():
        assert params[f"model.{k}"] == str(v), k
    assert not any(p.startswith("best.") for p in params)


def test_one_name_per_metric_in_the_run_the_version_and_the_result(
    train_root: Settings, first_run: PipelineResult
):
    first = first_run
    client = mlflow_client(train_root)
    run_metrics = client.get_run(first.run_id).data.metrics
    tags = client.get_model_version(MODEL, first.version).tags
    assert set(first.metrics) == {
        "test_auc",
        "test_log_loss",
        "test_ece",
        "test_rows",
        "test_click_rate",
        "test_mean_score",
    }
    for name, value in first.metrics.items():
        assert float(tags[name]) == value and run_metrics[name] == pytest.approx(value, rel=1e-12)
    assert not any(k.startswith("metric.") for k in tags)


def test_the_int8_verdict_and_its_reason_are_version_tags(
    train_root: Settings, first_run: PipelineResult
):
    first = first_run
    tags = mlflow_client(train_root).get_model_version(MODEL, first.version).tags
    assert tags[lineage.TAG_INT8] in ("kept", "rejected")
    assert (tags[lineage.TAG_INT8] == "kept") == ("model.int8.onnx" in first.exported)
    assert tags[lineage.TAG_INT8_REASON].startswith(f"INT8 {tags[lineage.TAG_INT8]}: test AUC ")


def test_lineage_paths_are_relative_to_the_data_root(
    train_root: Settings, first_run: PipelineResult, tmp_path: Path
):
    first = first_run
    client = mlflow_client(train_root)
    tags = client.get_model_version(MODEL, first.version).tags
    assert tags[lineage.TAG_LABELS] == "raw/impressions"
    root = str(Path(train_root.data_root).resolve())
    assert not any(root in v for v in tags.values())
    got = download_version(client, MODEL, tmp_path, version=first.version)
    recorded = json.loads((got.path / "lineage.json").read_text())
    assert recorded["labels"]["uri"] == "raw/impressions"
    assert recorded["view_uris"] and all(
        u == f"features/{v}" for v, u in recorded["view_uris"].items()
    )


def test_the_test_slice_is_rebuilt_from_the_tags_even_after_a_move(
    train_root: Settings, first_run: PipelineResult, tmp_path: Path
):
    first = first_run
    client = mlflow_client(train_root)
    tags = client.get_model_version(MODEL, first.version).tags
    got = download_version(client, MODEL, tmp_path / "cache", version=first.version)
    state = torch.load(got.path / STATE_FILE, map_location="cpu", weights_only=True)
    root, moved = Path(train_root.data_root).resolve(), tmp_path / "moved"
    shutil.copytree(root, moved, ignore=shutil.ignore_patterns("ray_results", "mlartifacts"))
    settings = load_settings(config_file=None, data_root=str(moved), num_buckets=4)
    # The old tables are out of reach while the slice is rebuilt: only the moved root is read.
    hidden = [(root / d, tmp_path / f"hidden-{d}") for d in ("raw", "features")]
    for src, dst in hidden:
        src.rename(dst)
    try:
        test = rebuild_test_slice(settings, MODEL, first.version)
    finally:
        for src, dst in hidden:
            dst.rename(src)
    assert test.count() == json.loads(tags[lineage.TAG_SPLIT])["rows"]["test"]
    rebuilt = metrics(*score_dataset(test, got.spec, state))
    assert rebuilt["auc"] == pytest.approx(first.metrics["test_auc"], abs=1e-9)
    assert rebuilt["log_loss"] == pytest.approx(first.metrics["test_log_loss"], abs=1e-9)
