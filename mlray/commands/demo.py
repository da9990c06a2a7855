"""CLI: ``mlray demo generate`` and ``mlray demo labels``."""

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
        # A string, not a Path: Path("s3://bucket/raw") would become "s3:/bucket/raw".
        out: str = typer.Option(
            None, help="Directory or URI for the raw Delta tables (default: <data_root>/raw)."
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
            out or s.raw_root,
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

    @groups["demo"].command("labels")
    @handle_errors
    def demo_labels(
        table: str = typer.Option("predictions", help="Prediction log table to label."),
        out: str = typer.Option("served_labels", help="Labels table name under <data_root>/raw."),
        delay_min: float = typer.Option(60.0, min=0, help="Shortest delay request -> label (s)."),
        delay_max: float = typer.Option(1800.0, min=0, help="Longest delay request -> label (s)."),
        seed: int = typer.Option(0, min=0, help="The seed `mlray demo generate` used."),
        users: int = typer.Option(2000, min=1, help="The --users `mlray demo generate` used."),
        as_of: str = typer.Option(
            None, help="Labels landed by this time, e.g. 2026-01-15T12:00:00Z (default: now)."
        ),
        overwrite: bool = typer.Option(False, help="Replace the labels table instead of adding."),
        config: Path = ConfigOpt,
    ) -> None:
        """Label logged requests with the demo's hidden click model, as the labels land.

        Each request gets a click (0/1) drawn from the generator's click model and a
        label time a random delay after it; labels not landed by --as-of are left for a
        later run, and a request already labelled is not labelled again.
        """
        import re

        from mlray.demo.served_labels import delay_range, label_served
        from mlray.errors import ConfigError

        for name, value in (("table", table), ("out", out)):
            if not re.fullmatch(r"[A-Za-z0-9_\-]+", value):
                raise ConfigError(
                    f"--{name} {value!r} must be a table name (letters, digits, _ and -)."
                )
        delay = delay_range((delay_min, delay_max))
        now = parse_time(as_of, "as-of") if as_of else None
        run = label_served(
            settings_from(config),
            table,
            out,
            delay,
            seed,
            users=users,
            now=now,
            overwrite=overwrite,
        )
        print_rows(
            "served labels",
            [
                {
                    "table": out,
                    "new": run.written,
                    "total": run.total,
                    "not landed yet": run.pending,
                    "unlabelable": run.skipped,
                    "click rate (new)": run.clicks / run.written if run.written else None,
                    "uri": run.uri,
                }
            ],
        )
        if run.pending:
            typer.echo(f"{run.pending} label(s) land later: run this again to add them.")
        typer.echo(f"next: mlray monitor (labels.source: {out})")
