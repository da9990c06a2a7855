"""CLI: ``mlray demo generate``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from mlray.cli_support import ConfigOpt, handle_errors, parse_time, print_rows, settings_from


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
        days: int = typer.Option(
            None, min=1, help="Days of history (default 14, or what --start/--end span)."
        ),
        start: str = typer.Option(
            None, help="First instant, e.g. 2026-01-01T00:00:00Z (default: --end minus --days)."
        ),
        end: str = typer.Option(
            None, help="End of the window, exclusive (default: the current hour, UTC)."
        ),
        seed: int = typer.Option(0, min=0),
        drift_after: int = typer.Option(
            None, help="Shift prices and the device mix from this day on."
        ),
        config: Path = ConfigOpt,
    ) -> None:
        """Write the demo impressions and item catalog as Delta tables.

        The window ends at the current hour by default, so the features built from it
        are within their TTLs when materialized to the online store (which expires
        values by the real clock).
        """
        from mlray.demo.generate import generate_clickstream
        from mlray.demo.window import demo_window

        s = settings_from(config)
        first, n_days = demo_window(
            start=parse_time(start, "start") if start else None,
            end=parse_time(end, "end") if end else None,
            days=days,
        )
        summary = generate_clickstream(
            str(out) if out else s.raw_root,
            users=users,
            items=items,
            days=n_days,
            seed=seed,
            start=first,
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
                    "rows": summary.catalog_rows,
                    "uri": summary.catalog_uri,
                },
            ],
        )
        typer.echo(
            f"window: {summary.start.isoformat()} .. {summary.end.isoformat()}  "
            f"click rate {summary.click_rate:.3f}"
        )
        t0, t1 = (t.isoformat().replace("+00:00", "Z") for t in (summary.start, summary.end))
        typer.echo(f"next: mlray features build --start {t0} --end {t1}")
