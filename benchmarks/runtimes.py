"""Model runtimes on CPU: PyTorch FP32 (baseline) vs ONNX Runtime FP32 and INT8.

Trains the production CTR model (:class:`mlray.training.model.CTRModel`,
hidden 256-128) on synthetic clicks (tests/synthetic_ctr.py, the model the
export and runtime tests use, at benchmark size), exports it with the production path
(:func:`mlray.export.export_model`), then times each runtime through the
:class:`~mlray.runtimes.ModelRuntime` interface at batch 1, 32 and 1024:
latency p50/p99 per call and throughput in rows/s, plus the AUC of each on
the test slice. Runtimes take turns in short rounds so that load from other
processes on a shared machine falls on all of them alike.

Targets: ONNX Runtime batch-1 p99 under 0.5 ms; INT8 at least 1.5x FP32
throughput at batch 1024 with an AUC drop of at most 0.005.

    .venv/bin/python benchmarks/runtimes.py [--threads 1] [--rounds 8]

Prints a table and writes benchmarks/results/runtimes.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synthetic_ctr import TrainedCTR, train_ctr  # noqa: E402 - the tests' model, at benchmark size

from mlray.export.artifacts import export_model  # noqa: E402
from mlray.export.quantize import quantize_int8  # noqa: E402
from mlray.metrics import roc_auc  # noqa: E402
from mlray.runtimes import ModelRuntime, load_runtime  # noqa: E402

BATCHES = (1, 32, 1024)
BASELINE = "torch-cpu-fp32"


def calls_per_round(batch: int) -> int:
    """About the same rows per round at every batch size, with at least 60 calls for a p99."""
    return 600 if batch <= 32 else max(60, 600 * 32 // batch)


def build_runtimes(
    tr: TrainedCTR, workdir: Path, threads: int
) -> tuple[dict[str, ModelRuntime], dict]:
    """Export the model and load every runtime under test.

    INT8 twice: as exported (QDQ), and quantized again in QOperator format.
    """
    result = export_model(
        tr.model,
        tr.spec,
        workdir / "artifact",
        x_test=tr.x_test,
        y_test=tr.y_test,
        calibration=tr.x_train,
        model_version="bench/1",
    )
    art = result.artifact
    if art.int8_path is None:
        raise SystemExit(f"INT8 model rejected by the accuracy gate: {result.int8}")
    qop = quantize_int8(
        art.onnx_path, tr.x_train, workdir / "model.int8.qop.onnx", quant_format="qoperator"
    )
    torch.set_num_threads(threads)
    runtimes = {
        BASELINE: load_runtime(replace(art, torch_module=tr.model), "torch", device="cpu"),
        "onnxruntime-cpu-fp32": load_runtime(
            art, "onnxruntime", "fp32", device="cpu", intra_op_threads=threads
        ),
        "onnxruntime-cpu-int8": load_runtime(
            art, "onnxruntime", "int8", device="cpu", intra_op_threads=threads
        ),
        "onnxruntime-cpu-int8-qoperator": load_runtime(
            replace(art, int8_path=qop),
            "onnxruntime",
            "int8",
            device="cpu",
            intra_op_threads=threads,
        ),
    }
    export = {
        "seconds": result.seconds,
        "parity_max_abs_diff": result.parity_max_abs_diff,
        "int8_gate": result.int8.to_dict() if result.int8 else None,
    }
    return runtimes, export


def time_calls(rt: ModelRuntime, x: np.ndarray, calls: int) -> np.ndarray:
    """Seconds per ``predict`` call, ``calls`` of them."""
    out = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter()
        rt.predict(x)
        out[i] = time.perf_counter() - t
    return out


def measure(
    runtimes: dict[str, ModelRuntime],
    x_pool: np.ndarray,
    rounds: int,
    batches: tuple[int, ...] = BATCHES,
) -> dict[str, dict[int, np.ndarray]]:
    """Per runtime and batch size, the call times from all rounds (runtimes take turns)."""
    samples: dict[str, dict[int, list[np.ndarray]]] = {
        n: {b: [] for b in batches} for n in runtimes
    }
    for b in batches:
        x = np.ascontiguousarray(x_pool[:b])
        for rt in runtimes.values():
            time_calls(rt, x, 50)  # warm-up: allocator, arenas, caches
        for _ in range(rounds):
            for name, rt in runtimes.items():
                gc.collect()
                samples[name][b].append(time_calls(rt, x, calls_per_round(b)))
    return {n: {b: np.concatenate(v) for b, v in per.items()} for n, per in samples.items()}


def summarize(
    samples: dict[str, dict[int, np.ndarray]], aucs: dict[str, float], baseline: str = BASELINE
) -> list[dict[str, Any]]:
    """One row per (runtime, batch): latency percentiles, rows/s (wall and at p50), speedup, AUC."""
    rows = []
    for name, per in samples.items():
        for b, t in per.items():
            base = samples[baseline][b]
            rows.append(
                {
                    "runtime": name,
                    "batch": b,
                    "p50_ms": float(np.percentile(t, 50) * 1e3),
                    "p99_ms": float(np.percentile(t, 99) * 1e3),
                    "rows_per_s": float(b * len(t) / t.sum()),
                    "rows_per_s_at_p50": float(b / np.percentile(t, 50)),
                    "speedup_vs_baseline": float(base.sum() / len(base) / (t.sum() / len(t))),
                    "auc": aucs[name],
                    "calls": len(t),
                }
            )
    return rows


def check_targets(rows: list[dict[str, Any]], aucs: dict[str, float]) -> dict[str, Any]:
    def row(name: str, b: int) -> dict[str, Any]:
        return next(r for r in rows if r["runtime"] == name and r["batch"] == b)

    p99 = max(row("onnxruntime-cpu-fp32", 1)["p99_ms"], row("onnxruntime-cpu-int8", 1)["p99_ms"])
    ratio = (
        row("onnxruntime-cpu-int8", 1024)["rows_per_s"]
        / row("onnxruntime-cpu-fp32", 1024)["rows_per_s"]
    )
    drop = aucs["onnxruntime-cpu-fp32"] - aucs["onnxruntime-cpu-int8"]
    return {
        "ort_batch1_p99_ms": p99,
        "ort_batch1_p99_ok": p99 < 0.5,
        "int8_vs_fp32_throughput_b1024": ratio,
        "int8_throughput_ok": ratio >= 1.5,
        "int8_auc_drop": drop,
        "int8_auc_ok": drop <= 0.005,
    }


def print_table(rows: list[dict[str, Any]], targets: dict[str, Any]) -> None:
    print(
        f"\n{'runtime':30s} {'batch':>5s} {'p50 ms':>8s} {'p99 ms':>8s} {'rows/s':>11s} "
        f"{'rows/s@p50':>11s} {'vs base':>8s} {'AUC':>7s}"
    )
    for r in sorted(rows, key=lambda r: (r["batch"], r["runtime"])):
        print(
            f"{r['runtime']:30s} {r['batch']:5d} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
            f"{r['rows_per_s']:11,.0f} {r['rows_per_s_at_p50']:11,.0f} "
            f"{r['speedup_vs_baseline']:7.2f}x {r['auc']:7.4f}"
        )
    print(
        f"\ntarget ONNX Runtime batch-1 p99 < 0.5 ms: {targets['ort_batch1_p99_ms']:.3f} ms "
        f"{'PASS' if targets['ort_batch1_p99_ok'] else 'FAIL'}"
    )
    print(
        "target INT8 >= 1.5x FP32 rows/s at batch 1024: "
        f"{targets['int8_vs_fp32_throughput_b1024']:.2f}x "
        f"{'PASS' if targets['int8_throughput_ok'] else 'FAIL'}"
    )
    print(
        f"target INT8 AUC drop <= 0.005: {targets['int8_auc_drop']:+.5f} "
        f"{'PASS' if targets['int8_auc_ok'] else 'FAIL'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--rows", type=int, default=40_000, help="synthetic impressions (80%% train, 20%% test)"
    )
    ap.add_argument("--steps", type=int, default=400, help="training steps")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for every runtime")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved timing rounds")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "runtimes.json")
    args = ap.parse_args()
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    tr = train_ctr(args.rows, hidden=(256, 128), steps=args.steps, batch_size=512, threads=None)
    train_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="mlray-bench-") as tmp:
        runtimes, export = build_runtimes(tr, Path(tmp), args.threads)
        aucs = {n: roc_auc(tr.y_test, rt.predict(tr.x_test)) for n, rt in runtimes.items()}
        samples = measure(
            runtimes, np.resize(tr.x_test, (max(BATCHES), tr.x_test.shape[1])), args.rounds
        )
    rows = summarize(samples, aucs)
    targets = check_targets(rows, aucs)
    print_table(rows, targets)
    report = {
        "benchmark": "runtimes",
        "baseline": BASELINE,
        "rows": rows,
        "targets": targets,
        "export": export,
        "config": vars(args)
        | {"out": str(args.out), "hidden": [256, 128], "train_seconds": train_s},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "versions": _versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(
        f"load average before/after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f}; "
        f"wrote {args.out}"
    )


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnx": onnx.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    main()
