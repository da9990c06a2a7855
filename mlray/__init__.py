"""mlray: feature store, training pipeline and online inference in one Ray cluster."""

from mlray.config import Settings, load_settings
from mlray.errors import (
    BackendUnavailable,
    ConfigError,
    DefinitionError,
    MlrayError,
    NotFoundError,
    SchemaError,
    ValidationFailed,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailable",
    "ConfigError",
    "DefinitionError",
    "MlrayError",
    "NotFoundError",
    "SchemaError",
    "Settings",
    "ValidationFailed",
    "load_settings",
]
