"""CLI: ``mlray demo generate``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from mlray.cli_support import ConfigOpt, handle_errors, print_rows, settings_from


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the demo data commands to the ``demo`` group."""

    @groups["demo"].command("generate")
    @handle_errors
    def demo_generate(
        out: Path = typer.Option(
            None, help="Directory for the raw Delta tables (default: <data_root>/raw)."
        ),
        users: int = typer.Option(2000, min=1),
        items: int = typer.Option(300, min=1),
        days: int = typer.Option(14, min=1),
        seed: int = typer.Option(0, min=0),
        drift_after: int = typer.Option(
            None, help="Shift prices and the device mix from this day on."
        ),
        config: Path = ConfigOpt,
    ) -> None:
        """Write the demo impressions and item catalog as Delta tables."""
        from mlray.demo.generate import generate_clickstream

        s = settings_from(config)
        summary = generate_clickstream(
            str(out) if out else s.raw_root,
            users=users,
            items=items,
            days=days,
            seed=seed,
            drift_after=drift_after,
            storage_options=s.storage_options or None,
        )
        print_rows(
            "demo data",
            [
                {
                    "table": "impressions",
                    "rows": summary.impressions,
                    "uri": summary.impressions_uri,
                },
                {
                    "table": "item_catalog",
                    "rows": summary.catalog_changes,
                    "uri": summary.catalog_uri,
                },
            ],
        )
        typer.echo(
            f"window: {summary.start.isoformat()} .. {summary.end.isoformat()}  "
            f"click rate {summary.click_rate:.3f}"
        )
