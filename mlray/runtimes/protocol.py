"""The one interface serving uses to run a model, whatever engine is behind it.

A runtime takes ONE float32 matrix ``[batch, F]`` (the features in the
artifact's order) and returns ``[batch]`` click probabilities, also float32.
Every implementation checks its input with :func:`check_batch`, so a wrong
shape or dtype fails the same way (a :class:`~mlray.errors.SchemaError`
naming what was expected) on every engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from mlray.errors import SchemaError

if TYPE_CHECKING:
    from mlray.runtimes.artifact import ModelArtifact


@runtime_checkable
class ModelRuntime(Protocol):
    """A loaded model that scores feature matrices."""

    name: str
    feature_names: list[str]

    def load(self, artifact: ModelArtifact) -> None:
        """Load the model files this runtime needs from ``artifact``."""
        ...

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Click probabilities, float32 ``[batch]``, for a float32 ``[batch, F]`` matrix."""
        ...


def check_batch(batch: object, feature_names: list[str]) -> np.ndarray:
    """Check a model input and return it as a C-contiguous float32 matrix.

    The input must already be float32: a silent cast would hide a caller
    that builds features with another dtype than training did.

    Args:
        batch: the candidate input.
        feature_names: the model's input columns, in order.

    Raises:
        SchemaError: not a numpy array, not 2-D, wrong width or not float32;
            the message names the expected shape, dtype and features.
    """
    if (
        isinstance(batch, np.ndarray)
        and batch.ndim == 2
        and batch.shape[1] == len(feature_names)
        and batch.dtype == np.float32
    ):
        return batch if batch.flags.c_contiguous else np.ascontiguousarray(batch)
    if not isinstance(batch, np.ndarray):
        got = f"a {type(batch).__name__}"
    else:
        got = f"an array of shape {batch.shape} and dtype {batch.dtype}"
    raise SchemaError(
        f"Model input must be a numpy array of shape (batch, {len(feature_names)}) and dtype "
        f"float32, got {got}. Columns, in order: {_feature_list(feature_names)}."
    )


def _feature_list(names: list[str], limit: int = 40) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
