"""The serving application's arguments: one typed model, unknown keys rejected.

``serve deploy`` passes the ``args`` of an application in the config file to
:func:`mlray.serving.app.build_app`, which validates them here, so a typo in
``serve_configs/*.yaml`` is a one-line error naming the key. Where the data,
the online store and MLflow are comes from mlray's settings (``mlray.yaml`` or
``MLRAY_*``), which ``settings`` may override key by key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogConfig(_Section):
    """The prediction log: a Delta table under the data root, appended in batches by a committer."""

    table: str = Field("predictions", pattern=r"^[A-Za-z0-9_\-]+$", description="Table name.")
    replica_batch_rows: int = Field(
        64, ge=1, le=10_000, description="Rows an ingress replica buffers before sending them."
    )
    replica_flush_s: float = Field(
        0.2, gt=0, le=60, description="Longest a row waits in an ingress replica's buffer."
    )
    commit_rows: int = Field(
        2_000, ge=1, le=1_000_000, description="Rows the committer buffers before a Delta commit."
    )
    commit_interval_s: float = Field(
        2.0, gt=0, le=600, description="Longest a row waits for its Delta commit."
    )
    max_buffer_rows: int = Field(
        200_000,
        ge=1_000,
        description="Rows kept while the table cannot be written; beyond, the oldest are dropped "
        "and counted.",
    )


class ModelDeploymentConfig(_Section):
    """The separate model deployment (``shape: model_deployment``), for models that need a GPU."""

    num_gpus: float = Field(0.0, ge=0, description="GPUs per replica (1 for the TensorRT engine).")
    num_cpus: float = Field(1.0, gt=0)
    max_batch_size: int = Field(64, ge=1, le=8192, description="@serve.batch: rows per call.")
    batch_wait_timeout_s: float = Field(
        0.002, ge=0, le=1, description="@serve.batch: longest a request waits for a batch to fill."
    )


class ServeArgs(_Section):
    """Arguments of the serving application (``build_app``).

    Example (``serve_configs/local.yaml``)::

        applications:
          - name: mlray
            import_path: mlray.serving.app:build_app
            args: {model_name: ctr_model, shadow: challenger}
    """

    model_name: str = Field("ctr_model", pattern=r"^[A-Za-z0-9_\-.]+$")
    champion: str = Field("champion", description="Alias of the model that answers.")
    shadow: str | None = Field(
        "challenger",
        description="Alias (e.g. 'challenger') or pinned version (e.g. '3') of the shadow model, "
        "scored after each response and logged; null: no shadow. A missing alias means no shadow "
        "until it exists.",
    )
    features: list[str] | None = Field(
        None, description="view:feature refs to fetch; default: those the champion was trained on."
    )
    shape: Literal["inprocess", "model_deployment"] = Field(
        "inprocess",
        description="inprocess: features and model in the ingress replica (fewest hops, CPU); "
        "model_deployment: the model in its own deployment with dynamic batching (GPU).",
    )
    runtime: Literal["auto", "onnxruntime", "tensorrt", "torch"] = "auto"
    precision: Literal["auto", "fp32", "fp16", "int8"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    reload_interval_s: float = Field(
        10.0, ge=0, description="How often replicas check the aliases for a new version (0: never)."
    )
    max_batch: int = Field(256, ge=1, le=10_000, description="Largest /predict/batch request.")
    max_body_bytes: int = Field(1_000_000, ge=1_024, description="Largest request body.")
    store_down: Literal["fail", "degraded"] = Field(
        "degraded",
        description="When the online store is unreachable: 'fail' answers 503; 'degraded' scores "
        "with feature defaults and flags the response degraded.",
    )
    store_retry_s: float = Field(
        1.0, gt=0, le=60, description="After a store failure, how long to skip it before retrying."
    )
    ingress_replicas: int | Literal["auto"] = Field(1, description="Replicas of the ingress.")
    ingress_cpus: float = Field(1.0, ge=0, description="CPUs reserved per ingress replica.")
    logger_cpus: float = Field(0.0, ge=0, description="CPUs reserved by the log committer (I/O).")
    max_ongoing_requests: int = Field(64, ge=1, description="Per ingress replica.")
    model_deployment: ModelDeploymentConfig = Field(default_factory=ModelDeploymentConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    config_file: str | None = Field(None, description="mlray.yaml (default: the usual lookup).")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="mlray settings overrides, e.g. {data_root: /data}."
    )

    @field_validator("shadow", mode="before")
    @classmethod
    def _shadow_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) else v

    @property
    def shadow_is_version(self) -> bool:
        """Whether ``shadow`` pins a version number rather than naming an alias."""
        return self.shadow is not None and self.shadow.isdigit()
