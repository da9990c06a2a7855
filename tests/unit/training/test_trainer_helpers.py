"""Choosing the best epoch, the per-run loop config, the Tune search space."""

from __future__ import annotations

import math

from ray import tune

from mlray.runtimes.model_spec import ModelSpec
from mlray.training.config import TrainConfig
from mlray.training.train_loop import spec_for
from mlray.training.trainer import best_row, loop_config
from mlray.training.tune import search_space

SPEC = ModelSpec(numeric=["a"], categorical=[], vocab={}, means=[0.0], stds=[1.0], fills=[0.0])


def test_best_row_by_metric_with_nan_as_worst_and_later_epoch_on_ties():
    rows = [
        {"epoch": 0, "val_auc": 0.7, "val_loss": 0.3},
        {"epoch": 1, "val_auc": math.nan, "val_loss": 0.1},
        {"epoch": 2, "val_auc": 0.7, "val_loss": 0.2},
    ]
    assert best_row(rows, "val_auc", "max")["epoch"] == 2
    assert best_row(rows, "val_loss", "min")["epoch"] == 1


def test_loop_config_takes_trial_params_over_the_model_section():
    cfg = TrainConfig(model={"lr": 0.01, "width": 32}, training={"epochs": 4, "batch_size": 128})
    out = loop_config(cfg, SPEC, {"lr": 0.5, "dropout": 0.2})
    assert out["lr"] == 0.5 and out["dropout"] == 0.2 and out["width"] == 32
    assert out["epochs"] == 4 and out["batch_size"] == 128 and out["spec"]["numeric"] == ["a"]
    spec = spec_for(out)
    assert spec.hidden == [32, 16] and spec.dropout == 0.2


def test_search_space_turns_dimensions_into_tune_domains():
    cfg = TrainConfig(
        tune={
            "search_space": {
                "lr": {"kind": "loguniform", "low": 1e-4, "high": 1e-2},
                "width": {"kind": "choice", "values": [16, 32]},
                "layers": {"kind": "randint", "low": 1, "high": 3},
            }
        }
    )
    space = search_space(cfg)
    assert isinstance(space["lr"], tune.search.sample.Float)
    assert isinstance(space["width"], tune.search.sample.Categorical)
    assert isinstance(space["layers"], tune.search.sample.Integer)
    assert space["dropout"] == cfg.model.dropout


def test_torch_threads_leave_one_worker_cpu_to_the_data_pipeline_unless_set():
    def threads(**training) -> int:
        return TrainConfig(training=training).training.threads_per_worker()

    assert threads(cpus_per_worker=1) == 1
    assert threads(cpus_per_worker=2) == 1
    assert threads(cpus_per_worker=8) == 7
    assert threads(cpus_per_worker=0.5) == 1
    assert threads(cpus_per_worker=8, torch_threads=8) == 8
    out = loop_config(TrainConfig(training={"cpus_per_worker": 4, "cache_shard_mb": 16}), SPEC, {})
    assert out["torch_threads"] == 3 and out["cache_shard_mb"] == 16
