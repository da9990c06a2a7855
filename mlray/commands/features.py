"""CLI: ``mlray features list|build`` and ``mlray training-set``.

Every cheap check (arguments, names, time window, label table, output
path) runs before Ray starts, so a typo is reported in about a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mlray.cli_support import (
    ConfigOpt,
    handle_errors,
    parse_features,
    parse_time,
    print_rows,
    settings_from,
)

if TYPE_CHECKING:
    from mlray.features.repository import FeatureRepository

FEATURES_HELP = (
    "view:feature[,view:feature...] (stored or request-time) or a feature service name; "
    "`mlray features list` shows them."
)


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the feature definition, feature pipeline and training-set commands."""
    features_app = groups["features"]

    @features_app.command("list")
    @handle_errors
    def features_list(config: Path = ConfigOpt) -> None:
        """List the feature views, request-time views and feature services of the repository."""
        from mlray.features import FeatureRepository

        repo = FeatureRepository.from_module(settings_from(config).feature_repo)
        for title, rows in repository_tables(repo):
            print_rows(title, rows)
        typer.echo(
            "Ask for features as view:feature (e.g. --features "
            f"{next(iter(repo.all_refs()), 'view:feature')}) or by service name; "
            "training sets and online reads name their columns view__feature."
        )

    @features_app.command("build")
    @handle_errors
    def features_build(
        start: str = typer.Option(..., help="Window start, e.g. 2026-01-01T00:00:00Z."),
        end: str = typer.Option(..., help="Window end (exclusive)."),
        view: list[str] = typer.Option(
            None,
            "--view",
            "--views",
            help="Only these computed views (repeatable, or comma-separated).",
        ),
        config: Path = ConfigOpt,
    ) -> None:
        """Compute feature views for [start, end) with Ray Data and replace that window offline."""
        from mlray.store import FeatureStore

        t0, t1 = parse_time(start, "start"), parse_time(end, "end")
        fs = FeatureStore(settings_from(config))
        names = check_build(fs.repo, t0, t1, split_names(view))
        results = fs.build_features(t0, t1, names or None)
        print_rows(
            "feature build",
            [
                {"view": r.view, "rows": r.rows, "version": r.version, "seconds": r.seconds}
                for r in results
            ],
        )

    @app.command("training-set")
    @handle_errors
    def training_set(
        labels: str = typer.Option(
            ...,
            help="Labels: a Delta table, a Parquet file or directory, or a table name under "
            "<data_root>/raw.",
        ),
        features: str = typer.Option(..., help=FEATURES_HELP),
        out: str = typer.Option(
            ..., help="Output path (a Parquet directory, or a Delta table with --delta)."
        ),
        label_time: str = typer.Option("event_time", help="The labels' time column."),
        delta: bool = typer.Option(False, help="Write Delta."),
        overwrite: bool = typer.Option(
            False, help="Replace an existing --out (atomically); without it, refuse."
        ),
        config: Path = ConfigOpt,
    ) -> None:
        """Build a point-in-time correct training set and write it."""
        from mlray.offline.export import check_output, write_training_set
        from mlray.offline.labels import find_labels
        from mlray.store import FeatureStore

        s = settings_from(config)
        fs = FeatureStore(s)
        refs = parse_features(features)
        fs.repo.resolve(refs)  # unknown names first, before anything is read
        source = find_labels(s, labels)
        target = check_output(s, out, overwrite=overwrite, labels=source.uri, flag="--overwrite")
        # Plans (columns, types, null label times and keys from the files' statistics)
        # before Ray starts; then joins.
        ts = fs.get_training_data(source, refs, label_time=label_time)
        rows = write_training_set(
            ts, target, delta=delta, overwrite=overwrite, storage_options=s.storage_options
        )
        typer.echo(f"wrote {rows} rows to {out}")


def split_names(values: list[str] | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (repeatable and comma-separated options)."""
    return [n.strip() for v in values or [] for n in v.split(",") if n.strip()]


def check_build(
    repo: FeatureRepository, start: datetime, end: datetime, views: list[str]
) -> list[str]:
    """The window and the view names of a feature build, checked before Ray starts.

    Raises:
        ConfigError: the window is empty or its bounds lack a zone.
        NotFoundError: an unknown view (with close names).
        DefinitionError: a view is filled by ingest, not computed.
    """
    from mlray.offline.feature_build import buildable_views, check_window

    check_window(start, end)
    buildable_views(repo, views)
    return views


def repository_tables(repo: FeatureRepository) -> list[tuple[str, list[dict[str, Any]]]]:
    """The tables ``mlray features list`` prints: stored views, request-time views, services."""
    stored = [
        {
            "view": v.name,
            "entities": ",".join(v.join_keys),
            "ttl": v.ttl,
            "features": ", ".join(v.feature_names),
            "schema": v.schema_hash()[:12],
        }
        for v in repo.views.values()
    ]
    on_demand = [
        {
            "view": od.name,
            "request fields": ", ".join(f.name for f in od.request),
            "sources": ", ".join(od.sources),
            "features": ", ".join(od.feature_names),
        }
        for od in repo.on_demand.values()
    ]
    services = [
        {"service": s.name, "count": len(s.features), "features": ", ".join(s.features)}
        for s in repo.services.values()
    ]
    return [
        ("feature views (stored)", stored),
        ("request-time views (on demand)", on_demand),
        ("feature services", services),
    ]
