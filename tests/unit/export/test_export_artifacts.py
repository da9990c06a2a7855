"""export_model writes a complete artifact directory that the runtimes load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic_ctr import TrainedCTR

from mlray.errors import SchemaError
from mlray.export.artifacts import export_model
from mlray.runtimes.artifact import MANIFEST, ModelArtifact
from mlray.runtimes.model_spec import ModelSpec


def test_export_model_writes_onnx_int8_program_and_manifest(
    trained: TrainedCTR, tmp_path: Path
) -> None:
    result = export_model(
        trained.model,
        trained.spec,
        tmp_path / "v1",
        x_test=trained.x_test,
        y_test=trained.y_test,
        calibration=trained.x_train,
        model_version="ctr/1",
    )
    names = sorted(p.name for p in (tmp_path / "v1").iterdir())
    assert names == sorted([MANIFEST, "model.onnx", "model.int8.onnx", "model.pt2"])
    assert result.int8 is not None and result.int8.kept
    assert result.parity_max_abs_diff <= 1e-5
    manifest = json.loads((tmp_path / "v1" / MANIFEST).read_text())
    assert manifest["feature_names"] == trained.feature_names
    assert ModelSpec.from_dict(manifest["spec"]) == trained.spec
    assert manifest["checks"]["int8"]["kept"] is True and manifest["model_version"] == "ctr/1"
    loaded = ModelArtifact.from_dir(tmp_path / "v1")
    assert loaded.int8_path == tmp_path / "v1" / "model.int8.onnx"
    assert loaded.checks["parity_max_abs_diff"] == pytest.approx(result.parity_max_abs_diff)
    program = torch.export.load(str(loaded.require("torch"))).module()
    x = torch.from_numpy(trained.x_test[:33])
    with torch.no_grad():
        np.testing.assert_allclose(program(x).numpy(), trained.model(x).numpy(), rtol=0, atol=1e-6)


def test_without_labels_or_calibration_no_int8_is_made(trained: TrainedCTR, tmp_path: Path) -> None:
    result = export_model(
        trained.model,
        trained.spec,
        tmp_path,
        x_test=trained.x_test[:100],
        include_torch=False,
    )
    assert (
        result.int8 is None
        and result.artifact.int8_path is None
        and result.artifact.torch_path is None
    )
    assert not (tmp_path / "model.int8.onnx").exists()
    assert ModelArtifact.from_dir(tmp_path).checks["int8"] is None


def test_test_slice_of_the_wrong_width_is_refused_before_writing(
    trained: TrainedCTR, tmp_path: Path
) -> None:
    with pytest.raises(SchemaError, match="x_test must be a non-empty matrix"):
        export_model(trained.model, trained.spec, tmp_path / "v", x_test=trained.x_test[:, :5])
    assert not (tmp_path / "v" / "model.onnx").exists()
