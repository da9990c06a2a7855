"""The ``mlray export`` commands on a real artifact directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_ctr import TrainedCTR
from typer.testing import CliRunner

from mlray.export.artifacts import export_model
from mlray.runtimes.tensorrt_engine import tensorrt_available


@pytest.fixture(scope="module")
def artifact_dir(trained: TrainedCTR, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-artifact")
    export_model(
        trained.model,
        trained.spec,
        out,
        x_test=trained.x_test,
        y_test=trained.y_test,
        calibration=trained.x_train,
        model_version="ctr/9",
        include_torch=False,
    )
    return out


def test_inspect_shows_the_checks_and_the_runtime_serving_it(artifact_dir: Path) -> None:
    from mlray.cli import app

    res = CliRunner().invoke(app, ["export", "inspect", str(artifact_dir), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "model ctr/9" in res.output and "AUC fp32 / int8" in res.output
    assert "served by onnxruntime-cpu-int8" in res.output


def test_inspect_with_an_unknown_runtime_exits_2_naming_the_choices(artifact_dir: Path) -> None:
    from mlray.cli import app

    res = CliRunner().invoke(app, ["export", "inspect", str(artifact_dir), "--runtime", "onnx"])
    assert res.exit_code == 2
    assert "Unknown model runtime 'onnx'" in res.output


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is present: tests/gpu builds engines")
def test_engine_without_tensorrt_is_skipped_with_status_0(artifact_dir: Path) -> None:
    from mlray.cli import app

    res = CliRunner().invoke(app, ["export", "engine", str(artifact_dir)])
    assert res.exit_code == 0, res.output
    assert "no engine built (TensorRT not available" in res.output
