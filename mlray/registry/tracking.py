"""MLflow set-up: the tracking URI and an experiment whose artifacts live under the data root.

Embedded default: MLflow on SQLite at ``<data_root>/mlflow.db`` with artifacts in
``<data_root>/mlartifacts`` (browse with ``mlflow ui --backend-store-uri
sqlite:///<data_root>/mlflow.db``). A ``tracking_uri`` in the training config
(or ``Settings.mlflow_tracking_uri``) points everything at a server instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlray.config import Settings
from mlray.errors import BackendUnavailable

log = logging.getLogger(__name__)


def tracking_uri(settings: Settings, override: str | None = None) -> str:
    """The tracking URI in force: ``override``, else the settings' (SQLite under the data root)."""
    return override or settings.tracking_uri


def artifact_root(settings: Settings) -> str | None:
    """Where an embedded store keeps artifacts (``<data_root>/mlartifacts``).

    None for a tracking server, which uses its own default.
    """
    if settings.mlflow_tracking_uri:
        return None
    root = str(settings.data_root)
    if "://" in root:
        return root.rstrip("/") + "/mlartifacts"
    return Path(root).resolve().joinpath("mlartifacts").as_uri()


def connect(settings: Settings, experiment: str, override: str | None = None) -> tuple[Any, str]:
    """Point MLflow at the tracking store; return ``(client, experiment_id)``.

    The experiment is created if it does not exist.

    Raises:
        BackendUnavailable: the tracking server cannot be reached.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = tracking_uri(settings, override)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is not None:
            return client, exp.experiment_id
        location = artifact_root(settings) if override is None else None
        return client, client.create_experiment(
            experiment, artifact_location=f"{location}/{experiment}" if location else None
        )
    except MlflowException as e:
        raise BackendUnavailable(
            f"MLflow tracking store {uri} is not usable: {e}. Check tracking_uri in the "
            "training config (or Settings.mlflow_tracking_uri) and that the server is up."
        ) from e


def log_metrics(client: Any, run_id: str, values: dict[str, Any], step: int = 0) -> None:
    """Log the finite numbers among ``values`` in one batch call (None, NaN and inf are skipped)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [
        Metric(k, float(v), now, step)
        for k, v in values.items()
        if isinstance(v, int | float) and math.isfinite(v)
    ]
    if batch:
        client.log_batch(run_id, metrics=batch)


def log_history(
    client: Any, run_id: str, history: list[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Per-epoch metrics (``keys`` of each row), ``step`` = the row's epoch."""
    for row in history:
        log_metrics(client, run_id, {k: row.get(k) for k in keys}, step=int(row.get("epoch", 0)))


def registry_client(settings: Settings) -> Any:
    """An MLflow client on the settings' tracking store (no experiment created; for serving)."""
    import mlflow

    uri = settings.tracking_uri
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
