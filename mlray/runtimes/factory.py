"""Pick and load a runtime by name: ``auto`` takes the fastest engine this machine offers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlray.errors import ConfigError
from mlray.runtimes.artifact import ModelArtifact, as_artifact
from mlray.runtimes.gpu import gpu_available
from mlray.runtimes.protocol import ModelRuntime
from mlray.runtimes.tensorrt_engine import tensorrt_available

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnxruntime", "tensorrt", "torch")
PRECISIONS = ("auto", "fp32", "fp16", "int8")
DEVICES = ("auto", "cpu", "cuda")


def resolve(
    artifact: ModelArtifact, runtime: str = "auto", precision: str = "auto", device: str = "auto"
) -> tuple[str, str, str]:
    """The concrete (runtime, precision, device) that ``auto`` values stand for here.

    ``runtime='auto'`` on a GPU is TensorRT when ``tensorrt`` is installed, else
    ONNX Runtime's CUDA provider when onnxruntime-gpu is, else PyTorch CUDA when
    the artifact has a PyTorch program; on the CPU it is ONNX Runtime.
    ``precision='auto'`` is FP16 on TensorRT, INT8 on ONNX Runtime CPU when the
    artifact kept an INT8 model (it passed the accuracy gate), else FP32.
    Answering imports no torch; only the PyTorch runtime with ``device='auto'``
    asks torch whether it sees a GPU.

    Args:
        artifact: the model version to serve.
        runtime: ``auto``, ``onnxruntime``, ``tensorrt`` or ``torch``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``int8``.
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        The concrete runtime, precision and device names.

    Raises:
        ConfigError: an unknown runtime, precision or device name.
    """
    for value, valid, what in (
        (runtime, RUNTIMES, "runtime"),
        (precision, PRECISIONS, "precision"),
        (device, DEVICES, "device"),
    ):
        if value not in valid:
            raise ConfigError(f"Unknown model {what} {value!r}; use one of {', '.join(valid)}.")
    if runtime == "auto":
        runtime = _auto_runtime(artifact, device)
    if runtime == "tensorrt":
        return runtime, ("fp16" if precision == "auto" else precision), "cuda"
    if device == "auto":
        device = _auto_device(runtime)
    if precision == "auto":
        has_int8 = artifact.int8_path is not None and Path(artifact.int8_path).exists()
        precision = "int8" if runtime == "onnxruntime" and device == "cpu" and has_int8 else "fp32"
    return runtime, precision, device


def _auto_runtime(artifact: ModelArtifact, device: str) -> str:
    """TensorRT, ONNX Runtime CUDA, PyTorch CUDA on a GPU (first available); ONNX Runtime on CPU."""
    if device == "cpu" or not gpu_available():
        return "onnxruntime"
    if tensorrt_available():
        return "tensorrt"
    from mlray.runtimes.onnxruntime_rt import cuda_provider_available

    if cuda_provider_available():
        return "onnxruntime"
    has_program = artifact.torch_path is not None and Path(artifact.torch_path).exists()
    return "torch" if has_program or artifact.torch_module is not None else "onnxruntime"


def _auto_device(runtime: str) -> str:
    if runtime == "onnxruntime":
        from mlray.runtimes.onnxruntime_rt import cuda_provider_available

        return "cuda" if cuda_provider_available() else "cpu"
    if not gpu_available():
        return "cpu"
    import torch  # the PyTorch runtime was asked for: it will import torch anyway

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_runtime(
    artifact_dir_or_paths: ModelArtifact | str | Path | Mapping[str, Any],
    runtime: str = "auto",
    precision: str = "auto",
    *,
    device: str = "auto",
    intra_op_threads: int = 1,
    engine_cache_dir: str | Path | None = None,
    calibration: np.ndarray | None = None,
) -> ModelRuntime:
    """Load a model version into the chosen runtime.

    Args:
        artifact_dir_or_paths: an artifact directory (``artifact.json``), an ``.onnx``
            file, a mapping ``{"onnx": ..., "int8": ..., "torch": ...}`` or a
            :class:`~mlray.runtimes.artifact.ModelArtifact`.
        runtime: ``auto``, ``onnxruntime``, ``tensorrt`` or ``torch``.
        precision: ``auto``, ``fp32``, ``fp16`` (TensorRT) or ``int8``.
        device: ``auto``, ``cpu`` or ``cuda``.
        intra_op_threads: ONNX Runtime threads per operator.
        engine_cache_dir: TensorRT engine cache (default: next to the ONNX file).
        calibration: training rows for a first INT8 TensorRT build.

    Returns:
        A loaded :class:`~mlray.runtimes.protocol.ModelRuntime`.

    Raises:
        ConfigError: unknown names, or a combination this machine cannot run.
        NotFoundError: the artifact lacks the file the choice needs.
        BackendUnavailable: TensorRT asked for where it is not available.
    """
    artifact = as_artifact(artifact_dir_or_paths)
    name, precision, device = resolve(artifact, runtime, precision, device)
    rt: ModelRuntime
    if name == "onnxruntime":
        from mlray.runtimes.onnxruntime_rt import OnnxRuntimeRuntime

        rt = OnnxRuntimeRuntime(
            precision=precision,
            device=device,
            intra_op_threads=intra_op_threads,
        )
    elif name == "tensorrt":
        from mlray.runtimes.tensorrt_rt import TensorRTRuntime

        rt = TensorRTRuntime(
            precision=precision,
            cache_dir=engine_cache_dir,
            calibration=calibration,
        )
    else:
        if precision != "fp32":
            raise ConfigError(f"The PyTorch runtime serves fp32 only, not {precision!r}.")
        from mlray.runtimes.torch_rt import TorchRuntime

        rt = TorchRuntime(device=device)
    rt.load(artifact)
    log.info("Model %s served by %s", artifact.model_version, rt.name)
    return rt
