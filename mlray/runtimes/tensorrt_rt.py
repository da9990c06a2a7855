"""TensorRT: an FP16 or INT8 engine on an NVIDIA GPU, built from the ONNX file and cached.

Device buffers are PyTorch CUDA tensors (torch is already a dependency), sized
once for the largest batch; a call copies the rows in, runs the engine on
PyTorch's current stream and copies the probabilities out.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from mlray.errors import BackendUnavailable, ConfigError
from mlray.runtimes.artifact import ModelArtifact
from mlray.runtimes.onnx_metadata import read_onnx_metadata
from mlray.runtimes.protocol import check_batch
from mlray.runtimes.tensorrt_engine import SKIP_MESSAGE, EnginePrecision, build_engine

log = logging.getLogger(__name__)


class TensorRTRuntime:
    """A model served by a TensorRT engine.

    Args:
        precision: ``"fp16"`` or ``"int8"`` (any other string is a ConfigError).
        cache_dir: engine cache root; default ``<artifact dir>/tensorrt``.
        calibration: float32 training rows, needed to build an INT8 engine the first time.
        max_batch: the largest batch one engine call takes; bigger inputs are split.
    """

    def __init__(
        self,
        precision: str = "fp16",
        cache_dir: str | Path | None = None,
        calibration: np.ndarray | None = None,
        max_batch: int = 4096,
    ) -> None:
        if precision not in ("fp16", "int8"):
            raise ConfigError(f"TensorRT serves precision 'fp16' or 'int8', not {precision!r}.")
        self.precision: EnginePrecision = "int8" if precision == "int8" else "fp16"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.calibration = calibration
        self.max_batch = max_batch
        self.name = f"tensorrt-cuda-{precision}"
        self.feature_names: list[str] = []
        self.engine_path: Path | None = None
        self._context: Any = None
        self._engine: Any = None
        self._input = self._output = ""
        self._in: Any = None
        self._out: Any = None

    def load(self, artifact: ModelArtifact) -> None:
        """Build or reuse the cached engine, then allocate the I/O buffers.

        Raises:
            BackendUnavailable: no GPU or no ``tensorrt`` package here.
            NotFoundError: the artifact has no ONNX model.
        """
        onnx_path = artifact.require("onnx")
        cache = self.cache_dir or (artifact.root or onnx_path.parent) / "tensorrt"
        engine_path = build_engine(
            onnx_path,
            cache,
            artifact.model_version,
            precision=self.precision,
            calibration=self.calibration,
            max_batch=self.max_batch,
        )
        if engine_path is None:
            raise BackendUnavailable(
                f"{SKIP_MESSAGE}; serve with runtime='onnxruntime' (or 'auto') on this machine."
            )
        import tensorrt as trt
        import torch

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise BackendUnavailable(
                f"TensorRT could not load engine {engine_path}; delete it to rebuild."
            )
        self._context = self._engine.create_execution_context()
        meta = read_onnx_metadata(onnx_path)
        self._input, self._output = meta.input_name, meta.output_name
        width = len(meta.feature_names)
        self._in = torch.empty((self.max_batch, width), dtype=torch.float32, device="cuda")
        out_dtype = (
            torch.float16
            if self._engine.get_tensor_dtype(self._output) == trt.DataType.HALF
            else torch.float32
        )
        self._out = torch.empty((self.max_batch,), dtype=out_dtype, device="cuda")
        self._context.set_tensor_address(self._input, int(self._in.data_ptr()))
        self._context.set_tensor_address(self._output, int(self._out.data_ptr()))
        self.feature_names = meta.feature_names
        self.engine_path = engine_path
        log.info("Loaded TensorRT %s engine %s", self.precision, engine_path)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Click probabilities, float32 ``[batch]``.

        Raises:
            SchemaError: wrong shape or dtype.
        """
        if self._context is None:
            raise ConfigError(f"{self.name}: call load(artifact) before predict().")
        x = check_batch(batch, self.feature_names)
        if len(x) <= self.max_batch:
            return self._run(x)
        return np.concatenate(
            [self._run(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
        )

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        n = len(x)
        if n == 0:
            return np.empty(0, np.float32)
        self._in[:n].copy_(torch.from_numpy(x))
        self._context.set_input_shape(self._input, (n, x.shape[1]))
        stream = torch.cuda.current_stream()
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise BackendUnavailable(
                f"TensorRT engine {self.engine_path} failed to run a batch of {n}."
            )
        # The copy back is queued on the same stream, so it waits for the engine.
        return self._out[:n].float().cpu().numpy()
