"""A small trained model and its artifact for the GPU tests (skipped without CUDA by the root conftest)."""

from __future__ import annotations

import pytest

from mlray.export.artifacts import ExportResult, export_model
from mlray.export.reference_model import TrainedReference, train_reference_model


@pytest.fixture(scope="session")
def trained() -> TrainedReference:
    return train_reference_model(8000, hidden=(64, 32), steps=200, seed=11)


@pytest.fixture(scope="session")
def exported(trained: TrainedReference, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_model(
        trained.model,
        trained.data.metadata(),
        tmp_path_factory.mktemp("gpu-artifact"),
        x_test=trained.x_test,
        y_test=trained.y_test,
        calibration=trained.x_train,
        model_version="ctr/gpu",
    )
