"""The one prepared GPU check: engines built, parity with ONNX Runtime on CPU, batch timings.

Run on a machine with an NVIDIA GPU. It trains the production CTR model
(hidden 256-128, on tests/synthetic_ctr.py's clicks) and exports it through
the production path, then for every GPU runtime that machine offers
(PyTorch CUDA always; ONNX Runtime's CUDA provider with onnxruntime-gpu;
TensorRT FP16 and INT8 with the ``tensorrt`` package) it records the
load/build time, the largest difference from ONNX Runtime FP32 on CPU over
the test slice, the AUC, and p50/p99 latency and rows/s at batch 1, 64 and
1024. ONNX Runtime on the same machine's CPU is timed alongside, as the
baseline. A runtime that cannot run there is listed with the reason.

    python benchmarks/gpu_check.py --out results/gpu_check.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
# The shared timing loop of benchmarks/runtimes.py (which also puts tests/ on the path).
from runtimes import measure, summarize  # noqa: E402
from synthetic_ctr import train_ctr  # noqa: E402

from mlray.export.artifacts import export_model  # noqa: E402
from mlray.metrics import roc_auc  # noqa: E402
from mlray.runtimes import ModelRuntime, load_runtime  # noqa: E402

BATCHES = (1, 64, 1024)
BASELINE = "onnxruntime-cpu-fp32"


def probe() -> dict[str, Any]:
    """What this machine offers: GPU, CUDA, TensorRT, ONNX Runtime providers."""
    import onnxruntime as ort
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "onnxruntime": ort.__version__,
        "ort_providers": ort.get_available_providers(),
        "tensorrt_installed": importlib.util.find_spec("tensorrt") is not None,
        "cpu_cores": os.cpu_count(),
    }
    if torch.cuda.is_available():
        info |= {"gpu": torch.cuda.get_device_name(0), "torch_cuda": torch.version.cuda}
    if info["tensorrt_installed"]:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    return info


def load_all(
    artifact_dir: Path, calibration: np.ndarray, cache: Path
) -> tuple[dict[str, ModelRuntime], dict]:
    """Every runtime worth timing here, with load (engine build) seconds or why it is absent."""
    wanted: list[tuple[str, dict[str, Any]]] = [
        (BASELINE, {"runtime": "onnxruntime", "precision": "fp32", "device": "cpu"}),
        ("onnxruntime-cpu-int8", {"runtime": "onnxruntime", "precision": "int8", "device": "cpu"}),
        ("torch-cuda-fp32", {"runtime": "torch", "device": "cuda"}),
        (
            "onnxruntime-cuda-fp32",
            {"runtime": "onnxruntime", "precision": "fp32", "device": "cuda"},
        ),
        (
            "tensorrt-cuda-fp16",
            {"runtime": "tensorrt", "precision": "fp16", "engine_cache_dir": cache},
        ),
        (
            "tensorrt-cuda-int8",
            {
                "runtime": "tensorrt",
                "precision": "int8",
                "engine_cache_dir": cache,
                "calibration": calibration,
            },
        ),
    ]
    runtimes, notes = {}, {}
    for name, kwargs in wanted:
        t0 = time.perf_counter()
        try:
            runtimes[name] = load_runtime(artifact_dir, **kwargs)
            notes[name] = {"load_seconds": time.perf_counter() - t0}
        except Exception as e:  # noqa: BLE001 - record why a runtime is missing here and go on
            notes[name] = {"skipped": f"{type(e).__name__}: {e}"}
    return runtimes, notes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "gpu_check.json"
    )
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    report: dict[str, Any] = {"benchmark": "gpu_check", "baseline": BASELINE, "machine": probe()}
    print(json.dumps(report["machine"], indent=2), flush=True)
    tr = train_ctr(40_000, hidden=(256, 128), steps=400, batch_size=512, threads=None)
    with tempfile.TemporaryDirectory(prefix="mlray-gpu-") as tmp:
        exported = export_model(
            tr.model,
            tr.spec,
            Path(tmp) / "artifact",
            x_test=tr.x_test,
            y_test=tr.y_test,
            calibration=tr.x_train,
            model_version="gpu-check/1",
        )
        runtimes, notes = load_all(exported.artifact.root, tr.x_train, Path(tmp) / "engines")
        reference = runtimes[BASELINE].predict(tr.x_test)
        for name, rt in list(runtimes.items()):
            try:
                out = rt.predict(tr.x_test)
            except Exception as e:  # noqa: BLE001 - a runtime that fails here is reported, the others still run
                notes[name] = {"failed": f"{type(e).__name__}: {e}"}
                del runtimes[name]
                continue
            notes[name] |= {
                "max_abs_diff_vs_ort_cpu": float(np.abs(out - reference).max()),
                "auc": roc_auc(tr.y_test, out),
            }
        aucs = {n: notes[n]["auc"] for n in runtimes}
        samples = measure(
            runtimes, np.resize(tr.x_test, (max(BATCHES), tr.x_test.shape[1])), args.rounds, BATCHES
        )
    report |= {"runtimes": notes, "rows": summarize(samples, aucs, BASELINE)}
    print(
        f"\n{'runtime':24s} {'batch':>5s} {'p50 ms':>8s} {'p99 ms':>8s} {'rows/s':>12s} "
        f"{'max|diff|':>10s} {'AUC':>7s}"
    )
    for r in sorted(report["rows"], key=lambda r: (r["batch"], r["runtime"])):
        diff = notes[r["runtime"]]["max_abs_diff_vs_ort_cpu"]
        print(
            f"{r['runtime']:24s} {r['batch']:5d} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
            f"{r['rows_per_s']:12,.0f} {diff:10.2e} {r['auc']:7.4f}"
        )
    for name, note in notes.items():
        status = note.get("skipped") or note.get("failed") or f"load {note['load_seconds']:.2f} s"
        print(f"{name}: {status}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
