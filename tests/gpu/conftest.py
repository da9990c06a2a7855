"""A small trained model and its artifact for the GPU tests (skipped without CUDA)."""

from __future__ import annotations

import pytest
from synthetic_ctr import TrainedCTR, train_ctr

from mlray.export.artifacts import ExportResult, export_model


@pytest.fixture(scope="session")
def trained() -> TrainedCTR:
    return train_ctr(8000, hidden=(64, 32), steps=200, seed=11, threads=None)


@pytest.fixture(scope="session")
def exported(trained: TrainedCTR, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_model(
        trained.model,
        trained.spec,
        tmp_path_factory.mktemp("gpu-artifact"),
        x_test=trained.x_test,
        y_test=trained.y_test,
        calibration=trained.x_train,
        model_version="ctr/gpu",
    )
