"""Export one model version to a complete artifact directory, checks included.

The steps read in order: ONNX export, parity with PyTorch, INT8
quantization and its accuracy gate, the PyTorch program, the manifest.
Registration logs the directory as the model version's artifacts; serving
loads it with :func:`mlray.runtimes.load_runtime`.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlray.errors import SchemaError
from mlray.export.onnx import check_parity, export_onnx, require_spec
from mlray.export.quantize import Int8Report, QuantFormatName, check_int8, quantize_int8
from mlray.runtimes.artifact import ONNX_FP32, ONNX_INT8, TORCH_PROGRAM, ModelArtifact
from mlray.runtimes.model_spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote and measured."""

    artifact: ModelArtifact
    parity_max_abs_diff: float
    int8: Int8Report | None
    seconds: float


def export_model(
    model: Any,
    spec: ModelSpec,
    out_dir: str | Path,
    *,
    x_test: np.ndarray,
    y_test: np.ndarray | None = None,
    calibration: np.ndarray | None = None,
    model_version: str = "unversioned",
    max_auc_drop: float = 0.005,
    parity_atol: float = 1e-5,
    quant_format: QuantFormatName = "qdq",
    include_torch: bool = True,
) -> ExportResult:
    """Write ONNX (FP32), INT8 when it passes the gate, the PyTorch program and ``artifact.json``.

    Args:
        model: the trained ``torch.nn.Module`` (training contract: ``[B, F] -> [B]``).
        spec: its spec; ``spec.feature_names`` is the input feature order.
        out_dir: the artifact directory (created).
        x_test: float32 ``[N, F]`` features of the test slice (parity and AUC).
        y_test: labels of the test slice; without them no INT8 model is made.
        calibration: float32 training rows for INT8 calibration; without them no INT8 model
            is made.
        model_version: e.g. ``"ctr_model/3"``, recorded in the manifest and keying TensorRT's
            cache.
        max_auc_drop: the INT8 model is kept only if its AUC is at most this much below
            FP32's.
        parity_atol: largest accepted |ONNX - PyTorch| on the test slice.
        quant_format: ONNX Runtime INT8 format (see :func:`mlray.export.quantize.quantize_int8`).
        include_torch: also save a ``torch.export`` program for the PyTorch runtime.

    Returns:
        The artifact and the checks' results.

    Raises:
        ConfigError: ``spec`` is not a ModelSpec.
        ValidationFailed: ONNX and PyTorch disagree beyond ``parity_atol``.
        SchemaError: ``x_test``/``calibration`` do not match the feature order.
    """
    started = time.perf_counter()
    spec = require_spec(spec)
    names = spec.feature_names
    _check_matrix(x_test, names, "x_test")
    if calibration is not None:
        _check_matrix(calibration, names, "calibration")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = export_onnx(model, spec, out / ONNX_FP32)
    parity = check_parity(model, onnx_path, x_test, atol=parity_atol)
    report = None
    int8_path: Path | None = None
    if calibration is not None and y_test is not None:
        int8_path = quantize_int8(
            onnx_path, calibration, out / ONNX_INT8, quant_format=quant_format
        )
        report = check_int8(onnx_path, int8_path, x_test, y_test, max_auc_drop)
        int8_path = int8_path if report.kept else None
    else:
        log.info("No calibration data or test labels: INT8 export skipped for %s", model_version)
    torch_path = (
        save_torch_program(model, len(names), out / TORCH_PROGRAM) if include_torch else None
    )
    checks = {
        "parity_max_abs_diff": parity,
        "parity_atol": parity_atol,
        "parity_rows": len(x_test),
        "int8": report.to_dict() if report else None,
        "quant_format": quant_format if report else None,
    }
    artifact = ModelArtifact(
        feature_names=names,
        onnx_path=onnx_path,
        int8_path=int8_path,
        torch_path=torch_path,
        model_version=model_version,
        spec=spec.to_dict(),
        checks=checks,
        root=out,
    )
    artifact.write_manifest(out)
    return ExportResult(
        artifact=artifact,
        parity_max_abs_diff=parity,
        int8=report,
        seconds=time.perf_counter() - started,
    )


def save_torch_program(model: Any, num_features: int, path: str | Path) -> Path:
    """Save ``model`` as a ``torch.export`` program with a dynamic batch axis (``.pt2``).

    Loading it needs no Python class of the model: ``torch.export.load(path).module()``.
    """
    import torch

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    sample = torch.zeros((2, num_features), dtype=torch.float32, device=device)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # torch.export prints advisory notes about dynamic shapes
            program = torch.export.export(
                model, (sample,), dynamic_shapes=({0: torch.export.Dim("batch")},)
            )
    finally:
        model.train(was_training)
    torch.export.save(program, str(path))
    return Path(path)


def _check_matrix(x: np.ndarray, names: list[str], what: str) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != len(names) or len(x) == 0:
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        raise SchemaError(
            f"{what} must be a non-empty matrix (rows, {len(names)}) with columns "
            f"{', '.join(names)}; got {got}."
        )
