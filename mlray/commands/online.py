"""CLI: ``mlray materialize`` and ``mlray features get``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from mlray.cli_support import (
    ConfigOpt,
    handle_errors,
    parse_entity,
    parse_features,
    parse_time,
    print_rows,
    settings_from,
)


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the online store's commands to the ``mlray`` app."""

    @app.command("materialize")
    @handle_errors
    def materialize_cmd(
        end: str = typer.Option(None, help="As-of time, e.g. 2026-01-11T00:00:00Z (default: now)."),
        view: list[str] = typer.Option(None, help="Only these views (repeatable)."),
        incremental: bool = typer.Option(False, help="Only entities changed since the last run."),
        config: Path = ConfigOpt,
    ) -> None:
        """Write the latest feature values as of END to the online store (Redis)."""
        from mlray.store import FeatureStore

        fs = FeatureStore(settings_from(config))
        end_time = parse_time(end, "end") if end else datetime.now(UTC)
        run = fs.materialize_incremental if incremental else fs.materialize
        results = run(end_time, view or None)
        since = results[0].since if results else None
        print_rows(
            f"materialized as of {end_time.isoformat()}"
            + (f" (since {since.isoformat()})" if since else ""),
            [
                {
                    "view": r.view,
                    "version": r.table_version,
                    "entities": r.entities,
                    "written": r.written,
                    "unchanged": r.unchanged,
                    "older": r.older,
                    "expired": r.expired,
                    "newest event": r.newest_event_time,
                    "seconds": r.seconds,
                }
                for r in results
            ],
        )

    @groups["features"].command("get")
    @handle_errors
    def features_get(
        entity: list[str] = typer.Option(
            ...,
            help="KEY=VALUE of a join key or request field (repeatable), e.g. --entity user_id=7.",
        ),
        features: str = typer.Option(..., help="view:f,view:g or a feature service name."),
        request_time: str = typer.Option(None, help="Request time (default: now)."),
        config: Path = ConfigOpt,
    ) -> None:
        """Read features of one entity row from the online store and print them."""
        from mlray.store import FeatureStore

        fs = FeatureStore(settings_from(config))
        row = parse_entity(entity)
        when = parse_time(request_time, "request-time") if request_time else None
        res = fs.get_online_features(row, parse_features(features), request_time=when)
        print_rows(
            f"online features for {', '.join(f'{k}={v}' for k, v in row.items())}",
            feature_table(res),
        )


def feature_table(res: Any) -> list[dict[str, Any]]:
    """One printed row per feature of the first entity row: value, event time, age, missing."""
    if not res.rows:
        return []
    row, missing = res.rows[0], set(res.missing[0])
    times = {v: ts[0] for v, ts in res.event_times.items()}
    ages = {v: a[0] for v, a in res.ages_s().items()}
    out = []
    for name in res.features:
        view, _, feat = name.partition("__")
        out.append(
            {
                "feature": f"{view}:{feat}",
                "value": row.get(name),
                "event_time": times.get(view),
                "age_s": ages.get(view),
                "missing": "yes" if f"{view}:{feat}" in missing else "",
            }
        )
    return out
