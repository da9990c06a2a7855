"""The model spec: input layout, preprocessing statistics and architecture of a CTR model.

Contract with training, export and serving: the model maps ONE float32
matrix ``x[B, F]`` to click probabilities ``[B]``. Columns are the numeric
features first, as raw values (nulls as NaN: the model fills and normalizes
them), then the categorical features as integer codes stored as floats
(code 0 = unknown or null). :class:`ModelSpec` records that order, the
vocabularies and the statistics, and is saved next to the weights as
``model_spec.json``; :func:`mlray.runtimes.encoding.encode_frame` builds
``x`` from feature rows with it, in training and in serving alike.

This module imports no torch, so the scoring path can read a spec without it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from mlray.errors import ConfigError

SPEC_FORMAT = 1
# The default architecture, used by the training config and by the training loop.
DEFAULT_WIDTH = 64
DEFAULT_LAYERS = 2
MIN_WIDTH = 4


def hidden_layers(width: int = DEFAULT_WIDTH, layers: int = DEFAULT_LAYERS) -> list[int]:
    """Hidden layer widths: ``width`` first, each next one half as wide (at least 4).

    Args:
        width: the first hidden layer's width.
        layers: how many hidden layers.

    Returns:
        The widths, e.g. ``[64, 32]`` for the defaults.
    """
    return [max(width // 2**i, MIN_WIDTH) for i in range(layers)]


@dataclass
class ModelSpec:
    """Input layout, preprocessing statistics and architecture of a CTR model.

    Attributes:
        numeric: numeric feature columns, in input order (``view__feature``).
        categorical: categorical feature columns, after the numeric ones.
        vocab: per categorical column, its known values; ``vocab[c][i]`` has code ``i + 1``.
        means, stds: normalization of each numeric column, ``(x - mean) / std``.
        fills: value used for a null numeric input (before normalization).
        hidden: widths of the hidden layers.
        embedding_dim: size of each categorical embedding.
        dropout: dropout after each hidden layer (training only).
        feature_refs: the ``view:feature`` refs to fetch, in the same order as the columns.
        label: the label column the model was trained on.
        label_time: the label time column (the request time of on-demand features).
    """

    numeric: list[str]
    categorical: list[str]
    vocab: dict[str, list[str]]
    means: list[float]
    stds: list[float]
    fills: list[float]
    hidden: list[int] = field(default_factory=hidden_layers)
    embedding_dim: int = 8
    dropout: float = 0.0
    feature_refs: list[str] = field(default_factory=list)
    label: str = "clicked"
    label_time: str = "event_time"

    def __post_init__(self) -> None:
        n = len(self.numeric)
        if not (len(self.means) == len(self.stds) == len(self.fills) == n):
            raise ConfigError(
                f"ModelSpec: means/stds/fills must have one value per numeric feature ({n}); "
                f"got {len(self.means)}/{len(self.stds)}/{len(self.fills)}."
            )
        missing = [c for c in self.categorical if c not in self.vocab]
        if missing:
            raise ConfigError(f"ModelSpec: categorical features {missing} have no vocabulary.")
        if not self.numeric and not self.categorical:
            raise ConfigError("ModelSpec: the model has no input features.")

    @property
    def feature_names(self) -> list[str]:
        """Columns of the input matrix, in order."""
        return [*self.numeric, *self.categorical]

    @property
    def num_features(self) -> int:
        """Width of the input matrix."""
        return len(self.numeric) + len(self.categorical)

    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical column: its vocabulary plus code 0 (unknown)."""
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict of the fields, with the spec ``format``."""
        return asdict(self) | {"format": SPEC_FORMAT}

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict`; extra keys (e.g. those older versions wrote) are ignored.

        Raises:
            ConfigError: a field is missing or the format is newer than this code.
        """
        if body.get("format", SPEC_FORMAT) > SPEC_FORMAT:
            raise ConfigError(
                f"Model spec format {body['format']} is newer than this mlray ({SPEC_FORMAT}); "
                "upgrade mlray to load this model."
            )
        names = cls.__dataclass_fields__.keys()
        try:
            return cls(**{k: body[k] for k in names if k in body})
        except TypeError as e:
            raise ConfigError(f"Model spec is incomplete: {e}.") from e

    def to_json(self) -> str:
        """The spec as JSON (``model_spec.json``)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        """Inverse of :meth:`to_json`.

        Raises:
            ConfigError: as :meth:`from_dict`.
        """
        return cls.from_dict(json.loads(text))
