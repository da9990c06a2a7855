"""Export a trained CTR model to ONNX, with its feature order and spec in the file.

The model keeps the training contract: ``forward(x: float32[B, F]) ->
float32[B]`` click probabilities, with normalization and null filling folded
in as buffers, so the exported graph needs nothing but the raw feature matrix.
The columns are those of its :class:`~mlray.runtimes.model_spec.ModelSpec`,
``spec.feature_names``, which the file records so a bare ``.onnx`` is enough
to serve (:func:`mlray.runtimes.onnx_metadata.read_onnx_metadata`).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlray.errors import ConfigError, SchemaError, ValidationFailed
from mlray.runtimes.model_spec import ModelSpec
from mlray.runtimes.onnx_metadata import (
    INPUT_NAME,
    META_FEATURE_NAMES,
    META_INPUT,
    META_OUTPUT,
    META_SPEC,
    OUTPUT_NAME,
)

OPSET = 17


def require_spec(spec: Any) -> ModelSpec:
    """Check that ``spec`` is a :class:`~mlray.runtimes.model_spec.ModelSpec`.

    Raises:
        ConfigError: anything else, with how to make one from a dict.
    """
    if not isinstance(spec, ModelSpec):
        raise ConfigError(
            f"Export needs the model's ModelSpec, got {type(spec).__name__}; "
            "load a saved one with ModelSpec.from_dict(...) or ModelSpec.from_json(...)."
        )
    return spec


def export_onnx(model: Any, spec: ModelSpec, path: str | Path, *, opset: int = OPSET) -> Path:
    """Export ``model`` to ONNX with a dynamic batch axis and mlray metadata.

    The graph has one input ``features`` (float32 ``[batch, F]``) and one
    output ``probability`` (float32 ``[batch]``). ``metadata_props`` record the
    feature order (``mlray.feature_names``, from ``spec.feature_names``) and
    the spec (``mlray.spec``, its :meth:`~ModelSpec.to_dict`).

    Args:
        model: a ``torch.nn.Module`` keeping the training contract.
        spec: the model's spec; its ``feature_names`` are the input columns.
        path: where to write the ``.onnx`` file (parent directories are created).
        opset: ONNX opset, at least 17.

    Returns:
        The written path.

    Raises:
        ConfigError: ``spec`` is not a ModelSpec, or opset below 17.
        SchemaError: the model does not accept ``[batch, F]`` or return ``[batch]``.
    """
    import onnx
    import torch

    spec = require_spec(spec)
    if opset < 17:
        raise ConfigError(f"ONNX opset {opset} is too old: use 17 or later.")
    names = spec.feature_names
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    sample = torch.zeros((2, len(names)), dtype=torch.float32, device=device)
    was_training = model.training
    model.eval()
    try:
        _check_contract(model, sample, names)
        _trace(model, sample, path, opset)
    finally:
        model.train(was_training)
    proto = onnx.load(str(path))
    _set_metadata(
        proto,
        {
            META_FEATURE_NAMES: json.dumps(names),
            META_SPEC: json.dumps(spec.to_dict(), sort_keys=True),
            META_INPUT: INPUT_NAME,
            META_OUTPUT: OUTPUT_NAME,
        },
    )
    proto.doc_string = (
        f"mlray CTR model; input '{INPUT_NAME}' float32[batch, {len(names)}]: {', '.join(names)}"
    )
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def _trace(model: Any, sample: Any, path: Path, opset: int) -> None:
    import torch

    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript (not a dependency); torch 2.13 still ships it and it makes plain Gemm graphs.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (sample,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )


def _check_contract(model: Any, sample: Any, names: list[str]) -> None:
    import torch

    try:
        with torch.no_grad():
            out = model(sample)
    except Exception as e:  # noqa: BLE001 - any failure here means the module breaks the contract
        raise SchemaError(
            f"Model does not accept float32 [batch, {len(names)}] "
            f"(features: {', '.join(names)}): {type(e).__name__}: {e}"
        ) from e
    if tuple(out.shape) != (sample.shape[0],):
        raise SchemaError(
            f"Model must return click probabilities of shape [batch]; for a batch of "
            f"{sample.shape[0]} it returned {tuple(out.shape)}. Squeeze the last dimension."
        )


def _set_metadata(proto: Any, props: dict[str, str]) -> None:
    keep = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def check_parity(model: Any, onnx_path: str | Path, x: np.ndarray, *, atol: float = 1e-5) -> float:
    """Compare the ONNX model (ONNX Runtime, CPU) with PyTorch on ``x``.

    Args:
        model: the PyTorch module the file was exported from.
        onnx_path: the exported file.
        x: float32 ``[N, F]`` rows to score with both.
        atol: the largest accepted absolute difference.

    Returns:
        The largest absolute difference between the two outputs.

    Raises:
        ValidationFailed: the difference exceeds ``atol``; the report holds both outputs' worst row.
    """
    import onnxruntime as ort
    import torch

    x = np.ascontiguousarray(x, dtype=np.float32)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(torch.from_numpy(x).to(device)).cpu().numpy()
    finally:
        model.train(was_training)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    worst = float(np.nanmax(diff)) if diff.size else 0.0
    if not np.isfinite(diff).all() or worst > atol:
        i = int(np.nanargmax(diff)) if diff.size and np.isfinite(diff).any() else 0
        raise ValidationFailed(
            f"ONNX model {onnx_path} differs from PyTorch by {worst:.3g} (> {atol}) on row {i}.",
            report={
                "max_abs_diff": worst,
                "row": i,
                "onnx": float(got[i]),
                "torch": float(expected[i]),
            },
        )
    return worst
