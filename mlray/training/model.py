"""The click-through model: embeddings and an MLP, with its preprocessing folded in.

Contract with export and serving: :class:`CTRModel` maps ONE float32 matrix
``x[B, F]`` to click probabilities ``[B]``, in the column order of its
:class:`~mlray.runtimes.model_spec.ModelSpec`: the numeric features first, as
raw values (nulls as NaN: the module fills and normalizes them with buffers),
then the categorical features as integer codes stored as floats (code 0 =
unknown or null; a code outside the vocabulary, negative or too large, reads
as 0 too). :func:`mlray.runtimes.encoding.encode_frame` builds ``x`` from
feature rows, in training and in serving alike.
"""

from __future__ import annotations

import torch
from torch import nn

from mlray.runtimes.model_spec import ModelSpec


class CTRModel(nn.Module):
    """Embeddings for categorical codes, an MLP over them and the normalized numeric features.

    ``forward(x[B, F]) -> p[B]`` (sigmoid applied); :meth:`logits` gives the
    pre-sigmoid scores that training feeds to a numerically stable loss.
    """

    # Buffers (registered in __init__; nn.Module's __getattr__ types them Tensor | Module).
    mean: torch.Tensor
    std: torch.Tensor
    fill: torch.Tensor
    max_code: torch.Tensor

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
            # A code outside the vocabulary (negative or too large) reads as unknown,
            # never as an out-of-bounds lookup.
            codes = torch.where(
                (codes < 0) | (codes > self.max_code), torch.zeros_like(codes), codes
            )
            parts += [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.mlp(torch.cat(parts, dim=1)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


def build_model(spec: ModelSpec, state: dict[str, torch.Tensor] | None = None) -> CTRModel:
    """A :class:`CTRModel` for ``spec`` in eval mode.

    Args:
        spec: the model's spec.
        state: a ``state_dict`` to load, if any.

    Returns:
        The model, in eval mode.
    """
    model = CTRModel(spec)
    if state is not None:
        model.load_state_dict(state)
    return model.eval()
