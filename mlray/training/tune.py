"""Hyperparameter search: Ray Tune over Ray Train trials, ASHA early stopping, Optuna suggestions.

Each trial is a small driver function that builds a ``TorchTrainer``
(:func:`~mlray.training.trainer.make_trainer`) with ``TuneReportCallback``,
the Ray 2.60 pattern for tuning Train V2 runs: the workers' per-epoch
reports reach Tune, and ASHA stops the weak trials early.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import ray
import ray.data
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch
from ray.util.placement_group import (
    PlacementGroup,
    placement_group_table,
    remove_placement_group,
)

from mlray.errors import TrainingFailed
from mlray.runtimes.model_spec import ModelSpec
from mlray.training.config import SearchDim, TrainConfig
from mlray.training.trainer import HYPERPARAMETERS, TrainOutcome, best_row, fit, make_trainer

log = logging.getLogger(__name__)
# A trial's driver only waits on its trainer: it takes no CPU (the workers hold them), so trials can
# run side by side; Tune needs a non-empty bundle, hence a token byte of memory.
TRIAL_DRIVER_RESOURCES: dict[str, float] = {"memory": 1}
RELEASE_DELAY_S = 3.0


def search_space(cfg: TrainConfig) -> dict[str, Any]:
    """Tune's param space: the configured dimensions, other hyperparameters at ``cfg.model``."""
    space: dict[str, Any] = {k: getattr(cfg.model, k) for k in HYPERPARAMETERS}
    space.update({k: _dimension(d) for k, d in cfg.tune.search_space.items()})
    return space


def _dimension(d: SearchDim) -> Any:
    if d.kind == "choice":
        return tune.choice(list(d.values or []))
    # SearchDim's validator requires both bounds for every other kind.
    assert d.low is not None and d.high is not None
    if d.kind == "loguniform":
        return tune.loguniform(d.low, d.high)
    if d.kind == "uniform":
        return tune.uniform(d.low, d.high)
    return tune.randint(int(d.low), int(d.high))


def _trial(
    config: dict[str, Any],
    *,
    cfg: TrainConfig,
    spec: ModelSpec,
    train: ray.data.Dataset,
    validation: ray.data.Dataset,
    storage_path: str,
    name: str,
) -> None:
    """One trial: a full Ray Train run whose epoch reports go to Tune."""
    trial_id = tune.get_context().get_trial_id()
    trainer = make_trainer(
        cfg,
        spec,
        train,
        validation,
        storage_path=storage_path,
        name=f"{name}-{trial_id}",
        params=config,
        callbacks=[TuneReportCallback()],
    )
    fit(trainer)


class ReleaseStoppedTrials(tune.Callback):
    """Free the worker placement group of a trial that Tune stopped early.

    Tune ends a stopped trial by killing its driver, which takes the Train
    controller with it; Ray Train's own cleaner then removes the workers'
    placement group only if it can reach the state API (the dashboard). On a
    cluster without one the reserved CPUs would stay taken and later trials
    would wait forever, so the group is removed here, a moment after the
    trial ends (a trial that finished normally has already released it).
    """

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._schedule(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._schedule(trial)

    def _schedule(self, trial: Any) -> None:
        pg_hex = (trial.last_result or {}).get("placement_group")
        if pg_hex:
            timer = threading.Timer(RELEASE_DELAY_S, release_placement_group, args=(pg_hex,))
            timer.daemon = True
            timer.start()


def release_placement_group(pg_hex: str) -> bool:
    """Remove a placement group by id if it still exists; True when it was removed here."""
    pg = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_hex)))
    try:
        if placement_group_table(pg).get("state") in ("CREATED", "PENDING", "RESCHEDULING"):
            remove_placement_group(pg)
            log.info("Released placement group %s of a stopped trial", pg_hex)
            return True
    except Exception as e:  # noqa: BLE001 - best effort: the group may be gone already
        log.debug("Placement group %s not released: %s", pg_hex, e)
    return False


def tune_model(
    cfg: TrainConfig,
    spec: ModelSpec,
    train: ray.data.Dataset,
    validation: ray.data.Dataset,
    *,
    storage_path: str,
    name: str,
) -> TrainOutcome:
    """Search the configured space; the best epoch of the best trial (by ``tune.metric``) wins.

    Raises:
        TrainingFailed: every trial failed (the first error is named).
    """
    metric, mode = cfg.tune.metric, cfg.tune.mode
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial,
            cfg=cfg,
            spec=spec,
            train=train,
            validation=validation,
            storage_path=storage_path,
            name=name,
        ),
        TRIAL_DRIVER_RESOURCES,
    )
    # One bracket: ASHA then never draws one at random, and its stops depend only on the
    # trials' reports (and, with trials side by side, on the order they arrive in).
    scheduler = ASHAScheduler(
        max_t=cfg.training.epochs,
        grace_period=min(cfg.tune.grace_period, cfg.training.epochs),
        reduction_factor=cfg.tune.reduction_factor,
        brackets=1,
        stop_last_trials=False,
    )
    if cfg.tune.max_concurrent_trials > 1:
        log.info(
            "%d trials side by side: Tune's suggestions and ASHA's stops depend on which trial "
            "reports first, so a retrain may choose another model; set "
            "tune.max_concurrent_trials: 1 for a reproducible choice.",
            cfg.tune.max_concurrent_trials,
        )
    tuner = tune.Tuner(
        trainable,
        param_space=search_space(cfg),
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            scheduler=scheduler,
            search_alg=OptunaSearch(seed=cfg.training.seed),
            num_samples=cfg.tune.num_samples,
            max_concurrent_trials=cfg.tune.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=f"{name}-tune",
            storage_path=storage_path,
            verbose=0,
            callbacks=[ReleaseStoppedTrials()],
        ),
    )
    grid = tuner.fit()
    # ResultGrid is indexable but declares no __iter__ (iteration works through __getitem__).
    results = [grid[i] for i in range(len(grid))]
    trials = [_trial_summary(r) for r in results]
    candidates = [row for t in trials for row in t["history"] if row.get("checkpoint_path")]
    if not candidates:
        errors = [str(r.error) for r in results if r.error]
        why = ": " + errors[0] if errors else " to report a checkpoint"
        raise TrainingFailed(
            f"All {len(trials)} tuning trials of {name!r} failed{why}; "
            f"see {storage_path}/{name}-tune."
        )
    best = best_row(candidates, metric, mode)
    chosen = next(t for t in trials if any(r is best for r in t["history"]))
    return TrainOutcome(best["checkpoint_path"], best, chosen["history"], chosen["params"], trials)


def _trial_summary(result: Any) -> dict[str, Any]:
    df = result.metrics_dataframe
    history = (
        []
        if df is None
        else [
            {k: v for k, v in row.items() if k != "config" and not k.startswith("config/")}
            for row in df.to_dict("records")
        ]
    )
    params = {k: (result.config or {}).get(k) for k in HYPERPARAMETERS}
    return {
        "params": params,
        "history": history,
        "error": str(result.error) if result.error else None,
        "trial_id": (result.metrics or {}).get("trial_id"),
    }
