"""One exported model version (ONNX, INT8, PyTorch program) shared by the runtime tests."""

from __future__ import annotations

import pytest
import torch

from mlray.export.artifacts import ExportResult, export_model
from mlray.export.reference_model import TrainedReference, train_reference_model


@pytest.fixture(scope="session")
def trained() -> TrainedReference:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the suite shares 2 cores; one thread trains this small model fastest
    try:
        return train_reference_model(5000, hidden=(32, 16), steps=120, batch_size=256, seed=5)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def exported(trained: TrainedReference, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    return export_model(
        trained.model,
        trained.data.metadata(),
        tmp_path_factory.mktemp("artifact"),
        x_test=trained.x_test,
        y_test=trained.y_test,
        calibration=trained.x_train,
        model_version="ctr/7",
    )
