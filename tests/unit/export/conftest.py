"""A trained reference CTR model (real signal, so AUC means something) shared by the export tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mlray.export.reference_model import TrainedReference, train_reference_model


@pytest.fixture(scope="session")
def trained() -> TrainedReference:
    """A small MLP with embeddings, trained on synthetic clicks (one thread: the suite shares 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_reference_model(6000, hidden=(32, 16), steps=150, batch_size=256, seed=3)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def onnx_path(trained: TrainedReference, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlray.export.onnx import export_onnx

    return export_onnx(
        trained.model, trained.data.metadata(), tmp_path_factory.mktemp("onnx") / "model.onnx"
    )
