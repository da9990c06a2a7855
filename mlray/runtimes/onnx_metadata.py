"""The metadata an exported ONNX model carries, and how to read it back.

Export writes these ``metadata_props``; runtimes read them so a bare ``.onnx``
file is enough to know the input feature order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlray.errors import NotFoundError, SchemaError

INPUT_NAME = "features"
OUTPUT_NAME = "probability"
META_FEATURE_NAMES = "mlray.feature_names"
META_SPEC = "mlray.spec"
META_INPUT = "mlray.input"
META_OUTPUT = "mlray.output"


@dataclass(frozen=True)
class OnnxMetadata:
    """What :func:`mlray.export.onnx.export_onnx` recorded in the model."""

    feature_names: list[str]
    spec: dict[str, Any]
    input_name: str
    output_name: str


def read_onnx_metadata(path: str | Path) -> OnnxMetadata:
    """Read the feature order and spec from an exported ONNX model.

    Raises:
        NotFoundError: the file does not exist.
        SchemaError: the model was not exported by mlray (no feature order recorded).
    """
    import onnx

    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"ONNX model {path} not found.")
    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    if META_FEATURE_NAMES not in props:
        raise SchemaError(
            f"ONNX model {path} has no {META_FEATURE_NAMES!r} metadata: export it with "
            f"mlray.export.export_onnx so the input feature order is recorded."
        )
    try:
        names = json.loads(props[META_FEATURE_NAMES])
        spec = json.loads(props.get(META_SPEC, "{}"))
    except ValueError as e:
        raise SchemaError(
            f"ONNX model {path} has unreadable mlray metadata ({e}); re-export it."
        ) from e
    return OnnxMetadata(
        feature_names=[str(n) for n in names],
        spec=spec,
        input_name=props.get(META_INPUT, INPUT_NAME),
        output_name=props.get(META_OUTPUT, OUTPUT_NAME),
    )
