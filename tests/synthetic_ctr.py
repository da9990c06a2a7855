"""A small production :class:`~mlray.training.model.CTRModel` trained on synthetic clicks.

The export, runtime and GPU tests (and benchmarks/runtimes.py and
benchmarks/gpu_check.py) need a trained model whose scores mean something, so
AUC comparisons between FP32 and INT8 are real. They get the model the
pipeline trains, built the pipeline's way: block statistics ->
``spec_from_stats`` -> ``encode_frame`` -> ``CTRModel``, a few hundred Adam
steps on logits. The feature rows are named like a training set's (12 numeric
features ``num_*`` with assorted scales and 2% nulls, then the categorical
``category`` and ``device``), so the input matrix is 14 wide.

Imported by module name: pytest puts ``tests/`` on ``sys.path`` (the root
conftest), the benchmarks add it themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch

from mlray.runtimes.encoding import encode_frame, label_array
from mlray.runtimes.model_spec import ModelSpec
from mlray.training.model import CTRModel
from mlray.training.preprocess import merge_stats, partial_stats, spec_from_stats

NUM_NUMERIC = 12
NUMERIC = [f"num_{i}" for i in range(NUM_NUMERIC)]
CATEGORIES = [f"cat_{i:02d}" for i in range(40)]
DEVICES = ["desktop", "mobile", "tablet"]
CATEGORICAL = ["category", "device"]
LABEL = "clicked"


def make_clicks(n: int, *, seed: int = 0) -> pa.Table:
    """``n`` impressions whose click probability depends on the features.

    Numeric features have assorted scales and 2% nulls, so the model's folded
    normalization and null filling matter; the label mixes a linear part, an
    interaction and a per-category effect.
    """
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.1, 1000.0, NUM_NUMERIC)
    z = rng.standard_normal((n, NUM_NUMERIC))
    numeric = z * scales + scales
    nulls = rng.random(numeric.shape) < 0.02
    category = rng.integers(0, len(CATEGORIES), n)
    device = rng.integers(0, len(DEVICES), n)
    w = rng.standard_normal(NUM_NUMERIC) / np.sqrt(NUM_NUMERIC)
    effect = rng.standard_normal(len(CATEGORIES))
    logit = z @ w * 1.5 + 0.8 * z[:, 0] * z[:, 1] + effect[category] + 0.3 * device - 1.5
    clicked = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    columns = {name: pa.array(numeric[:, i], mask=nulls[:, i]) for i, name in enumerate(NUMERIC)}
    columns["category"] = pa.array(np.asarray(CATEGORIES)[category])
    columns["device"] = pa.array(np.asarray(DEVICES)[device])
    columns[LABEL] = pa.array(clicked.astype(np.int8))
    return pa.table(columns)


@dataclass
class TrainedCTR:
    """A trained model, its spec and the encoded train/test slices."""

    model: CTRModel
    spec: ModelSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    losses: list[float] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        return self.spec.feature_names

    def torch_scores(self, x: np.ndarray) -> np.ndarray:
        """The model's click probabilities for ``x``, computed by PyTorch."""
        with torch.no_grad():
            return self.model(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def train_ctr(
    n: int = 6000,
    *,
    hidden: Sequence[int] = (32, 16),
    steps: int = 150,
    batch_size: int = 256,
    seed: int = 0,
    threads: int | None = 1,
) -> TrainedCTR:
    """Train a :class:`CTRModel` on ``make_clicks(n)`` (80/20 split), the pipeline's way.

    Args:
        n: rows of synthetic data.
        hidden: hidden layer widths; (256, 128) is the size the benchmarks time.
        steps: Adam steps.
        batch_size: rows per step.
        seed: seeds the data, the initial weights and the batches.
        threads: torch threads while training (restored after); None keeps the setting.

    Returns:
        The model in eval mode, its spec and the encoded slices.
    """
    table = make_clicks(n, seed=seed)
    cut = int(n * 0.8)
    train, test = table.slice(0, cut), table.slice(cut)
    stats = merge_stats([partial_stats(train, NUMERIC, CATEGORICAL)])
    spec = spec_from_stats(
        stats, NUMERIC, CATEGORICAL, hidden=list(hidden), embedding_dim=8, dropout=0.0
    )
    x_train, y_train = encode_frame(spec, train), label_array(train.column(LABEL), LABEL)
    x_test, y_test = encode_frame(spec, test), label_array(test.column(LABEL), LABEL)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        model, losses = _fit(spec, x_train, y_train, steps, batch_size, seed)
    finally:
        torch.set_num_threads(before)
    return TrainedCTR(model, spec, x_train, y_train, x_test, y_test, losses)


def _fit(
    spec: ModelSpec, x: np.ndarray, y: np.ndarray, steps: int, batch_size: int, seed: int
) -> tuple[CTRModel, list[float]]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    model = CTRModel(spec)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses = []
    model.train()
    for _ in range(steps):
        b = torch.from_numpy(rng.integers(0, len(ys), batch_size))
        loss = loss_fn(model.logits(xs[b]), ys[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses
