"""One Ray Train run: a ``TorchTrainer`` over the encoded slices; checkpoints, restarts on failure.

:func:`make_trainer` builds the trainer (also used by each Tune trial);
:func:`train_once` runs it and picks the best epoch's checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import ray.data
from ray.data import ExecutionOptions
from ray.train import (
    CheckpointConfig,
    DataConfig,
    FailureConfig,
    LoggingConfig,
    Result,
    RunConfig,
    ScalingConfig,
)
from ray.train.torch import TorchTrainer

from mlray.errors import TrainingFailed
from mlray.ray_session import set_train_poll_interval
from mlray.runtimes.model_spec import ModelSpec
from mlray.training.config import TrainConfig
from mlray.training.train_loop import train_loop_per_worker

HYPERPARAMETERS = ("lr", "width", "layers", "embedding_dim", "dropout", "weight_decay")


@dataclass
class TrainOutcome:
    """The chosen model and how it was found.

    Attributes:
        checkpoint_path: directory of the chosen checkpoint
            (see :func:`~mlray.training.train_loop.load_checkpoint`).
        metrics: the metrics reported with that checkpoint.
        history: every epoch reported by the chosen trial, in order.
        params: the hyperparameters of the chosen trial.
        trials: per trial, its params, history and status (empty without tuning).
    """

    checkpoint_path: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    params: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)


def loop_config(cfg: TrainConfig, spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The ``train_loop_config`` of one run: spec, hyperparameters, epochs, batch size, seed."""
    hp = {k: params.get(k, getattr(cfg.model, k)) for k in HYPERPARAMETERS}
    t = cfg.training
    return {
        "spec": spec.to_dict(),
        **hp,
        "epochs": t.epochs,
        "batch_size": t.batch_size,
        "seed": t.seed,
        "local_shuffle_rows": t.local_shuffle_rows,
        "prefetch_batches": t.prefetch_batches,
        "batches_per_read": t.batches_per_read,
        "cache_shard_mb": t.cache_shard_mb,
        "torch_threads": t.threads_per_worker(),
    }


def make_trainer(
    cfg: TrainConfig,
    spec: ModelSpec,
    train: ray.data.Dataset,
    validation: ray.data.Dataset,
    *,
    storage_path: str,
    name: str,
    params: dict[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> TorchTrainer:
    """A ``TorchTrainer`` with ``cfg.training``'s workers; failures resume from the last checkpoint.

    With several workers only ``train`` is split between them; every worker reads all
    of ``validation`` so each reports the same validation metrics.
    """
    t = cfg.training
    resources = {"CPU": t.cpus_per_worker, **({"GPU": 1} if t.use_gpu else {})}
    set_train_poll_interval(t.health_check_interval_s)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config(cfg, spec, params or {}),
        scaling_config=ScalingConfig(
            num_workers=t.num_workers, use_gpu=t.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            callbacks=callbacks,
            failure_config=FailureConfig(max_failures=t.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=None),
            # ray.train binds the Train V2 RunConfig (which has logging_config) only under
            # is_v2_enabled(); mypy sees the V1 class it imports first.
            logging_config=LoggingConfig(log_level=t.log_level),  # type: ignore[call-arg]
        ),
        datasets={"train": train, "validation": validation},
        # One worker reads the whole train slice: no split, so no split coordinator to start and
        # feed each epoch.
        dataset_config=DataConfig(
            datasets_to_split=["train"] if t.num_workers > 1 else [],
            execution_options=ordered_ingest(),
        ),
    )


def ordered_ingest() -> ExecutionOptions:
    """Ray Train's ingest options with the rows kept in order.

    Ray Train replaces a dataset's execution options with these when it hands
    the dataset to the workers; its defaults follow the ``DataContext`` of the
    process that configures them, where blocks go out as their tasks finish.
    Kept in order, the first (streamed) epoch reads the seeded shuffle's order
    every run.
    """
    current = ray.data.DataContext.get_current().execution_options
    return ExecutionOptions(
        resource_limits=current.resource_limits,
        preserve_order=True,
        verbose_progress=current.verbose_progress,
    )


def fit(trainer: TorchTrainer) -> Result:
    """``trainer.fit()`` with Ray Data's progress bars off in the workers.

    A dataset runs with the Ray Data context it was created under, and the
    workers get a copy of the context current at ``fit``. With bars on in
    either, every worker's every pass over its shard draws one more bar on the
    driver's console; the epoch reports already say how far training is.
    """
    contexts = [
        ray.data.DataContext.get_current(),
        *(ds.context for ds in trainer.datasets.values() if isinstance(ds, ray.data.Dataset)),
    ]
    shown = [c.enable_progress_bars for c in contexts]
    for c in contexts:
        c.enable_progress_bars = False
    try:
        return trainer.fit()
    finally:
        for c, on in zip(contexts, shown, strict=True):
            c.enable_progress_bars = on


def train_once(
    cfg: TrainConfig,
    spec: ModelSpec,
    train: ray.data.Dataset,
    validation: ray.data.Dataset,
    *,
    storage_path: str,
    name: str,
    metric: str = "val_auc",
    mode: str = "max",
) -> TrainOutcome:
    """Train with the configured hyperparameters (no tuning); the best epoch by ``metric`` wins.

    Raises:
        TrainingFailed: training failed more often than ``training.max_failures`` allows.
    """
    trainer = make_trainer(cfg, spec, train, validation, storage_path=storage_path, name=name)
    try:
        result = fit(trainer)
    except Exception as e:
        raise TrainingFailed(
            f"Training run {name!r} failed after {cfg.training.max_failures} restarts: {e}. "
            f"Its checkpoints and logs are under {storage_path}/{name}."
        ) from e
    rows = [dict(m, checkpoint_path=c.path) for c, m in (result.best_checkpoints or [])]
    if not rows:
        raise TrainingFailed(
            f"Training run {name!r} finished without a checkpoint; see {storage_path}/{name}."
        )
    best = best_row(rows, metric, mode)
    params = {k: getattr(cfg.model, k) for k in HYPERPARAMETERS}
    return TrainOutcome(
        best["checkpoint_path"], best, sorted(rows, key=lambda r: r.get("epoch", 0)), params
    )


def best_row(rows: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any]:
    """The row with the best ``metric`` (NaN counts as worst); ties go to the later epoch."""

    def key(r: dict[str, Any]) -> tuple[float, int]:
        v = r.get(metric, float("nan"))
        v = (
            float("-inf")
            if v is None or (isinstance(v, float) and math.isnan(v))
            else (v if mode == "max" else -v)
        )
        return v, int(r.get("epoch", 0))

    return max(rows, key=key)
