"""The shadow report as a job (``data_root`` absolute or a URI: it runs in an uploaded copy)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"MLRAY_DATA_ROOT": "'$PWD'/mlray-data"}}' \\
        -- python jobs/shadow_report.py [--start ...]

Reads the prediction log, writes ``report.json`` and ``report.html`` and logs
them to MLflow (experiment ``mlray-monitoring``); see ``mlray shadow-report``.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _entry import run_job  # noqa: E402

from mlray.cli_support import parse_time  # noqa: E402
from mlray.config import Settings  # noqa: E402
from mlray.serving.shadow_report import shadow_report  # noqa: E402


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--start", help="first request time, e.g. 2026-01-01T00:00:00Z (default: all)")
    p.add_argument("--end", help="end of the window, exclusive (default: all)")
    p.add_argument("--threshold", type=float, default=0.5, help="decision threshold (0.5)")
    p.add_argument("--out", help="report folder (default <data_root>/reports/shadow/<time>)")
    p.add_argument("--table", default="predictions", help="prediction log table (predictions)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")


def main(settings: Settings, args: argparse.Namespace) -> None:
    report = shadow_report(
        settings,
        table=args.table,
        start=parse_time(args.start, "start") if args.start else None,
        end=parse_time(args.end, "end") if args.end else None,
        threshold=args.threshold,
        out=args.out,
        log_mlflow=not args.no_mlflow,
    )
    for p in report.pairs:
        print(
            f"{p['model_name']} v{p['model_version']} vs shadow v{p['shadow_version']}: "
            f"{p['rows']} rows, mean |diff| {p['mean_abs_diff']:.4g}, "
            f"max |diff| {p['max_abs_diff']:.4g}, spearman {p['spearman']:.4g}, "
            f"pearson {p['pearson']:.4g}, flips {p['flip_share']:.2%}"
        )
    print(f"report: {report.out_dir}/report.html")
    if report.run_id:
        print(f"MLflow run {report.run_id} in experiment mlray-monitoring")


if __name__ == "__main__":
    run_job(__doc__ or "", add_args, main, uses_ray=False)  # deltalake and pyarrow only
