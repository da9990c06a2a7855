"""CLI: ``mlray shadow-report``, the shadow's scores against the champion's on served traffic."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from mlray.cli_support import ConfigOpt, handle_errors, parse_time, print_rows, settings_from


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``shadow-report``."""

    @app.command("shadow-report")
    @handle_errors
    def shadow_report_cmd(
        start: str = typer.Option(None, help="First request time, e.g. 2026-01-01T00:00:00Z."),
        end: str = typer.Option(None, help="End of the window (exclusive); default: all."),
        threshold: float = typer.Option(
            0.5,
            min=0.0,
            max=1.0,
            help="Decision threshold: a flip is champion >= t != shadow >= t.",
        ),
        out: Path = typer.Option(
            None, file_okay=False, help="Report folder (default <data_root>/reports/shadow/<time>)."
        ),
        table: str = typer.Option("predictions", help="Prediction log table (log.table)."),
        mlflow: bool = typer.Option(True, help="Log the report to MLflow (mlray-monitoring)."),
        config: Path = ConfigOpt,
    ) -> None:
        """Compare the shadow's scores with the champion's per model pair (prediction log)."""
        from mlray.serving.shadow_report import EXPERIMENT, shadow_report

        report = shadow_report(
            settings_from(config),
            table=table,
            start=parse_time(start, "start") if start else None,
            end=parse_time(end, "end") if end else None,
            threshold=threshold,
            out=out,
            log_mlflow=mlflow,
        )
        print_rows(f"Shadow vs champion (threshold {threshold:g})", report.pairs)
        typer.echo(f"report: {report.out_dir}/report.html and report.json")
        if report.run_id:
            typer.echo(f"MLflow run {report.run_id} in experiment {EXPERIMENT}")
