"""The per-worker training function Ray Train runs (one copy per worker, DDP between them).

Reads top to bottom: settings from ``config``, the model and optimizer, resume
from the latest checkpoint if Ray Train restarted us, then per epoch a pass
over this worker's shard of the training data, a validation pass, and a
report with a checkpoint. Data arrives from the Ray Dataset already encoded
(``x`` float32[B, F], ``y`` float32[B]); nothing is collected to the driver.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypedDict

import numpy as np
import ray.train
import ray.train.torch
import torch
from torch import nn

from mlray.metrics import log_loss, roc_auc
from mlray.runtimes.model_spec import DEFAULT_LAYERS, DEFAULT_WIDTH, ModelSpec, hidden_layers
from mlray.training.model import CTRModel
from mlray.training.shard_reader import ShardReader

CHECKPOINT_FILE = "model.pt"


class _ReadOptions(TypedDict):
    """How a :class:`ShardReader` reads (the same for the train and validation shards)."""

    per_read: int
    prefetch: int
    cache_bytes: int


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Train a :class:`CTRModel`; report losses, ``val_auc`` and a checkpoint every epoch.

    ``config`` holds ``spec`` (a :meth:`ModelSpec.to_dict`), the hyperparameters
    (``lr``, ``weight_decay``, ``width``, ``layers``, ``embedding_dim``,
    ``dropout``) and ``epochs``, ``batch_size``, ``seed``, ``local_shuffle_rows``,
    ``prefetch_batches``, ``batches_per_read``, ``cache_shard_mb``, ``torch_threads``.
    """
    # -- settings --------------------------------------------------------------
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    epochs, batch_size = int(config["epochs"]), int(config["batch_size"])
    seed = int(config.get("seed", 0))
    reads: _ReadOptions = {
        "per_read": int(config.get("batches_per_read", 32)),
        "prefetch": int(config.get("prefetch_batches", 2)),
        "cache_bytes": int(float(config.get("cache_shard_mb", 0)) * 2**20),
    }
    spec = spec_for(config)
    torch.manual_seed(seed + rank)
    if config.get("torch_threads"):
        torch.set_num_threads(int(config["torch_threads"]))
    device = ray.train.torch.get_device()
    placement_group = ray.util.get_current_placement_group()

    # -- model and optimizer, resumed if Ray Train restarted us ----------------
    model = CTRModel(spec)
    state = latest_checkpoint_state()
    if state is not None:
        model.load_state_dict(state["model"])
    net = ray.train.torch.prepare_model(
        Logits(model)
    )  # moves to the device; wraps in DDP when world > 1
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=float(config["lr"]),
        weight_decay=float(config.get("weight_decay", 0.0)),
    )
    if state is not None:
        optimizer.load_state_dict(
            state["optimizer"]
        )  # after the move: state follows the parameters' device
    restored_from = int(state["epoch"]) if state is not None else -1

    # -- data: this worker's shard of the train slice, all of the validation slice
    #    (kept in memory after the first pass when they fit the cache budget)
    train_data = ShardReader(
        ray.train.get_dataset_shard("train"),
        batch_size,
        device=device,
        seed=seed * 1000 + rank,
        shuffle_rows=int(config.get("local_shuffle_rows", 0)),
        **reads,
    )
    val_data = ShardReader(
        ray.train.get_dataset_shard("validation"),
        max(batch_size, 4096),
        device=device,
        shuffle=False,
        **reads,
    )

    for epoch in range(restored_from + 1, epochs):
        started, cpu_started = time.perf_counter(), time.process_time()
        train_loss, seen = train_epoch(net, optimizer, train_data.epoch(epoch), device)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        val_loss, val_auc = validate(net, val_data.epoch(epoch))
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_auc": val_auc,
            "samples": seen * world,
            "epoch_seconds": seconds,
            "epoch_cpu_seconds": cpu_seconds,
            "samples_per_s": seen * world / seconds,
            "cached_rows": train_data.cached_rows,
            "restored_from_epoch": restored_from,
            "world_size": world,
            "placement_group": placement_group.id.hex() if placement_group else "",
        }
        report(metrics, model, optimizer, spec, epoch, rank)


def train_epoch(
    net: nn.Module, optimizer: torch.optim.Optimizer, batches: Any, device: torch.device
) -> tuple[float, int]:
    """One pass of SGD steps; returns the mean training loss and the rows seen by this worker."""
    net.train()
    loss_fn = nn.BCEWithLogitsLoss()
    total, seen = torch.zeros((), device=device), 0
    for x, y in batches:
        loss = loss_fn(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(y)  # summed on the device: no host sync per step
        seen += len(y)
    return float(total) / max(seen, 1), seen


def spec_for(config: dict[str, Any]) -> ModelSpec:
    """The spec from the driver with this trial's architecture hyperparameters applied.

    Args:
        config: the loop config; ``width`` and ``layers`` default to the spec's own
            architecture, then to :data:`~mlray.runtimes.model_spec.DEFAULT_WIDTH` and
            :data:`~mlray.runtimes.model_spec.DEFAULT_LAYERS`.

    Returns:
        The spec to build the model from.
    """
    spec = ModelSpec.from_dict(config["spec"])
    width = int(config.get("width", spec.hidden[0] if spec.hidden else DEFAULT_WIDTH))
    layers = int(config.get("layers", len(spec.hidden) or DEFAULT_LAYERS))
    return replace(
        spec,
        hidden=hidden_layers(width, layers),
        embedding_dim=int(config.get("embedding_dim", spec.embedding_dim)),
        dropout=float(config.get("dropout", spec.dropout)),
    )


class Logits(nn.Module):
    """Training view of a :class:`CTRModel`: forward returns logits, for a numerically stable loss.

    DDP synchronizes gradients through ``forward`` only, so this wrapper (not
    the probability ``forward`` that export and serving use) is what DDP wraps.
    """

    def __init__(self, model: CTRModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.logits(x)


def latest_checkpoint_state() -> dict[str, Any] | None:
    """The latest checkpoint's contents when Ray Train restarted the workers, else None."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as d:
        return torch.load(os.path.join(d, CHECKPOINT_FILE), map_location="cpu", weights_only=False)


@torch.no_grad()
def validate(
    net: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
) -> tuple[float, float]:
    """Log loss and AUC over the whole validation set (every worker reads all of it).

    ``net`` returns logits.
    """
    net.eval()
    scores, labels = [], []
    for x, y in batches:
        scores.append(torch.sigmoid(net(x)).cpu().numpy())
        labels.append(y.cpu().numpy())
    if not scores:
        return float("nan"), float("nan")
    p, y_true = np.concatenate(scores), np.concatenate(labels)
    return log_loss(y_true, p), roc_auc(y_true, p)


def report(
    metrics: dict[str, Any],
    model: CTRModel,
    optimizer: torch.optim.Optimizer,
    spec: ModelSpec,
    epoch: int,
    rank: int,
) -> None:
    """``ray.train.report`` the epoch's metrics; rank 0 attaches the checkpoint.

    Weights are equal on all ranks, so one copy is enough.
    """
    if rank != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory() as d:
        torch.save(
            {
                "model": {k: v.cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "spec": spec.to_dict(),
            },
            os.path.join(d, CHECKPOINT_FILE),
        )
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))


def load_checkpoint(path: str) -> tuple[ModelSpec, dict[str, torch.Tensor], int]:
    """The spec, weights and epoch stored in a checkpoint directory written by :func:`report`."""
    state = torch.load(os.path.join(path, CHECKPOINT_FILE), map_location="cpu", weights_only=False)
    return ModelSpec.from_dict(state["spec"]), state["model"], int(state["epoch"])
