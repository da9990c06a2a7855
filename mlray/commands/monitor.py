"""CLI: ``mlray monitor``, every monitoring check over a window of served traffic, then act.

Exit status: 0 when no threshold was breached, 1 when one was (the report
says which, and what was done: retrain submitted, in cooldown, or what a dry
run would submit), 2 when the monitor itself failed (an error line and a log
file, as every command; the report is still written when the checks ran).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from mlray.cli_support import SettingsOpt, handle_errors, parse_time, print_rows

MonitorConfigOpt = typer.Option(
    None,
    "--config",
    "-c",
    exists=True,
    dir_okay=False,
    help="Monitor config YAML, e.g. jobs/monitor.yaml (default: all defaults).",
)


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``monitor``."""

    @app.command("monitor")
    @handle_errors
    def monitor_cmd(
        monitor_config: Path = MonitorConfigOpt,
        config: Path = SettingsOpt,
        window_hours: float = typer.Option(
            None, min=0.001, help="Hours of served traffic, ending at --end (default 24)."
        ),
        end: str = typer.Option(None, help="End of the window (exclusive); default: now."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Say what would be promoted or retrained; change nothing."
        ),
        out: Path = typer.Option(
            None,
            file_okay=False,
            help="Report folder (default <data_root>/reports/monitor/<time>).",
        ),
        mlflow: bool = typer.Option(True, help="Log the report to MLflow (mlray-monitoring)."),
    ) -> None:
        """Drift, delayed-label performance, promotion gate, freshness and skew; retrain on a
        breach. Exit 0: no breach; 1: a breach; 2: the monitor failed."""
        from mlray.monitoring.config import load_monitor_config
        from mlray.monitoring.monitor import run_monitor, settings_for

        if end:
            parse_time(end, "end")  # the zone is required, as everywhere
        cfg = load_monitor_config(
            monitor_config, window_hours=window_hours, end=end, out_dir=str(out) if out else None
        )
        report = run_monitor(cfg, settings_for(cfg, config), dry_run=dry_run, log_mlflow=mlflow)
        print_rows(
            f"Monitor {report.model_name}: {report.rows:,} predictions {report.start} .. "
            f"{report.end}{' (dry run)' if dry_run else ''}",
            report.summary_rows(),
        )
        alerts = [{"check": a.check, "severity": a.severity, "message": a.message}
                  for a in report.alerts]  # fmt: skip
        print_rows("Alerts", alerts)
        typer.echo(f"report: {report.out_dir}/report.html and report.json")
        if report.run_id:
            typer.echo(f"MLflow run {report.run_id} in experiment mlray-monitoring")
        if report.errors:
            names = ", ".join(s.name for s in report.errors)
            typer.echo(f"checks that failed: {names} (see the report)", err=True)
            raise typer.Exit(2)
        raise typer.Exit(1 if report.breached else 0)
