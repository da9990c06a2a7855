"""The pipeline run's record: what stages share, what the run returns, what goes to MLflow.

:class:`Context` carries the settings, the config and the MLflow run every
stage of :mod:`mlray.pipeline.stages` receives; :func:`start_run` opens it;
:func:`log_training` writes the training curves and Tune trials to it.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlray.config import Settings, code_version
from mlray.errors import find_mlray_error
from mlray.registry.tracking import log_history, log_metrics
from mlray.training.config import TrainConfig

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlray.export.quantize import Int8Report
    from mlray.runtimes.model_spec import ModelSpec
    from mlray.training.dataset import Splits
    from mlray.training.model import CTRModel
    from mlray.training.trainer import TrainOutcome
    from mlray.validation.psi import Reference

EPOCH_METRICS = ("train_loss", "val_loss", "val_auc", "samples_per_s", "epoch_seconds")


@dataclass
class PipelineResult:
    """What one pipeline run produced.

    Attributes:
        run_id, run_name: the MLflow run holding metrics, plots and the model files.
        model_name, version: the registered model version.
        alias: ``champion`` (promoted) or ``challenger``.
        promoted: whether the new version became champion.
        reason: the champion/challenger decision in words, with both scores.
        metrics: the new model's test-slice metrics (``test_auc``, ``test_log_loss``,
            ``test_ece``, ...): the names of the run's metrics and the version's tags.
        champion_metrics: the previous champion's metrics on the same slice, same names
            (None on a first run).
        champion_version: the previous champion's version (None on a first run).
        params: the hyperparameters of the registered model (the run's ``model.*`` params).
        validation: the validation summary line; warnings lists checks that warned.
        exported: export files the version carries (``model.onnx``...).
        seconds: wall time per stage.
    """

    run_id: str
    run_name: str
    model_name: str
    version: str
    alias: str
    promoted: bool
    reason: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None
    params: dict[str, Any]
    validation: str
    warnings: list[str] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class Evaluation:
    """The chosen model scored on the test slice, with the reference distributions it will carry."""

    model: CTRModel
    spec: ModelSpec
    metrics: dict[str, float]
    reference: Reference


@dataclass
class Champion:
    """The model in production: its version, spec, weights and training-data reference."""

    version: str
    spec: ModelSpec
    state: dict[str, Any]
    reference: Reference | None


@dataclass
class Context:
    """What every stage shares: settings, config, the MLflow run, the champion (if any)."""

    settings: Settings
    cfg: TrainConfig
    client: MlflowClient
    run_id: str
    run_name: str
    storage_path: str
    code: str = ""
    champion: Champion | None = None
    echo: Callable[[str], None] = print
    seconds: dict[str, float] = field(default_factory=dict)
    workdir: tempfile.TemporaryDirectory[str] = field(default_factory=tempfile.TemporaryDirectory)

    def stage(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one stage, timing it and saying what it did."""
        self.echo(f"[{self.run_name}] {name} ...")
        started = time.perf_counter()
        try:
            out = fn(self, *args)
        except Exception as e:
            self.client.set_tag(self.run_id, "mlray.failed_stage", name)
            err = find_mlray_error(e)
            self.client.set_tag(
                self.run_id, "mlray.error", (err.message if err else repr(e))[:4000]
            )
            raise
        self.seconds[name] = time.perf_counter() - started
        self.client.log_metric(self.run_id, f"seconds.{name.replace(' ', '_')}", self.seconds[name])
        self.echo(f"[{self.run_name}] {name}: done in {self.seconds[name]:.1f} s")
        return out


@dataclass
class Exported:
    """The new version's model directory: weights, export files and a few example rows.

    ``int8`` is ``kept``, ``rejected`` or ``skipped``; ``int8_reason`` says why.
    """

    model_dir: Path
    files: list[str]
    example_input: np.ndarray
    example_output: np.ndarray
    int8: str = "skipped"
    int8_reason: str = ""


def split_info(splits: Splits) -> dict[str, Any]:
    """The time split as the ``mlray.split`` tag records it: both boundaries, rows per slice."""
    return {
        "validation_start": splits.validation_start.isoformat(),
        "test_start": splits.test_start.isoformat(),
        "rows": splits.rows,
    }


def int8_verdict(report: Int8Report | None) -> tuple[str, str]:
    """The INT8 gate's verdict and why, as the version tags record it."""
    if report is None:
        return "skipped", "INT8 skipped: no calibration rows or test labels to check it on"
    return report.verdict, report.reason()


def start_run(settings: Settings, cfg: TrainConfig, echo: Callable[[str], None]) -> Context:
    """Open the MLflow run (config logged as params and a JSON artifact)."""
    from mlray.registry.tracking import connect

    client, experiment_id = connect(settings, cfg.experiment, cfg.tracking_uri)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_name = f"{cfg.model_name}-{stamp}-{uuid.uuid4().hex[:6]}"
    run = client.create_run(
        experiment_id,
        run_name=run_name,
        tags={"mlray.model_name": cfg.model_name, "mlray.config_file": cfg.source or ""},
    )
    # The code version is read once: a commit landing mid-run must not give the run two.
    ctx = Context(
        settings,
        cfg,
        client,
        run.info.run_id,
        run_name,
        settings.table_uri("ray_results", cfg.model_name),
        code_version(),
        echo=echo,
    )
    client.log_dict(ctx.run_id, cfg.model_dump(mode="json"), "train_config.json")
    # The tuned model.* params are logged once the model is chosen: MLflow keeps a param's
    # first value, and the config's defaults are not the model that gets registered.
    tuned = {f"model.{k}" for k in tuned_params(cfg)}
    for key, value in _flat(cfg.model_dump(mode="json", exclude={"settings"})).items():
        if key not in tuned:
            client.log_param(ctx.run_id, key, str(value)[:500])
    return ctx


def tuned_params(cfg: TrainConfig) -> list[str]:
    """The hyperparameters Tune searches (none when ``tune.num_samples`` is 0)."""
    return sorted(cfg.tune.search_space) if cfg.tune.num_samples > 0 else []


def log_training(ctx: Context, outcome: TrainOutcome) -> None:
    """Per-epoch metrics of the chosen run and its ``model.*`` params on the parent MLflow run.

    Each Tune trial gets a child run with its own params and curves.
    """
    log_history(ctx.client, ctx.run_id, outcome.history, EPOCH_METRICS)
    for k in tuned_params(ctx.cfg):
        ctx.client.log_param(ctx.run_id, f"model.{k}", str(outcome.params[k]))
    resumed = max((int(r.get("restored_from_epoch", -1)) for r in outcome.history), default=-1)
    log_metrics(
        ctx.client, ctx.run_id, {"resumed_from_epoch": resumed, "trials": len(outcome.trials)}
    )
    experiment = ctx.client.get_run(ctx.run_id).info.experiment_id
    for i, trial in enumerate(outcome.trials):
        tags = {"mlflow.parentRunId": ctx.run_id, "mlray.trial_error": trial["error"] or ""}
        child = ctx.client.create_run(experiment, run_name=f"{ctx.run_name}-trial-{i}", tags=tags)
        for k, v in trial["params"].items():
            ctx.client.log_param(child.info.run_id, f"model.{k}", str(v))
        log_history(ctx.client, child.info.run_id, trial["history"], EPOCH_METRICS)
        ctx.client.set_terminated(child.info.run_id, "FAILED" if trial["error"] else "FINISHED")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "search_space":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_champion(ctx: Context) -> Champion | None:
    """The current champion (its spec, weights and training-data reference), or None."""
    import torch

    from mlray.registry.download import download_version
    from mlray.registry.versions import STATE_FILE, version_for_alias

    name = ctx.cfg.model_name
    if version_for_alias(ctx.client, name, "champion") is None:
        ctx.echo("  champion: none yet (first run)")
        return None
    got = download_version(ctx.client, name, Path(ctx.workdir.name) / "champion", alias="champion")
    state = torch.load(got.path / STATE_FILE, map_location="cpu", weights_only=True)
    ctx.echo(f"  champion: v{got.version}")
    return Champion(got.version, got.spec, state, got.reference)
