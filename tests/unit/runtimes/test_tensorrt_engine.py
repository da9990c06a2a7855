"""The TensorRT engine builder: skipped with one log line here, cached per model/GPU/TensorRT."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mlray.errors import ConfigError
from mlray.runtimes.tensorrt_engine import (
    SKIP_MESSAGE,
    build_engine,
    engine_dir,
    tensorrt_available,
)


@pytest.mark.skipif(
    tensorrt_available(), reason="TensorRT and a GPU are present: tests/gpu builds engines"
)
def test_without_tensorrt_the_build_is_skipped_not_failed(
    onnx_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="mlray.runtimes.tensorrt_engine"):
        assert build_engine(onnx_path, tmp_path / "cache", "ctr/1", precision="int8") is None
    assert SKIP_MESSAGE in caplog.text
    assert (
        SKIP_MESSAGE
        == "TensorRT not available (no GPU / tensorrt not installed): skipping engine build"
    )
    assert not (tmp_path / "cache").exists()


def test_unknown_precision_is_a_config_error(onnx_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'fp16' or 'int8'"):
        build_engine(onnx_path, tmp_path, "ctr/1", precision="fp8")  # type: ignore[arg-type]


def test_cache_folder_is_keyed_by_model_version_gpu_and_tensorrt_version(tmp_path: Path) -> None:
    a = engine_dir(tmp_path, "ctr_model/3", "NVIDIA H100 80GB HBM3", "10.13.0")
    assert a == tmp_path / "ctr_model_3" / "NVIDIA_H100_80GB_HBM3" / "trt-10.13.0"
    others = {
        engine_dir(tmp_path, "ctr_model/4", "NVIDIA H100 80GB HBM3", "10.13.0"),
        engine_dir(tmp_path, "ctr_model/3", "NVIDIA L4", "10.13.0"),
        engine_dir(tmp_path, "ctr_model/3", "NVIDIA H100 80GB HBM3", "10.14.1"),
    }
    assert a not in others and len(others) == 3
