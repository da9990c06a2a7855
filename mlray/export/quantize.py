"""INT8 static quantization with ONNX Runtime, and the accuracy gate that decides if it is kept.

Only the matrix products (Gemm/MatMul) and the ReLUs between them are
quantized: they hold nearly all the arithmetic, and with the ReLU in the set
ONNX Runtime folds it into the preceding product's quantized output instead of
a dequantize/ReLU/quantize round trip. The input preprocessing (null filling,
scaling, embedding lookups) stays float32, where it is exact and cheap.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlray.errors import ConfigError, SchemaError
from mlray.metrics import roc_auc
from mlray.runtimes.onnx_metadata import INPUT_NAME, OUTPUT_NAME, read_onnx_metadata

log = logging.getLogger(__name__)

QUANTIZED_OPS = ["Gemm", "MatMul", "Relu"]
QuantFormatName = Literal["qoperator", "qdq"]


@dataclass(frozen=True)
class Int8Report:
    """The INT8 accuracy gate's verdict on the test slice."""

    kept: bool
    auc_fp32: float
    auc_int8: float
    max_auc_drop: float = 0.005
    rows: int = 0

    @property
    def auc_drop(self) -> float:
        return self.auc_fp32 - self.auc_int8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"auc_drop": self.auc_drop}

    @property
    def verdict(self) -> str:
        """``kept`` or ``rejected``."""
        return "kept" if self.kept else "rejected"

    def reason(self) -> str:
        """The verdict in words, with both AUCs and the limit."""
        compared = "within" if self.kept else "over"
        return (
            f"INT8 {self.verdict}: test AUC {self.auc_int8:.5f} vs FP32 {self.auc_fp32:.5f} "
            f"on {self.rows} rows, a drop of {self.auc_drop:.5f}, {compared} the limit "
            f"{self.max_auc_drop}"
        )


class _Batches:
    """ONNX Runtime's CalibrationDataReader over a feature matrix."""

    def __init__(self, x: np.ndarray, batch_size: int) -> None:
        self._it: Iterator[np.ndarray] = (
            x[i : i + batch_size] for i in range(0, len(x), batch_size)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        chunk = next(self._it, None)
        return None if chunk is None else {INPUT_NAME: chunk}


def quantize_int8(
    onnx_path: str | Path,
    calibration: np.ndarray,
    out_path: str | Path,
    *,
    quant_format: QuantFormatName = "qdq",
    per_channel: bool = False,
    max_rows: int = 4096,
    seed: int = 0,
) -> Path:
    """Quantize an FP32 ONNX model to INT8 with static (calibrated) ranges.

    Activations are uint8 and weights int8 (the u8s8 kernels x86 VNNI/AMX run
    fastest); ranges are min/max over the calibration rows.

    Args:
        onnx_path: the FP32 model from :func:`mlray.export.onnx.export_onnx`.
        calibration: float32 ``[N, F]`` rows of training data; a random
            ``max_rows`` of them are used.
        out_path: where to write the INT8 model (its metadata is copied over).
        quant_format: ``"qdq"`` (QuantizeLinear/DequantizeLinear pairs, which ONNX
            Runtime fuses into integer kernels, and which TensorRT can also read) or
            ``"qoperator"`` (QGemm/QLinear ops). Both ran equally fast here
            (benchmarks/runtimes.py times both); QDQ is ONNX Runtime's recommended format.
        per_channel: one weight scale per output channel.
        max_rows: calibration rows used at most.
        seed: picks the calibration rows.

    Returns:
        The written path.

    Raises:
        SchemaError: ``calibration`` does not match the model's input.
        ConfigError: unknown ``quant_format``.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    formats = {"qoperator": QuantFormat.QOperator, "qdq": QuantFormat.QDQ}
    if quant_format not in formats:
        raise ConfigError(
            f"Unknown INT8 quant_format {quant_format!r}; use one of {sorted(formats)}."
        )
    meta = read_onnx_metadata(onnx_path)
    x = _calibration_rows(calibration, meta.feature_names, max_rows, seed)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlray-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and graph cleanup first, as ONNX Runtime advises,
        # so every Gemm is recognised.
        quant_pre_process(str(onnx_path), str(prepared))
        quantize_static(
            str(prepared),
            str(out_path),
            _Batches(x, 256),
            quant_format=formats[quant_format],
            op_types_to_quantize=QUANTIZED_OPS,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    _copy_metadata(
        Path(onnx_path),
        out_path,
        {
            "mlray.quantization": f"int8 static {quant_format} "
            f"per_channel={per_channel} rows={len(x)}"
        },
    )
    return out_path


def _calibration_rows(
    calibration: np.ndarray, names: list[str], max_rows: int, seed: int
) -> np.ndarray:
    if (
        not isinstance(calibration, np.ndarray)
        or calibration.ndim != 2
        or calibration.shape[1] != len(names)
        or len(calibration) == 0
    ):
        got = (
            calibration.shape if isinstance(calibration, np.ndarray) else type(calibration).__name__
        )
        raise SchemaError(
            f"Calibration data must be a non-empty float matrix (rows, {len(names)}) with columns "
            f"{', '.join(names)}; got {got}."
        )
    x = calibration.astype(np.float32, copy=False)
    if len(x) > max_rows:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), max_rows, replace=False))]
    return np.ascontiguousarray(x)


def _copy_metadata(src: Path, dst: Path, extra: dict[str, str]) -> None:
    import onnx

    props = {
        p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props
    } | extra
    model = onnx.load(str(dst))
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(dst))


def check_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    x_test: np.ndarray,
    y_test: np.ndarray,
    max_auc_drop: float = 0.005,
    *,
    delete_rejected: bool = True,
) -> Int8Report:
    """Score both models on the test slice and keep the INT8 one only if its AUC held up.

    Args:
        fp32_path: the FP32 ONNX model.
        int8_path: the INT8 ONNX model from :func:`quantize_int8`.
        x_test: float32 ``[N, F]`` test features.
        y_test: ``[N]`` click labels.
        max_auc_drop: the largest AUC loss accepted.
        delete_rejected: remove ``int8_path`` when it is not kept, so no one serves it by mistake.

    Returns:
        The report; ``kept`` is ``auc_fp32 - auc_int8 <= max_auc_drop``.

    Raises:
        ConfigError: ``max_auc_drop`` is negative.
        SchemaError: the labels hold a single class (no AUC to compare), or their
            number differs from the rows'.
    """
    if max_auc_drop < 0:
        raise ConfigError(f"max_auc_drop must be >= 0, got {max_auc_drop}.")
    auc_fp32 = roc_auc(y_test, _score(fp32_path, x_test))
    if np.isnan(auc_fp32):
        positives = int((np.asarray(y_test) > 0.5).sum())
        raise SchemaError(
            "The INT8 gate compares AUCs and needs both classes in the test labels; got "
            f"{positives} positives and {len(y_test) - positives} negatives."
        )
    auc_int8 = roc_auc(y_test, _score(int8_path, x_test))
    kept = auc_fp32 - auc_int8 <= max_auc_drop
    report = Int8Report(
        kept=kept, auc_fp32=auc_fp32, auc_int8=auc_int8, max_auc_drop=max_auc_drop, rows=len(x_test)
    )
    log.info(
        "INT8 %s: AUC fp32 %.5f, int8 %.5f (drop %.5f, limit %.5f)",
        "kept" if kept else "rejected",
        auc_fp32,
        auc_int8,
        report.auc_drop,
        max_auc_drop,
    )
    if not kept and delete_rejected:
        Path(int8_path).unlink(missing_ok=True)
    return report


def _score(path: str | Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(x, dtype=np.float32)
    return (
        np.concatenate(
            [
                session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + 8192]})[0]
                for i in range(0, len(x), 8192)
            ]
        )
        if len(x)
        else np.empty(0, np.float32)
    )
