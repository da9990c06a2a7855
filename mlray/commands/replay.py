"""CLI: ``mlray replay REQUEST_ID``, one logged prediction rebuilt from scratch and scored again."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import typer

from mlray.cli_support import ConfigOpt, handle_errors, print_rows, settings_from


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``replay``."""

    @app.command("replay")
    @handle_errors
    def replay_cmd(
        request_id: str = typer.Argument(..., help="The request_id a /predict response returned."),
        table: str = typer.Option("predictions", help="Prediction log table (log.table)."),
        runtime: str = typer.Option(
            "auto", help="Model runtime: auto (as serving on a CPU), onnxruntime, tensorrt, torch."
        ),
        precision: str = typer.Option(
            "auto", help="auto (INT8 when the version kept one, as serving), fp32, fp16, int8."
        ),
        device: str = typer.Option("cpu", help="cpu, cuda or auto."),
        tolerance: float = typer.Option(
            1e-5, min=0.0, help="Largest |score logged - score recomputed| still equal."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the replay as JSON."),
        config: Path = ConfigOpt,
    ) -> None:
        """Rebuild a logged prediction (point-in-time features as of its request time, the
        request-time transform, the logged model version) and compare it with what was served.

        Exits 1 when a feature or the score differs beyond tolerance, 2 on an error.
        """
        from mlray.monitoring.replay import replay

        r = replay(
            settings_from(config),
            request_id,
            table,
            runtime=runtime,
            precision=precision,
            device=device,
            score_tolerance=tolerance,
        )
        if as_json:
            typer.echo(json.dumps(r.to_dict(), indent=1, default=str))
        else:
            title = (
                f"Prediction {r.request_id} at {r.request_time.isoformat()} "
                f"({r.model_name} v{r.model_version})"
            )
            print_rows(
                title,
                [
                    {
                        "feature": row.feature,
                        "served": _show(row.served),
                        "recomputed": _show(row.recomputed),
                        "equal": "yes" if row.equal else "NO",
                    }
                    for row in r.rows
                ],
            )
            print_rows(
                "Feature views (offline table version current at the request time)",
                [
                    {
                        "view": v.view,
                        "table version": v.table_version,
                        "served event time": v.served_event_time or "no row",
                        "recomputed event time": v.recomputed_event_time or "no row",
                        "fresh": "yes" if v.fresh else "no (stale or missing online)",
                    }
                    for v in r.views
                ],
            )
            typer.echo(
                f"score logged {r.score_logged:.7g}, recomputed {r.score_recomputed:.7g} "
                f"(|diff| {r.score_diff:.2g}, tolerance {r.score_tolerance:g}); "
                f"on the served features {r.score_on_served:.7g} [{r.runtime}]"
            )
            for note in r.notes:
                typer.echo(f"note: {note}")
            typer.echo("replay: EQUAL" if r.equal else "replay: DIFFERENT")
        if not r.equal:
            raise typer.Exit(1)


def _show(v: object) -> str:
    """A value with the digits that tell two floats apart (the table's default shows 4)."""
    if v is None:
        return "null"
    return f"{v:.10g}" if isinstance(v, float) else str(v)
