"""The click-through model and the spec that travels with it.

Contract with export and serving: :class:`CTRModel` maps ONE float32 matrix
``x[B, F]`` to click probabilities ``[B]``. Columns are the numeric features
first, as raw values (nulls as NaN: the module fills and normalizes them with
buffers), then the categorical features as integer codes stored as floats
(code 0 = unknown or null). :class:`ModelSpec` records that order, the
vocabularies and the statistics, and is saved next to the weights as
``model_spec.json``; :func:`mlray.training.preprocess.encode_frame` builds
``x`` from feature rows with it, in training and in serving alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from mlray.errors import ConfigError

SPEC_FORMAT = 1


@dataclass
class ModelSpec:
    """Input layout, preprocessing statistics and architecture of a :class:`CTRModel`.

    Attributes:
        numeric: numeric feature columns, in input order (``view__feature``).
        categorical: categorical feature columns, after the numeric ones.
        vocab: per categorical column, its known values; value ``vocab[c][i]`` has code ``i + 1``.
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
    hidden: list[int] = field(default_factory=lambda: [64, 32])
    embedding_dim: int = 8
    dropout: float = 0.0
    feature_refs: list[str] = field(default_factory=list)
    label: str = "clicked"
    label_time: str = "event_time"

    def __post_init__(self) -> None:
        n = len(self.numeric)
        if not (len(self.means) == len(self.stds) == len(self.fills) == n):
            raise ConfigError(
                f"ModelSpec: means/stds/fills must have one value per numeric feature ({n}); got "
                f"{len(self.means)}/{len(self.stds)}/{len(self.fills)}."
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
        return len(self.numeric) + len(self.categorical)

    def cardinalities(self) -> list[int]:
        """Embedding rows per categorical column: its vocabulary plus code 0 (unknown)."""
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serializable dict (with the export stage's ``feature_names`` key)."""
        body = asdict(self)
        body.update(
            format=SPEC_FORMAT,
            feature_names=self.feature_names,
            numeric_features=self.numeric,
            categorical_features=self.categorical,
        )
        return body

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict` (extra keys ignored).

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
        return json.dumps(self.to_dict(), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        return cls.from_dict(json.loads(text))


class CTRModel(nn.Module):
    """Embeddings for categorical codes, an MLP over them and the normalized numeric features.

    ``forward(x[B, F]) -> p[B]`` (sigmoid applied); :meth:`logits` gives the
    pre-sigmoid scores that training feeds to a numerically stable loss.
    """

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.num_numeric = len(spec.numeric)
        self.register_buffer("mean", torch.tensor(spec.means, dtype=torch.float32))
        self.register_buffer(
            "std", torch.tensor([s if s > 0 else 1.0 for s in spec.stds], dtype=torch.float32)
        )
        self.register_buffer("fill", torch.tensor(spec.fills, dtype=torch.float32))
        cards = spec.cardinalities()
        self.register_buffer("max_code", torch.tensor([c - 1 for c in cards], dtype=torch.long))
        self.embeddings = nn.ModuleList([nn.Embedding(c, spec.embedding_dim) for c in cards])
        layers: list[nn.Module] = []
        width = self.num_numeric + spec.embedding_dim * len(cards)
        for h in spec.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(spec.dropout)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        num = x[:, : self.num_numeric]
        num = (torch.where(torch.isnan(num), self.fill, num) - self.mean) / self.std
        parts = [num]
        if len(self.embeddings):
            raw = x[:, self.num_numeric :]
            codes = torch.where(torch.isnan(raw), torch.zeros_like(raw), raw).long()
            # A code outside the vocabulary (negative or too large) is read as unknown, never out of bounds.
            codes = torch.where(
                (codes < 0) | (codes > self.max_code), torch.zeros_like(codes), codes
            )
            parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


def build_model(spec: ModelSpec, state: dict[str, torch.Tensor] | None = None) -> CTRModel:
    """A :class:`CTRModel` for ``spec``, with ``state`` (a ``state_dict``) loaded when given, in eval mode."""
    model = CTRModel(spec)
    if state is not None:
        model.load_state_dict(state)
    return model.eval()
