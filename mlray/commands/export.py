"""CLI: ``mlray export inspect`` and ``mlray export engine``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import typer

from mlray.cli_support import handle_errors, print_rows


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the ``export`` command group to the ``mlray`` app."""

    export_app = typer.Typer(
        help="Exported model artifacts: inspect them, build TensorRT engines.", no_args_is_help=True
    )
    app.add_typer(export_app, name="export")

    @export_app.command("inspect")
    @handle_errors
    def inspect_cmd(
        artifact: Path = typer.Argument(
            ..., help="Artifact directory (artifact.json) or .onnx file."
        ),
        runtime: str = typer.Option("auto", help="auto, onnxruntime, tensorrt or torch."),
        precision: str = typer.Option("auto", help="auto, fp32, fp16 or int8."),
        device: str = typer.Option("auto", help="auto, cpu or cuda."),
    ) -> None:
        """Show an artifact's checks and load it the way serving would, timing one batch-1 call."""
        from mlray.runtimes import as_artifact, load_runtime

        art = as_artifact(artifact)
        rt = load_runtime(art, runtime, precision, device=device)
        print_rows(f"model {art.model_version}", summary_rows(art.describe()))
        x = np.zeros((1, art.num_features), np.float32)
        rt.predict(x)  # the first call allocates; time the second
        t0 = time.perf_counter()
        rt.predict(x)
        typer.echo(f"served by {rt.name}; batch-1 call {1e3 * (time.perf_counter() - t0):.3f} ms")

    @export_app.command("engine")
    @handle_errors
    def engine_cmd(
        artifact: Path = typer.Argument(
            ..., help="Artifact directory (artifact.json) or .onnx file."
        ),
        precision: str = typer.Option(
            "fp16", help="fp16 or int8 (int8 needs a calibration cache)."
        ),
        cache_dir: Path = typer.Option(None, help="Engine cache (default: <artifact>/tensorrt)."),
        max_batch: int = typer.Option(4096, min=1),
    ) -> None:
        """Build (or find cached) this GPU's TensorRT engine; skipped where TensorRT is absent."""
        from mlray.runtimes import as_artifact
        from mlray.runtimes.tensorrt_engine import SKIP_MESSAGE, build_engine

        art = as_artifact(artifact)
        onnx_path = art.require("onnx")
        cache = cache_dir or (art.root or onnx_path.parent) / "tensorrt"
        path = build_engine(
            onnx_path,
            cache,
            art.model_version,
            precision=precision,  # type: ignore[arg-type]
            max_batch=max_batch,
        )
        typer.echo(f"engine: {path}" if path is not None else f"no engine built ({SKIP_MESSAGE})")


def summary_rows(described: dict[str, Any]) -> list[dict[str, Any]]:
    """Key/value rows of an artifact description, with the INT8 gate spelled out."""
    checks = described.get("checks") or {}
    int8 = checks.get("int8") or {}
    rows: list[dict[str, Any]] = [
        {"field": "feature order", "value": ", ".join(described["feature_names"])},
        {"field": "onnx", "value": described.get("onnx_path")},
        {"field": "int8", "value": described.get("int8_path") or "not kept"},
        {"field": "torch program", "value": described.get("torch_path")},
        {"field": "parity |onnx - torch| max", "value": checks.get("parity_max_abs_diff")},
    ]
    if int8:
        rows.append(
            {
                "field": "AUC fp32 / int8 (drop, limit)",
                "value": f"{int8['auc_fp32']:.5f} / {int8['auc_int8']:.5f} "
                f"({int8['auc_drop']:+.5f}, {int8['max_auc_drop']})",
            }
        )
    return rows
