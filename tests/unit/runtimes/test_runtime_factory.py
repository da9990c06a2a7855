"""load_runtime: names, the auto choice, and what each kind of artifact source gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mlray.errors import BackendUnavailable, ConfigError, NotFoundError
from mlray.export.artifacts import ExportResult
from mlray.runtimes import ModelArtifact, as_artifact, load_runtime, resolve
from mlray.runtimes.onnxruntime_rt import cuda_provider_available
from mlray.runtimes.tensorrt_engine import tensorrt_available

NO_GPU_ENGINES = not tensorrt_available() and not cuda_provider_available()


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"runtime": "tensorflow"}, "runtime 'tensorflow'"),
        ({"precision": "int4"}, "precision 'int4'"),
        ({"device": "tpu"}, "device 'tpu'"),
        ({"runtime": "onnxruntime", "precision": "fp16"}, "TensorRT"),
        ({"runtime": "torch", "precision": "int8"}, "fp32 only"),
    ],
)
def test_unknown_or_impossible_choices_are_config_errors(
    exported: ExportResult, kwargs: dict, word: str
) -> None:
    with pytest.raises(ConfigError, match=word):
        load_runtime(exported.artifact.root, **kwargs)


@pytest.mark.skipif(not NO_GPU_ENGINES, reason="this machine has a GPU engine")
def test_auto_on_cpu_is_onnxruntime_int8_when_int8_was_kept(exported: ExportResult) -> None:
    assert exported.artifact.int8_path is not None
    assert resolve(exported.artifact) == ("onnxruntime", "int8", "cpu")
    assert load_runtime(exported.artifact.root).name == "onnxruntime-cpu-int8"


@pytest.mark.skipif(not NO_GPU_ENGINES, reason="this machine has a GPU engine")
def test_auto_falls_back_to_fp32_without_int8(exported: ExportResult, tmp_path: Path) -> None:
    art = ModelArtifact.from_onnx(exported.artifact.onnx_path)
    assert resolve(art) == ("onnxruntime", "fp32", "cpu")
    with pytest.raises(NotFoundError, match="precision='fp32'"):
        load_runtime(art, "onnxruntime", "int8")


@pytest.mark.skipif(tensorrt_available(), reason="TensorRT is present: tests/gpu covers it")
def test_tensorrt_where_absent_is_backend_unavailable(
    exported: ExportResult, tmp_path: Path
) -> None:
    with pytest.raises(BackendUnavailable, match="TensorRT not available.*runtime='onnxruntime'"):
        load_runtime(exported.artifact.root, "tensorrt", engine_cache_dir=tmp_path)


@pytest.mark.skipif(
    cuda_provider_available(), reason="the CUDA provider is present: tests/gpu covers it"
)
def test_cuda_provider_where_absent_is_a_config_error(exported: ExportResult) -> None:
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        load_runtime(exported.artifact.root, "onnxruntime", "fp32", device="cuda")


def test_sources_dir_onnx_file_and_mapping_agree(exported: ExportResult) -> None:
    art = exported.artifact
    x = np.zeros((3, art.num_features), np.float32)
    outs = [
        load_runtime(src, "onnxruntime", "fp32", device="cpu").predict(x)
        for src in (art.root, art.onnx_path, {"onnx": art.onnx_path, "int8": art.int8_path}, art)
    ]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    assert as_artifact(art.onnx_path).feature_names == art.feature_names


def test_bad_sources_say_what_to_pass(exported: ExportResult, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="artifact.json"):
        as_artifact(tmp_path)
    with pytest.raises(NotFoundError, match="not found"):
        as_artifact(tmp_path / "nope.onnx")
    with pytest.raises(ConfigError, match="'onnx'"):
        as_artifact({"int8": "x"})
    with pytest.raises(ConfigError, match="ModelArtifact"):
        as_artifact(42)  # type: ignore[arg-type]


def test_rejected_int8_is_not_served(exported: ExportResult, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(exported.artifact.root, tmp_path / "v"))
    (copy / "model.int8.onnx").unlink()  # as check_int8 does when the gate rejects it
    art = ModelArtifact.from_dir(copy)
    assert resolve(art, "onnxruntime", device="cpu") == ("onnxruntime", "fp32", "cpu")
    with pytest.raises(NotFoundError, match="AUC drop"):
        load_runtime(copy, "onnxruntime", "int8")
