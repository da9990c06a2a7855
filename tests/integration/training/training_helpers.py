"""Helpers shared by the training integration tests.

Imported by name: the test folders are not packages.
"""

from __future__ import annotations

from mlray.config import Settings
from mlray.training.config import TrainConfig, load_train_config

SMALL = {"training": {"epochs": 2, "batch_size": 256}, "experiment": "it-training"}


def small_config(**over) -> TrainConfig:
    """A quick config: 2 epochs, no tuning unless asked; ``over`` merges into the sections."""
    body = {**SMALL, "tune": {"num_samples": 0}}
    for k, v in over.items():
        body[k] = (
            {**body.get(k, {}), **v} if isinstance(v, dict) and isinstance(body.get(k), dict) else v
        )
    return load_train_config(None, **body)


def mlflow_client(settings: Settings):
    """An MLflow client on the settings' tracking store."""
    from mlray.registry.tracking import connect

    client, _ = connect(settings, SMALL["experiment"])
    return client
