"""CLI: ``mlray materialize`` and ``mlray features get``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from mlray.store.materialize import MaterializeResult


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the online store's commands to the ``mlray`` app."""

    @app.command("materialize")
    @handle_errors
    def materialize_cmd(
        end: str = typer.Option(None, help="As-of time, e.g. 2026-01-11T00:00:00Z (default: now)."),
        view: list[str] = typer.Option(None, help="Only these views (repeatable)."),
        incremental: bool = typer.Option(False, help="Only entities changed since the last run."),
        max_ahead_hours: float = typer.Option(
            24.0,
            min=0,
            help="Refuse an END more than this many hours past now (it would move the "
            "incremental watermark there).",
        ),
        config: Path = ConfigOpt,
    ) -> None:
        """Write the latest feature values as of END to the online store (Redis)."""
        from mlray.store import FeatureStore
        from mlray.store.materialize import materialize

        fs = FeatureStore(settings_from(config))
        end_time = parse_time(end, "end") if end else datetime.now(UTC)
        results = materialize(
            fs.settings,
            fs.repo,
            end_time,
            view or None,
            incremental=incremental,
            max_ahead=timedelta(hours=max_ahead_hours),
        )
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
        for r in results:
            note = expired_note(r, fs.repo.view(r.view).ttl)
            if note:
                typer.echo(note)

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
        for line in missing_notes(fs, res, when):
            typer.echo(line)


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


def expired_note(result: MaterializeResult, ttl: timedelta | None) -> str | None:
    """Why nothing of a view was written and what to do, when every picked row had expired."""
    if not result.all_expired or ttl is None:
        return None
    newest = result.newest_chosen_event_time
    when = (
        f" (newest event {newest.isoformat()}, expired at {(newest + ttl).isoformat()})"
        if newest is not None
        else ""
    )
    return (
        f"{result.view}: all {result.entities} rows picked as of {result.end_time.isoformat()} "
        f"were already past the view's TTL of {ttl} by the wall clock{when}, so none was "
        "written. The online store expires values at event_time + ttl on the real clock, "
        "so materialize data whose newest rows are younger than the TTL: for the demo, "
        "regenerate it ending now (`mlray demo generate`, the default), rebuild the features "
        "for the window it prints, then `mlray materialize` without --end."
    )


def missing_notes(fs: Any, res: Any, request_time: datetime | None) -> list[str]:
    """Why a stored view returned nothing for the entity: never materialized, or expired."""
    if not res.rows:
        return []
    from mlray.features.times import to_datetime

    at = request_time or datetime.now(UTC)
    missing = set(res.missing[0])
    notes = []
    for name in dict.fromkeys(f.partition("__")[0] for f in res.features):
        if name not in fs.repo.views or any(
            f.startswith(f"{name}__") and f.replace("__", ":", 1) not in missing
            for f in res.features
        ):
            continue
        view, state = fs.repo.view(name), fs.online.get_state(name)
        if state.materialized_at_us is None:
            notes.append(
                f"{name}: never materialized in project {fs.settings.project!r}; "
                "run `mlray materialize`."
            )
        elif state.newest_event_us is None:
            notes.append(
                f"{name}: materialized, but no value was written (every row picked was past "
                f"the view's TTL of {view.ttl} by the wall clock, or the offline table is "
                "empty); see the notes `mlray materialize` prints."
            )
        elif (
            view.ttl is not None
            and (newest := to_datetime(state.newest_event_us)) is not None
            and newest + view.ttl <= at
        ):
            notes.append(
                f"{name}: even the newest materialized value (event time "
                f"{newest.isoformat()}) is past the view's TTL of {view.ttl} "
                f"at {at.isoformat()}; materialize features built from recent data."
            )
        else:
            notes.append(f"{name}: no value for this entity within the TTL (unknown id?).")
    return notes
