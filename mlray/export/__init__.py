"""Model export: ONNX with the feature order in its metadata, INT8 behind an accuracy gate.

``export_model`` writes a complete artifact directory for one model version;
``export_onnx``, ``quantize_int8`` and ``check_int8`` are its steps. All take
the model's :class:`~mlray.runtimes.model_spec.ModelSpec`. TensorRT engines
are the runtime's business: :func:`mlray.runtimes.tensorrt_engine.build_engine`.
"""

from mlray.export.artifacts import ExportResult, export_model
from mlray.export.onnx import check_parity, export_onnx
from mlray.export.quantize import Int8Report, check_int8, quantize_int8

__all__ = [
    "ExportResult",
    "Int8Report",
    "check_int8",
    "check_parity",
    "export_model",
    "export_onnx",
    "quantize_int8",
]
