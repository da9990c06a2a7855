"""One exported model version (ONNX, INT8, PyTorch program) shared by the runtime tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_ctr import TrainedCTR, train_ctr

from mlray.export.artifacts import ExportResult, export_model


@pytest.fixture(scope="session")
def trained() -> TrainedCTR:
    """A production CTRModel trained for a few steps on synthetic clicks."""
    return train_ctr(5000, hidden=(32, 16), steps=120, batch_size=256, seed=5)


@pytest.fixture(scope="session")
def exported(trained: TrainedCTR, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_model(
        trained.model,
        trained.spec,
        tmp_path_factory.mktemp("artifact"),
        x_test=trained.x_test,
        y_test=trained.y_test,
        calibration=trained.x_train,
        model_version="ctr/7",
    )


@pytest.fixture(scope="session")
def onnx_path(exported: ExportResult) -> Path:
    assert exported.artifact.onnx_path is not None
    return exported.artifact.onnx_path
