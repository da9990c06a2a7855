"""The monitor's configuration: one typed model (YAML ``jobs/monitor.yaml``), unknown keys rejected.

Every threshold the monitor acts on lives here with its default; ``mlray
monitor --config FILE`` and ``jobs/monitor.py --config FILE`` read it, and the
CLI's options override single fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from mlray.config import load_yaml_model


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriftConfig(_Section):
    """PSI of the served features and scores against the model's registered reference."""

    warn: float = Field(0.1, ge=0, description="PSI at or above: a warning.")
    act: float = Field(0.25, ge=0, description="PSI at or above: a breach (may retrain).")
    min_rows: int = Field(200, ge=1, description="Fewer served rows in the window: no verdict.")
    seasonal_baseline_days: int = Field(
        7,
        ge=1,
        le=90,
        description="A seasonal feature (Field(seasonal=True), e.g. hour of day) is compared "
        "with the served traffic of the same hours on up to this many earlier days instead of "
        "the training reference; none logged yet: reported, never a breach.",
    )


class LabelsConfig(_Section):
    """Delayed labels: where they land and how they attach to logged predictions."""

    source: str = Field(
        "served_labels",
        description="A raw table name under <data_root>/raw, a Delta table path, or a Parquet "
        "file/folder.",
    )
    label_column: str = Field("clicked", description="0/1 outcome column.")
    join: Literal["request_id", "entity_time"] = Field(
        "request_id",
        description="request_id: labels carry the prediction's request id; entity_time: the "
        "first label of the same entity keys within attribution_window_s after the request.",
    )
    time_column: str = Field("label_time", description="When the outcome happened.")
    attribution_window_s: float = Field(
        3600.0, gt=0, description="entity_time: longest delay from request to label."
    )
    calibration_bins: int = Field(
        10, ge=2, le=100, description="Equal-width score bins of the calibration table."
    )
    min_labels: int = Field(
        100,
        ge=1,
        description="Fewer labelled predictions of a model version in the window: its figures "
        "are reported but raise no AUC alert.",
    )


class PromotionConfig(_Section):
    """When a challenger in shadow is ready to replace the champion."""

    min_labels: int = Field(500, ge=1, description="Labelled requests both models scored.")
    auc_margin: float = Field(0.005, ge=0, description="Challenger AUC - champion AUC at least.")
    max_disagreement: float = Field(
        0.15, ge=0, le=1, description="Mean |challenger - champion| score at most."
    )
    auto_promote: bool = Field(False, description="Move the champion alias when ready.")


class FreshnessConfig(_Section):
    """How old a view's newest materialized values may be."""

    default_limit_s: float = Field(
        2 * 3600.0, gt=0, description="Limit for a view not in limits_s (seconds)."
    )
    limits_s: dict[str, float] = Field(default_factory=dict, description="view -> limit (s).")
    max_miss_rate: float = Field(
        0.5, ge=0, le=1, description="Share of lookups with no key above which a view alerts."
    )


class SkewConfig(_Section):
    """The audit of served features against their offline recomputation."""

    sample: int = Field(200, ge=1, le=100_000, description="Logged predictions to recompute.")
    rel_tolerance: float = Field(1e-6, ge=0, description="Relative difference still equal.")
    abs_tolerance: float = Field(1e-9, ge=0, description="Absolute difference still equal.")
    max_transform_skew_rate: float = Field(
        0.0, ge=0, le=1, description="Transform-skew mismatch rate above which a feature alerts."
    )
    max_stale_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Stale-materialization mismatch rate above which a feature warns.",
    )
    seed: int = 0


RetrainOn = Literal["feature_drift", "score_drift", "freshness", "skew", "performance"]


def _retrain_on_default() -> list[RetrainOn]:
    return ["feature_drift", "score_drift", "performance"]


class RetrainConfig(_Section):
    """The retraining the monitor submits when a threshold is breached."""

    enabled: bool = True
    entrypoint: str = Field(
        "python jobs/train_pipeline.py --config jobs/train.yaml",
        description="Shell command of the Ray job (run in working_dir).",
    )
    working_dir: str | None = Field(
        None, description="Uploaded as the job's working_dir; None = the current directory."
    )
    address: str | None = Field(
        None,
        description="Ray dashboard address for job submission; None = ray.address or "
        "RAY_ADDRESS or the cluster the monitor joined (never a local Ray it started).",
    )
    cooldown_s: float = Field(
        24 * 3600.0, ge=0, description="After a submitted retrain, no other for this long."
    )
    state_file: str | None = Field(
        None,
        description="Where the last submission is recorded (the cooldown); None = "
        "<data_root>/monitor/retrain_state.json (set it when the data root is remote).",
    )
    on: list[RetrainOn] = Field(
        default_factory=_retrain_on_default,
        description="Which breaches start a retrain (others only alert).",
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, values: Any) -> Any:
        # YAML 1.1 reads an unquoted `on:` key as the boolean True.
        if isinstance(values, dict) and True in values and "on" not in values:
            values = {("on" if k is True else k): v for k, v in values.items()}
        return values


class MonitorConfig(_Section):
    """What the monitor reads, over which window, and what it acts on."""

    model_name: str = Field("ctr_model", description="Registered model being served.")
    log_table: str = Field("predictions", pattern=r"^[A-Za-z0-9_\-]+$")
    window_hours: float = Field(24.0, gt=0, description="Window of served traffic, ending at end.")
    end: str | None = Field(None, description="ISO 8601 end of the window; None = now.")
    min_auc_drop: float = Field(
        0.05, ge=0, description="Champion delayed-label AUC below its test AUC by this: a breach."
    )
    drift: DriftConfig = Field(default_factory=DriftConfig)
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    freshness: FreshnessConfig = Field(default_factory=FreshnessConfig)
    skew: SkewConfig = Field(default_factory=SkewConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    out_dir: str | None = Field(
        None, description="Report folder; None = <data_root>/reports/monitor/<time>."
    )
    settings_file: str | None = Field(None, description="mlray.yaml for the Settings.")
    settings: dict[str, Any] = Field(default_factory=dict, description="Settings overrides.")
    _source: str | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        return self._source


def load_monitor_config(path: str | Path | None = None, **overrides: Any) -> MonitorConfig:
    """Read a :class:`MonitorConfig` from YAML (``None``: defaults), then apply ``overrides``.

    Raises:
        ConfigError: unreadable file or invalid field; the message names both.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    return load_yaml_model(MonitorConfig, path, "monitor config", given)
