"""The monitor as a Ray job (``data_root`` absolute or a URI: it runs in an uploaded copy)::

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        --runtime-env-json '{"env_vars": {"MLRAY_DATA_ROOT": "'$PWD'/mlray-data"}}' \\
        -- python jobs/monitor.py --config jobs/monitor.yaml [--dry-run]

``--config`` is the monitor config (:mod:`mlray.monitoring.config`); the mlray
settings come from its ``settings_file``/``settings`` keys, else the usual
lookup, or ``--settings``. Runs every check over the window, writes the report
(JSON and HTML under ``<data_root>/reports/monitor/<time>``, MLflow artifacts),
exports the figures as Ray metrics and, on a breach, submits the retrain job
(see ``mlray monitor``). Exits 0 without a breach, 1 with one, 2 on a failure.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _entry import exit_on_failure  # noqa: E402

from mlray.cli_support import parse_time  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--config", help="monitor config YAML (default: all defaults)")
    p.add_argument("--settings", help="mlray.yaml settings (overrides the config's settings_file)")
    p.add_argument("--window-hours", type=float, help="hours of served traffic (default 24)")
    p.add_argument("--end", help="end of the window, e.g. 2026-01-01T00:00:00Z (default: now)")
    p.add_argument("--dry-run", action="store_true", help="promote and submit nothing")
    p.add_argument("--out", help="report folder (default <data_root>/reports/monitor/<time>)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument("--verbose", action="store_true", help="Show Ray's own logs too.")
    return p.parse_args(argv)


def main(args: argparse.Namespace) -> int:
    from mlray.monitoring.config import load_monitor_config
    from mlray.monitoring.monitor import run_monitor, settings_for
    from mlray.ray_session import check_job_data_root, ensure_ray, set_verbose

    set_verbose(args.verbose)
    if args.end:
        parse_time(args.end, "end")
    cfg = load_monitor_config(args.config, window_hours=args.window_hours, end=args.end,
                              out_dir=args.out)  # fmt: skip
    settings = settings_for(cfg, args.settings)
    check_job_data_root(settings)
    ensure_ray(settings)  # a job runs in the cluster: the gauges go to its metrics
    report = run_monitor(cfg, settings, dry_run=args.dry_run, log_mlflow=not args.no_mlflow)
    for row in report.summary_rows():
        print(f"{row['check']:>13} {row['status']:<12} {row['figures']}")
    for a in report.alerts:
        print(f"alert {a.severity} {a.check} {a.subject}: {a.message}")
    print(f"report: {report.out_dir}/report.html")
    if report.run_id:
        print(f"MLflow run {report.run_id} in experiment mlray-monitoring")
    if report.errors:
        return 2
    return 1 if report.breached else 0


if __name__ == "__main__":
    args = parse()
    status: list[int] = []
    exit_on_failure(lambda: status.append(main(args)), args.settings)
    sys.exit(status[0])
