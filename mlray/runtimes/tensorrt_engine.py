"""Build TensorRT engines (FP16, or INT8 with a calibration cache) from an exported ONNX model.

An engine is only valid for the GPU model and TensorRT version that built
it, so engines are cached under ``<cache>/<model version>/<GPU>/trt-<version>/``
and a different card or TensorRT release builds its own. The file name also
carries a hash of the ONNX file, so re-exporting a version never serves a
stale engine. On a machine without a GPU or without the ``tensorrt`` package
the build is skipped with one log line and ``None`` comes back: the CPU
runtimes serve instead.

The engine belongs to the runtime that serves it (:mod:`mlray.runtimes.tensorrt_rt`
builds one on first load); ``mlray export engine`` builds one ahead of time.
Availability is checked without importing torch (:mod:`mlray.runtimes.gpu`);
torch is imported only to name the GPU and to hold calibration batches on it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlray.errors import ConfigError, SchemaError, ValidationFailed
from mlray.runtimes.gpu import gpu_available
from mlray.runtimes.onnx_metadata import read_onnx_metadata

log = logging.getLogger(__name__)

SKIP_MESSAGE = "TensorRT not available (no GPU / tensorrt not installed): skipping engine build"
EnginePrecision = Literal["fp16", "int8"]


def tensorrt_available() -> bool:
    """True when the ``tensorrt`` package is installed and a CUDA GPU is visible.

    The engine's device buffers are torch tensors, so torch must be installed
    too; neither package is imported to answer.
    """
    return (
        importlib.util.find_spec("tensorrt") is not None
        and importlib.util.find_spec("torch") is not None
        and gpu_available()
    )


def gpu_name() -> str:
    """The name of the current CUDA device, e.g. ``NVIDIA H100 80GB HBM3``."""
    import torch

    return torch.cuda.get_device_name(torch.cuda.current_device())


def engine_dir(cache_dir: str | Path, model_version: str, gpu: str, trt_version: str) -> Path:
    """The cache folder for one (model version, GPU, TensorRT version)."""
    return Path(cache_dir) / _safe(model_version) / _safe(gpu) / f"trt-{_safe(trt_version)}"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", part).strip("_") or "_"


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def build_engine(
    onnx_path: str | Path,
    cache_dir: str | Path,
    model_version: str,
    *,
    precision: EnginePrecision = "fp16",
    calibration: np.ndarray | None = None,
    max_batch: int = 4096,
    opt_batch: int = 64,
    workspace_bytes: int = 1 << 30,
) -> Path | None:
    """Build (or reuse) a TensorRT engine for an exported ONNX model.

    Args:
        onnx_path: the FP32 ONNX model (see :func:`mlray.export.onnx.export_onnx`).
        cache_dir: root of the engine cache.
        model_version: names the model version (first level of the cache key).
        precision: ``"fp16"``, or ``"int8"`` (FP16 kernels allowed as well, INT8 where it is
            faster).
        calibration: float32 ``[N, F]`` training rows; needed for ``"int8"`` unless a
            calibration cache for this model already sits in the cache folder.
        max_batch: largest batch the engine accepts.
        opt_batch: the batch size TensorRT tunes its kernels for.
        workspace_bytes: builder scratch memory.

    Returns:
        The engine file, or None when TensorRT or a GPU is missing (logged, not raised).

    Raises:
        ConfigError: unknown precision, or INT8 asked without calibration data or cache.
        ValidationFailed: TensorRT could not parse the model or build the engine.
    """
    if precision not in ("fp16", "int8"):
        raise ConfigError(f"Unknown TensorRT precision {precision!r}; use 'fp16' or 'int8'.")
    if not tensorrt_available():
        log.warning(SKIP_MESSAGE)
        return None
    import tensorrt as trt

    onnx_path = Path(onnx_path)
    folder = engine_dir(cache_dir, model_version, gpu_name(), trt.__version__)
    engine_path = folder / f"model-{_file_hash(onnx_path)}.{precision}.engine"
    if engine_path.exists():
        log.info("TensorRT engine cache hit: %s", engine_path)
        return engine_path
    folder.mkdir(parents=True, exist_ok=True)
    calib_cache = folder / f"model-{_file_hash(onnx_path)}.int8.calib"
    if precision == "int8" and calibration is None and not calib_cache.exists():
        raise ConfigError(
            "An INT8 TensorRT engine needs calibration rows "
            f"(or a calibration cache at {calib_cache})."
        )
    serialized = _build(
        trt, onnx_path, precision, calibration, calib_cache, max_batch, opt_batch, workspace_bytes
    )
    tmp = engine_path.with_suffix(".tmp")
    tmp.write_bytes(serialized)
    tmp.replace(engine_path)  # atomic: a concurrent reader never sees half an engine
    log.info("TensorRT %s engine built: %s", precision, engine_path)
    return engine_path


def _build(
    trt: Any,
    onnx_path: Path,
    precision: str,
    calibration: np.ndarray | None,
    calib_cache: Path,
    max_batch: int,
    opt_batch: int,
    workspace_bytes: int,
) -> bytes:
    meta = read_onnx_metadata(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValidationFailed(
            f"TensorRT cannot parse {onnx_path}: {errors}", report={"errors": errors}
        )
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    width = len(meta.feature_names)
    profile = builder.create_optimization_profile()
    profile.set_shape(
        meta.input_name, (1, width), (min(opt_batch, max_batch), width), (max_batch, width)
    )
    config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_calibration_profile(profile)
        config.int8_calibrator = make_calibrator(trt, calibration, width, calib_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ValidationFailed(
            f"TensorRT could not build a {precision} engine from {onnx_path}; "
            f"see the TensorRT log above."
        )
    return bytes(serialized)


def make_calibrator(
    trt: Any, calibration: np.ndarray | None, width: int, cache_path: Path, batch_size: int = 256
) -> Any:
    """An entropy calibrator over ``calibration`` that reads and writes ``cache_path``.

    With a cache present TensorRT reads the scales from it and asks for no batches.
    """
    if calibration is not None and (calibration.ndim != 2 or calibration.shape[1] != width):
        raise SchemaError(
            f"TensorRT calibration data must be (rows, {width}); got {calibration.shape}."
        )
    import torch

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            rows = np.empty((0, width), np.float32) if calibration is None else calibration
            self._size = max(1, min(batch_size, len(rows)))  # a small sample still makes one batch
            self._batches: Iterator[np.ndarray] = (
                np.ascontiguousarray(rows[i : i + self._size], dtype=np.float32)
                for i in range(0, len(rows) - self._size + 1, self._size)
            )
            self._device = torch.empty((self._size, width), dtype=torch.float32, device="cuda")

        def get_batch_size(self) -> int:
            return self._size

        def get_batch(self, names: list[str]) -> list[int] | None:
            chunk = next(self._batches, None)
            if chunk is None:
                return None
            self._device.copy_(torch.from_numpy(chunk))
            torch.cuda.synchronize()
            return [int(self._device.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.exists() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_path.write_bytes(bytes(cache))

    return _Calibrator()
