"""TensorRT engines and the CUDA execution provider, checked against ONNX Runtime on CPU."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from mlray.export.artifacts import ExportResult
from mlray.export.quantize import roc_auc
from mlray.export.reference_model import TrainedReference
from mlray.export.tensorrt_engine import build_engine, engine_dir, gpu_name
from mlray.runtimes import load_runtime
from mlray.runtimes.onnxruntime_rt import cuda_provider_available

pytestmark = pytest.mark.gpu
needs_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None, reason="the tensorrt package is not installed"
)


@pytest.fixture(scope="module")
def cpu_reference(exported: ExportResult, trained: TrainedReference) -> np.ndarray:
    return load_runtime(exported.artifact.root, "onnxruntime", "fp32", device="cpu").predict(
        trained.x_test
    )


def test_torch_cuda_matches_onnxruntime_cpu(
    exported: ExportResult, trained: TrainedReference, cpu_reference: np.ndarray
) -> None:
    rt = load_runtime(exported.artifact.root, "torch", device="cuda")
    assert rt.name == "torch-cuda-fp32"
    np.testing.assert_allclose(rt.predict(trained.x_test), cpu_reference, rtol=0, atol=1e-4)


@pytest.mark.skipif(
    not cuda_provider_available(), reason="onnxruntime has no CUDA execution provider"
)
def test_cuda_provider_matches_cpu(
    exported: ExportResult, trained: TrainedReference, cpu_reference: np.ndarray
) -> None:
    rt = load_runtime(exported.artifact.root, "onnxruntime", "fp32", device="cuda")
    assert rt.name == "onnxruntime-cuda-fp32"
    np.testing.assert_allclose(rt.predict(trained.x_test), cpu_reference, rtol=0, atol=1e-4)


@needs_tensorrt
def test_fp16_engine_is_built_cached_and_close_to_cpu(
    exported: ExportResult, trained: TrainedReference, cpu_reference: np.ndarray, tmp_path: Path
) -> None:
    import tensorrt as trt

    path = build_engine(exported.artifact.onnx_path, tmp_path, "ctr/gpu", precision="fp16")
    assert path is not None and path.parent == engine_dir(
        tmp_path, "ctr/gpu", gpu_name(), trt.__version__
    )
    mtime = os.stat(path).st_mtime_ns
    assert build_engine(exported.artifact.onnx_path, tmp_path, "ctr/gpu", precision="fp16") == path
    assert os.stat(path).st_mtime_ns == mtime  # cache hit, not a rebuild
    rt = load_runtime(exported.artifact.root, "auto", engine_cache_dir=tmp_path)
    assert rt.name == "tensorrt-cuda-fp16"
    got = rt.predict(trained.x_test)
    np.testing.assert_allclose(got, cpu_reference, rtol=0, atol=1e-2)
    assert abs(roc_auc(trained.y_test, got) - roc_auc(trained.y_test, cpu_reference)) <= 0.005
    big = np.concatenate([trained.x_test] * 3)[
        :5000
    ]  # above max_batch 4096: split into engine calls
    np.testing.assert_allclose(rt.predict(big)[: len(trained.x_test)], got, rtol=0, atol=1e-6)


@needs_tensorrt
def test_int8_engine_writes_and_reuses_its_calibration_cache(
    exported: ExportResult, trained: TrainedReference, cpu_reference: np.ndarray, tmp_path: Path
) -> None:
    path = build_engine(
        exported.artifact.onnx_path,
        tmp_path,
        "ctr/gpu",
        precision="int8",
        calibration=trained.x_train,
    )
    assert path is not None
    calib = list(path.parent.glob("*.int8.calib"))
    assert len(calib) == 1 and calib[0].stat().st_size > 0
    path.unlink()  # rebuild from the calibration cache alone, no rows given
    assert build_engine(exported.artifact.onnx_path, tmp_path, "ctr/gpu", precision="int8") == path
    rt = load_runtime(exported.artifact.root, "tensorrt", "int8", engine_cache_dir=tmp_path)
    got = rt.predict(trained.x_test)
    assert roc_auc(trained.y_test, cpu_reference) - roc_auc(trained.y_test, got) <= 0.005
