"""CLI: ``mlray features list|build`` and ``mlray training-set``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from mlray.cli_support import (
    ConfigOpt,
    handle_errors,
    parse_features,
    parse_time,
    print_rows,
    settings_from,
)


def register(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the feature definition, feature pipeline and training-set commands."""
    features_app = groups["features"]

    @features_app.command("list")
    @handle_errors
    def features_list(config: Path = ConfigOpt) -> None:
        """List the feature views of the configured repository."""
        from mlray.features import FeatureRepository

        repo = FeatureRepository.from_module(settings_from(config).feature_repo)
        print_rows(
            "feature views",
            [
                {
                    "view": v.name,
                    "entities": ",".join(v.join_keys),
                    "ttl": v.ttl,
                    "features": ", ".join(v.feature_names),
                    "schema": v.schema_hash()[:12],
                }
                for v in repo.views.values()
            ],
        )

    @features_app.command("build")
    @handle_errors
    def features_build(
        start: str = typer.Option(..., help="Window start, e.g. 2026-01-01T00:00:00Z."),
        end: str = typer.Option(..., help="Window end (exclusive)."),
        view: list[str] = typer.Option(None, help="Only these views (repeatable)."),
        config: Path = ConfigOpt,
    ) -> None:
        """Compute feature views for [start, end) with Ray Data and replace that window offline."""
        from mlray.store import FeatureStore

        t0, t1 = parse_time(start, "start"), parse_time(end, "end")
        results = FeatureStore(settings_from(config)).build_features(t0, t1, view or None)
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
        labels: str = typer.Option(..., help="Labels: a Delta table or Parquet path."),
        features: str = typer.Option(..., help="view:f,view:g or a feature service name."),
        out: Path = typer.Option(
            ..., help="Output path (.parquet file/dir, or a Delta dir with --delta)."
        ),
        label_time: str = typer.Option("event_time"),
        delta: bool = typer.Option(False, help="Write Delta."),
        config: Path = ConfigOpt,
    ) -> None:
        """Build a point-in-time correct training set and write it."""
        from mlray.offline.export import write_training_set
        from mlray.offline.labels import read_labels
        from mlray.store import FeatureStore

        s = settings_from(config)
        fs = FeatureStore(s)
        ts = fs.get_training_data(
            read_labels(s, labels).dataset, parse_features(features), label_time=label_time
        )
        rows = write_training_set(ts, str(out), delta=delta)
        typer.echo(f"wrote {rows} rows to {out}")
