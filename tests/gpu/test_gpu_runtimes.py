"""TensorRT engines and the CUDA execution provider, checked against ONNX Runtime on CPU."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from synthetic_ctr import TrainedCTR

from mlray.export.artifacts import ExportResult
from mlray.metrics import roc_auc
from mlray.runtimes import load_runtime, resolve
from mlray.runtimes.gpu import cuda_device_count
from mlray.runtimes.onnxruntime_rt import cuda_provider_available
from mlray.runtimes.tensorrt_engine import (
    build_engine,
    engine_dir,
    gpu_name,
    tensorrt_available,
)

pytestmark = pytest.mark.gpu
needs_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None, reason="the tensorrt package is not installed"
)


@pytest.fixture(scope="module")
def cpu_reference(exported: ExportResult, trained: TrainedCTR) -> np.ndarray:
    return load_runtime(exported.artifact.root, "onnxruntime", "fp32", device="cpu").predict(
        trained.x_test
    )


def test_the_driver_api_sees_the_gpus_torch_sees() -> None:
    import torch

    assert cuda_device_count() == torch.cuda.device_count() > 0


def test_auto_prefers_tensorrt_then_the_cuda_provider(exported: ExportResult) -> None:
    name, _, device = resolve(exported.artifact)
    if tensorrt_available():
        assert (name, device) == ("tensorrt", "cuda")
    else:
        assert name == "onnxruntime"
        assert device == ("cuda" if cuda_provider_available() else "cpu")
    assert resolve(exported.artifact, "torch")[2] == "cuda"


def test_torch_cuda_matches_onnxruntime_cpu(
    exported: ExportResult, trained: TrainedCTR, cpu_reference: np.ndarray
) -> None:
    rt = load_runtime(exported.artifact.root, "torch", device="cuda")
    assert rt.name == "torch-cuda-fp32"
    np.testing.assert_allclose(rt.predict(trained.x_test), cpu_reference, rtol=0, atol=1e-4)


@pytest.mark.skipif(
    not cuda_provider_available(), reason="onnxruntime has no CUDA execution provider"
)
def test_cuda_provider_matches_cpu(
    exported: ExportResult, trained: TrainedCTR, cpu_reference: np.ndarray
) -> None:
    rt = load_runtime(exported.artifact.root, "onnxruntime", "fp32", device="cuda")
    assert rt.name == "onnxruntime-cuda-fp32"
    np.testing.assert_allclose(rt.predict(trained.x_test), cpu_reference, rtol=0, atol=1e-4)


@needs_tensorrt
def test_fp16_engine_is_built_cached_and_close_to_cpu(
    exported: ExportResult, trained: TrainedCTR, cpu_reference: np.ndarray, tmp_path: Path
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
    exported: ExportResult, trained: TrainedCTR, cpu_reference: np.ndarray, tmp_path: Path
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
