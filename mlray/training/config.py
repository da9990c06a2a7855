"""The training job's configuration: one typed :class:`TrainConfig`, loaded from YAML.

Example ``train.yaml``::

    model_name: ctr_model
    features: ctr_model_v1
    extra_features: [request_features:hour_of_day, request_features:price_vs_usual]
    categorical: [request_features:hour_of_day]
    split: {train: 0.7, validation: 0.15, test: 0.15}
    training: {epochs: 3, batch_size: 512, num_workers: 1, max_failures: 2}
    tune: {num_samples: 4, max_concurrent_trials: 2}
    promotion: {margin: 0.005}
    validation: {psi_fail: 0.25, max_null_rate: {user_activity:ctr_7d: 0.1}}
    settings: {data_root: ./mlray-data}     # mlray Settings overrides (optional)

Every section has defaults, so an empty file trains the demo model.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from mlray.config import load_yaml_model
from mlray.registry.champion import PromotionConfig
from mlray.runtimes.model_spec import DEFAULT_LAYERS, DEFAULT_WIDTH, MIN_WIDTH, hidden_layers
from mlray.validation.config import ValidationConfig

REQUEST_FEATURES = (
    "request_features:hour_of_day",
    "request_features:price_vs_usual",
    "request_features:device_mobile",
    "request_features:device_desktop",
    "request_features:device_tablet",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelsConfig(_Section):
    """Where labels come from: a raw table (under ``<data_root>/raw``) or a Delta/Parquet path."""

    table: str = "impressions"
    label: str = Field("clicked", description="Boolean (or 0/1) label column.")
    time: str = Field(
        "event_time", description="Label time: the point-in-time join and the split use it."
    )
    columns: list[str] | None = Field(None, description="Label-table columns to keep (None = all).")
    start: datetime | None = Field(None, description="Only labels at or after this time.")
    end: datetime | None = Field(None, description="Only labels before this time.")
    start_after_lookback: bool = Field(
        True,
        description="Start the training set once every joined view's lookback has filled "
        "(its raw source's first event + FeatureView.lookback): before that, windowed counts "
        "and sums cover less than a full window and are lower than anything serving sees. "
        "The label rows dropped are logged and counted in the lineage.",
    )


class SplitConfig(_Section):
    """Split by label time: earliest slice trains, the next validates, the latest tests.

    Give fractions of rows (by time order), or both boundaries.
    """

    train: float = Field(0.7, gt=0, lt=1)
    validation: float = Field(0.15, gt=0, lt=1)
    test: float = Field(0.15, gt=0, lt=1)
    validation_start: datetime | None = None
    test_start: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SplitConfig:
        if abs(self.train + self.validation + self.test - 1.0) > 1e-6:
            raise ValueError(
                f"train + validation + test must be 1, got {self.train} + {self.validation} + "
                f"{self.test}; e.g. 0.7 / 0.15 / 0.15"
            )
        if (self.validation_start is None) != (self.test_start is None):
            raise ValueError(
                "give both validation_start and test_start, or neither (then fractions are used)"
            )
        if self.validation_start and self.test_start and self.validation_start >= self.test_start:
            raise ValueError("validation_start must be before test_start")
        return self


class ModelConfig(_Section):
    """The network's hyperparameters (the tunable ones are named in ``tune.search_space``)."""

    lr: float = Field(3e-3, gt=0, lt=1)
    width: int = Field(
        DEFAULT_WIDTH, ge=MIN_WIDTH, le=4096, description="Width of the first hidden layer."
    )
    layers: int = Field(
        DEFAULT_LAYERS,
        ge=1,
        le=6,
        description="Hidden layers; each is half as wide as the one before.",
    )
    embedding_dim: int = Field(8, ge=1, le=256)
    dropout: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(1e-5, ge=0)

    def hidden(self) -> list[int]:
        return hidden_layers(self.width, self.layers)


class TrainingConfig(_Section):
    """How Ray Train runs: epochs, batch size, workers, failure handling."""

    def threads_per_worker(self) -> int:
        """``torch_threads``, or by default the worker's CPUs less one.

        The one left is for Ray Data's reads and Ray's own threads.

        On CPU a small model's steps are short, so a second intra-op thread gains
        little once anything else wants a core, and a step waits for its slowest
        thread. Worse, Ray Data converts batches to tensors in threads of its own;
        once their OpenMP threads and the training thread's together outnumber the
        CPUs, libgomp stops spin-waiting between parallel regions. With 2 threads
        on a 2-CPU worker, steps ran 1.3x slower than with 1.
        """
        if self.torch_threads:
            return self.torch_threads
        cpus = max(1, int(self.cpus_per_worker))
        return cpus - 1 if cpus > 1 else 1

    epochs: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(512, ge=1)
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    torch_threads: int = Field(
        0,
        ge=0,
        description="Intra-op threads of each worker's PyTorch (0: one per CPU of "
        "the worker, less one left to the data pipeline when it has "
        "several).",
    )
    max_failures: int = Field(
        2, ge=-1, description="Worker-group restarts from the last checkpoint (-1: no limit)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING",
        description="Console level of Ray Train's own logs (its log files keep everything).",
    )
    health_check_interval_s: float = Field(
        0.25,
        gt=0,
        le=60,
        description="How often Ray Train's controller polls the workers; a run "
        "ends (or restarts after a failure) at the next poll.",
    )
    seed: int = Field(
        0,
        description="Seeds everything a retrain could vary: Tune's searcher, the "
        "model's initial weights and dropout, the global shuffle of the train slice and "
        "every epoch's read order. Same data, config and seed: same model and metrics "
        "(on CPU with tune.max_concurrent_trials 1 and one worker).",
    )
    local_shuffle_rows: int = Field(
        0,
        ge=0,
        description="Shuffle buffer of a streamed epoch (0: none; the train "
        "slice is shuffled once, globally, before training).",
    )
    cache_shard_mb: float = Field(
        2048,
        ge=0,
        description="Keep each worker's shard in memory after the first epoch "
        "when at most this large (MiB); later epochs then read it "
        "in a fresh permutation instead of streaming (0: never).",
    )
    prefetch_batches: int = Field(
        2, ge=0, description="Reads each worker prepares ahead of the training step."
    )
    batches_per_read: int = Field(
        32,
        ge=1,
        description="Mini-batches taken from the Ray Dataset per read "
        "(amortizes the per-read cost).",
    )


class SearchDim(_Section):
    """One dimension of the search space."""

    kind: Literal["loguniform", "uniform", "choice", "randint"]
    low: float | None = None
    high: float | None = None
    values: list[float | int] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> SearchDim:
        if self.kind == "choice":
            if not self.values:
                raise ValueError("a 'choice' dimension needs a non-empty 'values' list")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(
                f"a {self.kind!r} dimension needs low < high, got low={self.low}, high={self.high}"
            )
        return self


def _default_space() -> dict[str, SearchDim]:
    return {
        "lr": SearchDim(kind="loguniform", low=3e-4, high=1e-2),
        "width": SearchDim(kind="choice", values=[32, 64, 128]),
        "embedding_dim": SearchDim(kind="choice", values=[4, 8, 16]),
        "dropout": SearchDim(kind="uniform", low=0.0, high=0.3),
    }


class TuneSection(_Section):
    """Ray Tune: ASHA early stopping with Optuna search. ``num_samples: 0`` trains once, untuned."""

    num_samples: int = Field(4, ge=0)
    max_concurrent_trials: int = Field(1, ge=1)
    metric: Literal["val_auc", "val_loss"] = "val_auc"
    grace_period: int = Field(
        1, ge=1, description="Epochs every trial runs before ASHA may stop it."
    )
    reduction_factor: int = Field(2, ge=2)
    search_space: dict[str, SearchDim] = Field(default_factory=_default_space)

    @field_validator("search_space")
    @classmethod
    def _known(cls, v: dict[str, SearchDim]) -> dict[str, SearchDim]:
        unknown = sorted(set(v) - set(ModelConfig.model_fields))
        if unknown:
            raise ValueError(
                f"unknown hyperparameters {unknown}; tunable: {sorted(ModelConfig.model_fields)}"
            )
        return v

    @property
    def mode(self) -> str:
        return "max" if self.metric == "val_auc" else "min"


class TrainConfig(_Section):
    """All a training pipeline run needs besides the mlray :class:`~mlray.config.Settings`."""

    model_name: str = Field("ctr_model", pattern=r"^[A-Za-z0-9_\-.]+$")
    experiment: str = "mlray-training"
    features: str | list[str] = Field(
        "ctr_model_v1", description="A feature service name or 'view:feature' refs."
    )
    extra_features: list[str] = Field(
        default_factory=lambda: list(REQUEST_FEATURES),
        description="More refs (e.g. on-demand features) added to `features`.",
    )
    categorical: list[str] = Field(
        default_factory=lambda: ["request_features:hour_of_day"],
        description="Integer features to embed as categories (strings always are).",
    )
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    tune: TuneSection = Field(default_factory=TuneSection)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    tracking_uri: str | None = Field(
        None, description="MLflow server; None = Settings.tracking_uri."
    )
    settings_file: str | None = Field(
        None, description="mlray.yaml for the Settings (default: the usual lookup)."
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Settings overrides, e.g. data_root."
    )
    _source: str | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        """The file this config was read from, if any."""
        return self._source


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Read a :class:`TrainConfig` from YAML (``None``: all defaults), then apply ``overrides``.

    Raises:
        ConfigError: the file is unreadable, or a field is invalid; the message names both.
    """
    return load_yaml_model(TrainConfig, path, "training config", overrides)


def settings_for(cfg: TrainConfig):
    """The mlray Settings a training config names: ``settings_file`` plus ``settings`` overrides."""
    from mlray.config import load_settings

    return load_settings(cfg.settings_file, **cfg.settings)
