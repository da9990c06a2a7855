"""INT8 static quantization and the AUC gate that decides whether it is kept."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from synthetic_ctr import TrainedCTR

from mlray.errors import ConfigError, SchemaError
from mlray.export.quantize import check_int8, quantize_int8
from mlray.metrics import roc_auc
from mlray.runtimes.model_spec import ModelSpec
from mlray.runtimes.onnx_metadata import read_onnx_metadata


@pytest.fixture(scope="module")
def int8_path(
    onnx_path: Path, trained: TrainedCTR, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return quantize_int8(
        onnx_path, trained.x_train, tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    )


def test_int8_model_is_quantized_and_keeps_the_metadata(
    int8_path: Path, trained: TrainedCTR
) -> None:
    graph = onnx.load(str(int8_path)).graph
    int8_weights = {t.name for t in graph.initializer if t.data_type == onnx.TensorProto.INT8}
    dequantized = {
        n.output[0]
        for n in graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in int8_weights
    }
    gemms = [n for n in graph.node if n.op_type == "Gemm"]
    assert len(gemms) == 3 and all(
        n.input[1] in dequantized for n in gemms
    )  # every weight is stored as int8
    assert all(n.op_type != "Relu" for n in graph.node)  # folded into the quantized Gemm outputs
    meta = read_onnx_metadata(int8_path)
    assert meta.feature_names == trained.feature_names
    assert ModelSpec.from_dict(meta.spec) == trained.spec


def test_int8_passes_the_gate_on_a_model_with_real_signal(
    onnx_path: Path, int8_path: Path, trained: TrainedCTR, caplog: pytest.LogCaptureFixture
) -> None:
    auc_torch = roc_auc(trained.y_test, trained.torch_scores(trained.x_test))
    with caplog.at_level(logging.INFO, logger="mlray.export.quantize"):
        report = check_int8(
            onnx_path, int8_path, trained.x_test, trained.y_test, max_auc_drop=0.005
        )
    assert report.auc_fp32 == pytest.approx(auc_torch, abs=1e-6)
    assert (
        report.auc_fp32 > 0.75
    )  # the synthetic data carries signal, so the comparison is meaningful
    assert report.kept and report.auc_drop <= 0.005 and int8_path.exists()
    assert report.rows == len(trained.x_test)
    assert "INT8 kept" in caplog.text and f"{report.auc_int8:.5f}" in caplog.text


def test_badly_calibrated_int8_is_rejected_and_deleted(
    onnx_path: Path, trained: TrainedCTR, tmp_path: Path
) -> None:
    # Ranges from inputs scaled up 10^4 leave the real activations a handful of int8 steps:
    # accuracy collapses.
    bad = quantize_int8(onnx_path, trained.x_train * 1e4, tmp_path / "bad.int8.onnx")
    report = check_int8(onnx_path, bad, trained.x_test, trained.y_test, max_auc_drop=0.005)
    assert report.auc_drop > 0.005
    assert not report.kept and not bad.exists()
    assert report.to_dict()["auc_drop"] == pytest.approx(report.auc_drop)


def test_gate_threshold_is_configurable(
    onnx_path: Path, int8_path: Path, trained: TrainedCTR
) -> None:
    report = check_int8(onnx_path, int8_path, trained.x_test, trained.y_test, max_auc_drop=1.0)
    assert report.kept and report.max_auc_drop == 1.0
    with pytest.raises(ConfigError, match="max_auc_drop"):
        check_int8(onnx_path, int8_path, trained.x_test, trained.y_test, max_auc_drop=-0.1)


def test_calibration_must_match_the_feature_order(onnx_path: Path, tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"\(rows, 14\).*num_0"):
        quantize_int8(onnx_path, np.zeros((10, 3), np.float32), tmp_path / "x.onnx")
    qop = quantize_int8(
        onnx_path, np.zeros((10, 14), np.float32), tmp_path / "qop.onnx", quant_format="qoperator"
    )
    assert "QGemm" in {n.op_type for n in onnx.load(str(qop)).graph.node}
    with pytest.raises(ConfigError, match="quant_format"):
        quantize_int8(
            onnx_path, np.zeros((10, 14), np.float32), tmp_path / "x.onnx", quant_format="fp8"
        )  # type: ignore[arg-type]


def test_a_single_class_test_slice_cannot_gate(
    onnx_path: Path, int8_path: Path, trained: TrainedCTR
) -> None:
    ones = np.ones(len(trained.x_test), np.float32)
    with pytest.raises(SchemaError, match="both classes"):
        check_int8(onnx_path, int8_path, trained.x_test, ones, delete_rejected=False)
    assert int8_path.exists()
