"""A small production CTR model (real signal, so AUC means something) shared by the export tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_ctr import TrainedCTR, train_ctr


@pytest.fixture(scope="session")
def trained() -> TrainedCTR:
    """A CTRModel with a spec from block statistics, trained for a few steps on synthetic clicks."""
    return train_ctr(6000, hidden=(32, 16), steps=150, batch_size=256, seed=3)


@pytest.fixture(scope="session")
def onnx_path(trained: TrainedCTR, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlray.export.onnx import export_onnx

    return export_onnx(trained.model, trained.spec, tmp_path_factory.mktemp("onnx") / "model.onnx")
