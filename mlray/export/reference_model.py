"""A small CTR model that keeps the training contract, with synthetic click data.

The export and runtime code is written against the contract alone (a module
whose ``forward(x: float32[B, F]) -> float32[B]`` returns click probabilities,
numeric features first, categorical codes as floats after them), so its
tests, the runtime benchmark and the GPU check use this self-contained model
instead of depending on how ``mlray.training`` builds its own. The data has
real signal (AUC well above 0.5), so AUC comparisons between FP32 and INT8
mean something.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class SyntheticCTR:
    """Synthetic click data in the model's input layout."""

    x: np.ndarray  # float32 [N, F]: numeric (raw, with NaNs) then categorical codes
    y: np.ndarray  # int8 [N]: clicked or not
    numeric: list[str]
    categorical: dict[str, int]  # name -> cardinality (codes 0..card-1)

    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def metadata(self) -> dict[str, Any]:
        """The JSON-serialisable spec :func:`mlray.export.onnx.export_onnx` records."""
        return {
            "feature_names": self.feature_names,
            "numeric_features": self.numeric,
            "categorical_features": dict(self.categorical),
            "output": "click_probability",
        }


def make_ctr_data(n: int, *, num_numeric: int = 12, seed: int = 0) -> SyntheticCTR:
    """Draw ``n`` impressions whose click probability depends on the features.

    Numeric features have assorted scales and 2% missing values, so the
    model's folded normalization and null filling matter; the label mixes a
    linear part, an interaction and a per-category effect.
    """
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.1, 1000.0, num_numeric)
    z = rng.standard_normal((n, num_numeric))
    numeric = (z * scales + scales).astype(np.float32)
    numeric[rng.random(numeric.shape) < 0.02] = np.nan
    cards = {"category": 40, "device": 3}
    cat = np.stack([rng.integers(0, c, n) for c in cards.values()], axis=1)
    w = rng.standard_normal(num_numeric) / np.sqrt(num_numeric)
    cat_effect = rng.standard_normal(cards["category"])
    logit = z @ w * 1.5 + 0.8 * z[:, 0] * z[:, 1] + cat_effect[cat[:, 0]] + 0.3 * cat[:, 1] - 1.5
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    x = np.concatenate([numeric, cat.astype(np.float32)], axis=1)
    return SyntheticCTR(
        x=x, y=y, numeric=[f"num_{i}" for i in range(num_numeric)], categorical=cards
    )


class ReferenceCTRModel(nn.Module):
    """An MLP over normalized numeric features and categorical embeddings.

    Normalization statistics and the null fill values are buffers, so they
    travel into ONNX with the weights (the training contract).
    """

    def __init__(
        self,
        num_numeric: int,
        cardinalities: list[int],
        hidden: tuple[int, ...] = (256, 128),
        emb_dim: int = 8,
    ) -> None:
        super().__init__()
        self.num_numeric = num_numeric
        self.register_buffer("mean", torch.zeros(num_numeric))
        self.register_buffer("std", torch.ones(num_numeric))
        self.register_buffer("fill", torch.zeros(num_numeric))
        self.register_buffer(
            "max_code", torch.tensor([c - 1 for c in cardinalities], dtype=torch.long)
        )
        self.embeddings = nn.ModuleList([nn.Embedding(c, emb_dim) for c in cardinalities])
        layers: list[nn.Module] = []
        width = num_numeric + emb_dim * len(cardinalities)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def fit_normalization(self, x: np.ndarray) -> None:
        """Set the folded mean/std/fill buffers from raw training features."""
        num = x[:, : self.num_numeric].astype(np.float64)
        mean = np.nanmean(num, axis=0)
        std = np.nanstd(num, axis=0)
        self.mean.copy_(torch.from_numpy(mean).float())
        self.std.copy_(torch.from_numpy(np.where(std > 0, std, 1.0)).float())
        self.fill.copy_(
            torch.from_numpy(mean).float()
        )  # a missing value is read as the mean: 0 after scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num = x[:, : self.num_numeric]
        num = torch.where(torch.isnan(num), self.fill, num)
        num = (num - self.mean) / self.std
        # Codes arrive as floats; an unseen code is clamped into range rather than indexing out of bounds.
        codes = torch.minimum(x[:, self.num_numeric :].long().clamp(min=0), self.max_code)
        embs = [emb(codes[:, i]) for i, emb in enumerate(self.embeddings)]
        return torch.sigmoid(self.mlp(torch.cat([num, *embs], dim=1))).squeeze(-1)


@dataclass
class TrainedReference:
    """A trained reference model with its data split."""

    model: ReferenceCTRModel
    data: SyntheticCTR
    train_idx: np.ndarray
    test_idx: np.ndarray
    losses: list[float] = field(default_factory=list)

    @property
    def x_train(self) -> np.ndarray:
        return self.data.x[self.train_idx]

    @property
    def x_test(self) -> np.ndarray:
        return self.data.x[self.test_idx]

    @property
    def y_test(self) -> np.ndarray:
        return self.data.y[self.test_idx]


def train_reference_model(
    n: int = 20_000,
    *,
    hidden: tuple[int, ...] = (256, 128),
    steps: int = 300,
    batch_size: int = 512,
    seed: int = 0,
) -> TrainedReference:
    """Train :class:`ReferenceCTRModel` on synthetic data (80/20 split).

    Args:
        n: rows of synthetic data.
        hidden: MLP widths; (256, 128) is the size of the real CTR model.
        steps: Adam steps.
        batch_size: rows per step.
        seed: seeds the data, the initial weights and the batches.

    Returns:
        The model in eval mode, its data and the split.
    """
    torch.manual_seed(seed)
    data = make_ctr_data(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    order = rng.permutation(n)
    train_idx, test_idx = order[: int(n * 0.8)], order[int(n * 0.8) :]
    model = ReferenceCTRModel(len(data.numeric), list(data.categorical.values()), hidden=hidden)
    model.fit_normalization(data.x[train_idx])
    x = torch.from_numpy(data.x[train_idx])
    y = torch.from_numpy(data.y[train_idx].astype(np.float32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    model.train()
    for _ in range(steps):
        b = torch.from_numpy(rng.integers(0, len(train_idx), batch_size))
        loss = nn.functional.binary_cross_entropy(model(x[b]), y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return TrainedReference(
        model=model, data=data, train_idx=train_idx, test_idx=test_idx, losses=losses
    )
