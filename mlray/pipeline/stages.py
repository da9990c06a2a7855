"""The training pipeline, top to bottom: one line per stage in :func:`run_pipeline`.

    build training set -> validate -> split -> fit preprocessing -> tune/train
    -> evaluate -> compare with the champion -> register

Each stage is a function below taking and returning typed values, logging
what it did to the run's MLflow record. The first stage that fails stops the
run with a typed error saying why; the MLflow run is then marked FAILED and
nothing is registered (a failed validation leaves its HTML report behind).

Quick start::

    from mlray.config import load_settings
    from mlray.pipeline import run_pipeline
    from mlray.training.config import TrainConfig

    result = run_pipeline(load_settings(), TrainConfig())
    print(result.version, result.alias, result.metrics["test_auc"])
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlray.config import Settings
from mlray.errors import ValidationFailed
from mlray.ray_session import ensure_ray
from mlray.registry.tracking import log_metrics
from mlray.training.config import TrainConfig

if TYPE_CHECKING:
    import ray.data

    from mlray.registry.champion import Decision
    from mlray.runtimes.model_spec import ModelSpec
    from mlray.training.dataset import Splits, TrainingData
    from mlray.training.trainer import TrainOutcome
    from mlray.validation.psi import Reference
    from mlray.validation.report import ValidationReport

from mlray.pipeline.record import (
    Context,
    Evaluation,
    Exported,
    PipelineResult,
    int8_verdict,
    load_champion,
    log_training,
    split_info,
    start_run,
)

log = logging.getLogger("mlray.pipeline")
EXPORT_ROWS, CALIBRATION_ROWS = 20_000, 5_000


def run_pipeline(
    settings: Settings, train_config: TrainConfig, *, echo: Callable[[str], None] | None = None
) -> PipelineResult:
    """Train, judge and register one model version; stops at the first failing stage.

    Args:
        settings: where the data, Ray and MLflow are.
        train_config: what to train and how (see :mod:`mlray.training.config`).
        echo: receives one line per stage start/end (default: print).

    Returns:
        A :class:`PipelineResult` with the version, the decision and the metrics.

    Raises:
        ValidationFailed: the training data failed validation (nothing registered).
        NotFoundError, SchemaError, ConfigError: missing tables, columns or bad config.
        BackendUnavailable: MLflow or Ray is unreachable.
        TrainingFailed: training failed beyond ``training.max_failures`` restarts.
    """
    ensure_ray(settings)
    ctx = start_run(settings, train_config, echo or print)
    try:
        ctx.champion = ctx.stage("load champion", load_champion)
        data = ctx.stage("build training set", build_training_set)
        reference, report = ctx.stage("validate", validate, data)
        splits = ctx.stage("split by time", split, data)
        spec, train_x, val_x = ctx.stage("fit preprocessing", prepare, data, splits)
        outcome = ctx.stage("tune and train", train, spec, train_x, val_x)
        evaluation = ctx.stage("evaluate", evaluate, outcome, splits, reference)
        decision, champion_metrics = ctx.stage("compare with champion", compare, evaluation, splits)
        exported = ctx.stage("export", export, splits, evaluation, train_x)
        version = ctx.stage("register", register, data, splits, evaluation, decision, exported)
    except BaseException:
        ctx.client.set_terminated(ctx.run_id, "FAILED")
        raise
    finally:
        ctx.workdir.cleanup()
    ctx.client.set_terminated(ctx.run_id, "FINISHED")
    return PipelineResult(
        ctx.run_id,
        ctx.run_name,
        train_config.model_name,
        version,
        decision.alias,
        decision.promote,
        decision.reason,
        evaluation.metrics,
        champion_metrics,
        decision.champion_version,
        outcome.params,
        report.summary(),
        [f"{c.name}: {c.detail}" for c in report.warnings],
        exported.files,
        dict(ctx.seconds),
    )


# -- stages ------------------------------------------------------------------------------
def build_training_set(ctx: Context) -> TrainingData:
    """Point-in-time training set (labels + stored and request-time features), lineage recorded."""
    from mlray.registry.lineage import lineage_tags
    from mlray.training.dataset import build_training_set as build

    data = build(ctx.settings, ctx.cfg)
    for key, value in lineage_tags(
        data.lineage, data.feature_refs, ctx.run_name, code=ctx.code
    ).items():
        ctx.client.set_tag(ctx.run_id, key, value)
    ctx.client.log_dict(ctx.run_id, data.lineage, "lineage.json")
    ctx.echo(
        f"  {data.lineage['rows']:,} rows, {len(data.fields)} features, views "
        f"{data.lineage['views']}, data hash {data.lineage['content_hash'][:12]}"
    )
    cut = data.lineage.get("lookback")
    if cut:
        ctx.echo(
            f"  starts {cut['start']}, once every view's lookback has filled (view "
            f"{cut['view']}: first event {cut['first_event']} + {cut['lookback']}): "
            f"{cut['dropped_rows']:,} earlier label rows dropped (labels.start_after_lookback)"
        )
    return data


def validate(ctx: Context, data: TrainingData) -> tuple[Reference, ValidationReport]:
    """Schema, null rates and drift against the champion's training data; HTML report to MLflow."""
    from mlray.validation.validate import validate_training_set

    champion = ctx.champion
    report, reference = validate_training_set(
        data.dataset,
        data.fields,
        label=ctx.cfg.labels.label,
        label_time=ctx.cfg.labels.time,
        config=ctx.cfg.validation,
        categorical=data.categorical,
        reference=champion.reference if champion else None,
        reference_name=f"{ctx.cfg.model_name} v{champion.version} (champion)" if champion else None,
    )
    ctx.client.log_text(ctx.run_id, report.to_html(), "validation/report.html")
    ctx.client.log_dict(ctx.run_id, report.to_dict(), "validation/report.json")
    log_metrics(
        ctx.client, ctx.run_id, {f"psi.{feature}": value for feature, value in report.psi.items()}
    )
    ctx.client.set_tag(ctx.run_id, "mlray.validation", "passed" if report.passed else "failed")
    ctx.echo(f"  {report.summary()}")
    for check in report.warnings:
        ctx.echo(f"  warning: {check.name}: {check.detail}")
    report.raise_if_failed()
    return reference, report


def split(ctx: Context, data: TrainingData) -> Splits:
    """Earliest slice trains, the next validates, the latest tests."""
    from mlray.registry.lineage import TAG_SPLIT
    from mlray.training.dataset import split_by_time

    splits = split_by_time(data.dataset, ctx.cfg.labels.time, ctx.cfg.split)
    info = split_info(splits)
    ctx.client.set_tag(ctx.run_id, TAG_SPLIT, json.dumps(info, sort_keys=True))
    ctx.echo(
        f"  rows {splits.rows}; validation from {info['validation_start']}, "
        f"test from {info['test_start']}"
    )
    return splits


def prepare(
    ctx: Context, data: TrainingData, splits: Splits
) -> tuple[ModelSpec, ray.data.Dataset, ray.data.Dataset]:
    """Normalization statistics and vocabularies from the train slice.

    Returns the spec and the train and validation slices encoded for Ray Train.
    """
    from mlray.training.dataset import encode, fit_spec

    spec = fit_spec(splits.train, data, ctx.cfg)
    ctx.client.log_dict(ctx.run_id, spec.to_dict(), "model_spec.json")
    return (
        spec,
        encode(splits.train, spec, shuffle_seed=ctx.cfg.training.seed),
        encode(splits.validation, spec),
    )


def train(
    ctx: Context, spec: ModelSpec, train_x: ray.data.Dataset, val_x: ray.data.Dataset
) -> TrainOutcome:
    """Ray Tune over Ray Train trials (or one Ray Train run when ``tune.num_samples`` is 0)."""
    from mlray.training.trainer import train_once
    from mlray.training.tune import tune_model

    cfg = ctx.cfg
    if cfg.tune.num_samples > 0:
        outcome = tune_model(
            cfg, spec, train_x, val_x, storage_path=ctx.storage_path, name=ctx.run_name
        )
    else:
        outcome = train_once(
            cfg,
            spec,
            train_x,
            val_x,
            storage_path=ctx.storage_path,
            name=ctx.run_name,
            metric=cfg.tune.metric,
            mode=cfg.tune.mode,
        )
    log_training(ctx, outcome)
    ctx.echo(
        f"  best: epoch {outcome.metrics.get('epoch')} "
        f"val_auc {outcome.metrics.get('val_auc', float('nan')):.4f}"
        f" params {outcome.params}"
    )
    return outcome


def evaluate(
    ctx: Context, outcome: TrainOutcome, splits: Splits, reference: Reference
) -> Evaluation:
    """Score the test slice: AUC, log loss, calibration; reliability plot and score histogram."""
    from mlray.registry.champion import named_test_metrics
    from mlray.training.evaluate import (
        metrics,
        reliability_plot,
        score_dataset,
        score_histogram,
    )
    from mlray.training.model import build_model
    from mlray.training.train_loop import load_checkpoint
    from mlray.validation.psi import score_distribution

    spec, state, _ = load_checkpoint(outcome.checkpoint_path)
    y, p = score_dataset(splits.test, spec, state)
    result = named_test_metrics(metrics(y, p))
    log_metrics(ctx.client, ctx.run_id, result)
    with tempfile.TemporaryDirectory() as d:
        for path in (
            reliability_plot(y, p, Path(d) / "reliability.png", "Test slice reliability"),
            score_histogram(y, p, Path(d) / "score_histogram.png", "Test slice scores"),
        ):
            ctx.client.log_artifact(ctx.run_id, str(path), "evaluation")
    reference.score = score_distribution(p)
    ctx.echo(
        f"  test_auc {result['test_auc']:.4f} test_log_loss {result['test_log_loss']:.4f} "
        f"test_ece {result['test_ece']:.4f}"
    )
    return Evaluation(build_model(spec, state), spec, result, reference)


def compare(
    ctx: Context, evaluation: Evaluation, splits: Splits
) -> tuple[Decision, dict[str, float] | None]:
    """Score the champion on the same test slice and decide: promote, or register as challenger."""
    from mlray.registry.champion import decide, named_test_metrics
    from mlray.training.evaluate import metrics, score_dataset

    champion, champion_metrics, problem = ctx.champion, None, None
    if champion is not None:
        try:
            scored = score_dataset(splits.test, champion.spec, champion.state)
            champion_metrics = named_test_metrics(metrics(*scored))
        except ValidationFailed as e:
            problem = e.message
    decision = decide(
        evaluation.metrics,
        champion_metrics,
        ctx.cfg.promotion,
        champion.version if champion else None,
        problem,
    )
    log_metrics(
        ctx.client,
        ctx.run_id,
        {f"champion_{k}": v for k, v in (champion_metrics or {}).items()},
    )
    ctx.client.log_dict(ctx.run_id, decision.to_dict(), "decision.json")
    ctx.client.set_tag(ctx.run_id, "mlray.decision", decision.alias)
    ctx.client.set_tag(ctx.run_id, "mlray.decision_reason", decision.reason)
    ctx.echo(f"  {'PROMOTE' if decision.promote else 'keep champion'}: {decision.reason}")
    return decision, champion_metrics


def export(
    ctx: Context, splits: Splits, evaluation: Evaluation, train_x: ray.data.Dataset
) -> Exported:
    """Weights, ONNX (FP32 and, when it passes its AUC gate, INT8) and the PyTorch program."""
    import torch

    from mlray.export.artifacts import export_model
    from mlray.registry.lineage import TAG_INT8, TAG_INT8_REASON
    from mlray.registry.versions import STATE_FILE, next_version
    from mlray.training.dataset import encode

    spec, model = evaluation.spec, evaluation.model
    test = encode(splits.test, spec).take_batch(
        min(EXPORT_ROWS, splits.rows["test"]), batch_format="numpy"
    )
    calib = train_x.take_batch(min(CALIBRATION_ROWS, splits.rows["train"]), batch_format="numpy")
    x_test = np.ascontiguousarray(test["x"], np.float32)
    out = Path(ctx.workdir.name) / "model"
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, out / STATE_FILE)
    version = f"{ctx.cfg.model_name}/{next_version(ctx.client, ctx.cfg.model_name)}"
    result = export_model(
        model,
        spec,
        out,
        x_test=x_test,
        y_test=np.asarray(test["y"], np.float32),
        calibration=np.ascontiguousarray(calib["x"], np.float32),
        model_version=version,
    )
    art = result.artifact
    files = [Path(p).name for p in (art.onnx_path, art.int8_path, art.torch_path) if p is not None]
    with torch.no_grad():
        example_out = model(torch.from_numpy(x_test[:5])).numpy()
    int8, why = int8_verdict(result.int8)
    ctx.client.set_tag(ctx.run_id, TAG_INT8, int8)
    ctx.client.set_tag(ctx.run_id, TAG_INT8_REASON, why)
    ctx.echo(f"  {version}: {', '.join(files)}; {why}")
    return Exported(out, files, x_test[:5], example_out, int8, why)


def register(
    ctx: Context,
    data: TrainingData,
    splits: Splits,
    evaluation: Evaluation,
    decision: Decision,
    exported: Exported,
) -> str:
    """A new model version with weights, spec, export files, reference distributions and lineage."""
    from mlray.registry.lineage import (
        TAG_DECISION,
        TAG_DECISION_REASON,
        TAG_INT8,
        TAG_INT8_REASON,
        lineage_tags,
    )
    from mlray.registry.versions import ModelPackage
    from mlray.registry.versions import register as register_version

    tags = {
        **lineage_tags(data.lineage, data.feature_refs, ctx.run_name, split_info(splits), ctx.code),
        TAG_DECISION: decision.alias,
        TAG_DECISION_REASON: decision.reason[:4000],
        TAG_INT8: exported.int8,
        TAG_INT8_REASON: exported.int8_reason,
    }
    pkg = ModelPackage(
        exported.model_dir,
        evaluation.spec,
        evaluation.reference,
        evaluation.metrics,
        tags,
        data.lineage,
        ctx.cfg.model_dump(mode="json"),
        exported.example_input,
        exported.example_output,
        exported.files,
    )
    version = register_version(ctx.client, ctx.cfg.model_name, ctx.run_id, pkg, decision.alias)
    ctx.client.set_tag(ctx.run_id, "mlray.model_version", version)
    ctx.echo(
        f"  registered {ctx.cfg.model_name} v{version} as {decision.alias!r} with "
        f"{', '.join(exported.files)}"
    )
    return version
