"""ONNX Runtime: FP32 or INT8 on CPU, FP32 on the CUDA execution provider."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from mlray.errors import ConfigError
from mlray.runtimes.artifact import ModelArtifact
from mlray.runtimes.gpu import gpu_available
from mlray.runtimes.onnx_metadata import read_onnx_metadata
from mlray.runtimes.protocol import check_batch

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def cuda_provider_available() -> bool:
    """True when this onnxruntime build has the CUDA execution provider and a GPU is visible."""
    import onnxruntime as ort

    # The provider list says what onnxruntime was built with, not that a GPU is there.
    return CUDA_PROVIDER in ort.get_available_providers() and gpu_available()


class OnnxRuntimeRuntime:
    """A model served by an ONNX Runtime ``InferenceSession``.

    Args:
        precision: ``"fp32"`` (``model.onnx``) or ``"int8"`` (``model.int8.onnx``, CPU only).
        device: ``"cpu"`` or ``"cuda"`` (needs the ``onnxruntime-gpu`` package).
            Other strings, or INT8 on CUDA, are a ConfigError.
        intra_op_threads: threads per operator. One is the fastest for small
            batches on few cores and keeps replicas from fighting over cores
            (benchmarks/runtimes.py); raise it for large offline batches.
    """

    def __init__(
        self,
        precision: str = "fp32",
        device: str = "cpu",
        intra_op_threads: int = 1,
    ) -> None:
        if precision not in ("fp32", "int8"):
            raise ConfigError(
                f"ONNX Runtime serves precision 'fp32' or 'int8', not {precision!r} "
                f"(FP16 is TensorRT's: runtime='tensorrt')."
            )
        if device not in ("cpu", "cuda"):
            raise ConfigError(f"Unknown ONNX Runtime device {device!r}; use 'cpu' or 'cuda'.")
        if precision == "int8" and device == "cuda":
            raise ConfigError(
                "The INT8 ONNX model is quantized for CPU kernels; on a GPU use runtime='tensorrt' "
                "with precision='int8', or precision='fp32'."
            )
        if intra_op_threads < 0:
            raise ConfigError(
                f"intra_op_threads must be >= 0 (0 = one per core), got {intra_op_threads}."
            )
        self.precision = precision
        self.device = device
        self.intra_op_threads = intra_op_threads
        self.name = f"onnxruntime-{device}-{precision}"
        self.feature_names: list[str] = []
        self._session: ort.InferenceSession | None = None
        self._input = ""
        self._outputs: list[str] = []

    def load(self, artifact: ModelArtifact) -> None:
        """Open an inference session on the artifact's FP32 or INT8 ONNX file.

        Raises:
            NotFoundError: the artifact lacks that file (e.g. INT8 was rejected).
            ConfigError: ``device='cuda'`` but this onnxruntime has no CUDA provider.
        """
        import onnxruntime as ort

        path = artifact.require("int8" if self.precision == "int8" else "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [CPU_PROVIDER]
        if self.device == "cuda":
            if CUDA_PROVIDER not in ort.get_available_providers():
                raise ConfigError(
                    f"device='cuda' needs the onnxruntime-gpu package; this onnxruntime "
                    f"{ort.__version__} offers {ort.get_available_providers()}."
                )
            providers = [CUDA_PROVIDER, CPU_PROVIDER]
        session = ort.InferenceSession(str(path), options, providers=providers)
        self._session = session
        if self.device == "cuda" and CUDA_PROVIDER not in session.get_providers():
            raise ConfigError(
                f"ONNX Runtime could not start the CUDA provider for {path} (CUDA/cuDNN libraries "
                f"missing or mismatched); use device='cpu'."
            )
        meta = read_onnx_metadata(path)
        self._input, self._outputs = meta.input_name, [meta.output_name]
        self.feature_names = meta.feature_names
        log.info("Loaded %s (%s) with %s", path, artifact.model_version, session.get_providers())

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Click probabilities, float32 ``[batch]``.

        Raises:
            SchemaError: wrong shape or dtype (see :func:`mlray.runtimes.protocol.check_batch`).
        """
        if self._session is None:
            raise ConfigError(f"{self.name}: call load(artifact) before predict().")
        x = check_batch(batch, self.feature_names)
        if len(x) == 0:
            return np.empty(0, np.float32)
        return self._session.run(self._outputs, {self._input: x})[0]
