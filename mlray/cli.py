"""The ``mlray`` command: demo data, features, training sets (and more, registered by stage).

Stages add their commands through a ``register(app, features_app)`` function
in their ``commands`` module, listed in ``_COMMAND_MODULES``; errors from
mlray are printed as one red line and exit with status 2.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from mlray.config import Settings, load_settings
from mlray.errors import ConfigError, find_mlray_error

console = Console(stderr=True)
app = typer.Typer(
    help="mlray: feature store, training and serving on one Ray cluster.", no_args_is_help=True
)
demo_app = typer.Typer(help="Synthetic click-stream demo data.", no_args_is_help=True)
features_app = typer.Typer(
    help="Feature definitions and the feature pipeline.", no_args_is_help=True
)
app.add_typer(demo_app, name="demo")
app.add_typer(features_app, name="features")

_COMMAND_MODULES = ("mlray.online.commands", "mlray.training.commands", "mlray.export.commands")

ConfigOpt = typer.Option(
    None, "--config", "-c", help="mlray.yaml settings file.", exists=True, dir_okay=False
)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print mlray errors (also when wrapped by Ray) as one line and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - anything else is re-raised below
            err = find_mlray_error(e)
            if err is None:
                raise
            console.print(f"[bold red]{type(err).__name__}:[/] {err.message}")
            raise typer.Exit(2) from e

    return wrapper


def settings_from(config: Path | None) -> Settings:
    return load_settings(config)


def parse_time(value: str, name: str) -> datetime:
    """Parse an ISO-8601 time that carries its zone (``Z`` or ``+01:00``)."""
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(
            f"--{name} {value!r} is not an ISO-8601 time; write e.g. 2026-01-01T00:00:00Z."
        ) from e
    if t.tzinfo is None:
        raise ConfigError(
            f"--{name} {value!r} has no time zone; append Z for UTC or an offset like +01:00."
        )
    return t


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    """A rich table of dict rows, printed to stdout."""
    table = Table(title=title)
    if not rows:
        Console().print(f"{title}: (no rows)")
        return
    for col in rows[0]:
        table.add_column(str(col), overflow="fold")
    for r in rows:
        table.add_row(*[_fmt(v) for v in r.values()])
    Console().print(table)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


@demo_app.command("generate")
@handle_errors
def demo_generate(
    out: Path = typer.Option(
        None, help="Directory for the raw Delta tables (default: <data_root>/raw)."
    ),
    users: int = typer.Option(2000, min=1),
    items: int = typer.Option(300, min=1),
    days: int = typer.Option(14, min=1),
    seed: int = typer.Option(0, min=0),
    drift_after: int = typer.Option(None, help="Shift prices and the device mix from this day on."),
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
            {"table": "impressions", "rows": summary.impressions, "uri": summary.impressions_uri},
            {"table": "item_catalog", "rows": summary.catalog_changes, "uri": summary.catalog_uri},
        ],
    )
    typer.echo(
        f"window: {summary.start.isoformat()} .. {summary.end.isoformat()}  click rate {summary.click_rate:.3f}"
    )


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

    results = FeatureStore(settings_from(config)).build_features(
        parse_time(start, "start"), parse_time(end, "end"), view or None
    )
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
    from mlray.offline.export import read_table, write_training_set
    from mlray.store import FeatureStore

    s = settings_from(config)
    fs = FeatureStore(s)
    refs: str | list[str] = (
        features if ":" not in features else [f.strip() for f in features.split(",") if f.strip()]
    )
    ts = fs.get_training_data(read_table(labels, s), refs, label_time=label_time)
    rows = write_training_set(ts, str(out), delta=delta)
    typer.echo(f"wrote {rows} rows to {out}")


def _register_stage_commands() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and name.startswith(e.name):
                continue  # that stage is not installed in this build
            raise
        module.register(app, features_app)


_register_stage_commands()


def main() -> None:  # pragma: no cover - console script entry
    app(prog_name="mlray")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
