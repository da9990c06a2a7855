"""What every stage's CLI commands share: errors, options, time and list parsing, tables.

This module sits below every stage (it imports only config and errors), so a
stage's ``commands`` module can use it without importing :mod:`mlray.cli`.
Each stage registers its commands through ``register(app, groups)``; the
``groups`` mapping holds the shared sub-command groups (``demo``, ``features``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from mlray.config import Settings, load_settings
from mlray.errors import ConfigError, find_mlray_error

console = Console(stderr=True)
ConfigOpt = typer.Option(
    None, "--config", "-c", help="mlray.yaml settings file.", exists=True, dir_okay=False
)
# A stage's register function: add commands to the app and to the shared groups.
Register = Callable[[typer.Typer, Mapping[str, typer.Typer]], None]


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print mlray errors (also when wrapped by Ray) as one red line and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - anything else is re-raised below
            err = find_mlray_error(e)
            if err is None:
                raise
            console.print(f"[bold red]{type(err).__name__}:[/] {err.message}", soft_wrap=True)
            raise typer.Exit(2) from e

    return wrapper


def settings_from(config: Path | None) -> Settings:
    """The settings a command runs with: ``--config`` (else the usual lookup) plus ``MLRAY_*``."""
    return load_settings(config)


def parse_time(value: str, name: str) -> datetime:
    """Parse an ISO-8601 time that carries its zone (``Z`` or ``+01:00``).

    Raises:
        ConfigError: not ISO 8601, or no zone; the message names the option.
    """
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


def parse_features(value: str) -> str | list[str]:
    """``"view:f,view:g"`` -> refs; a value without ``:`` names a feature service."""
    if ":" not in value:
        return value
    return [f.strip() for f in value.split(",") if f.strip()]


def parse_entity(pairs: list[str]) -> dict[str, Any]:
    """``["user_id=7", "device=mobile"]`` -> ``{"user_id": 7, "device": "mobile"}``.

    Numbers are parsed; anything else stays a string.

    Raises:
        ConfigError: a pair is not ``KEY=VALUE``.
    """
    row: dict[str, Any] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--entity {p!r} must look like KEY=VALUE, e.g. --entity user_id=7.")
        parsed = yaml.safe_load(value) if value.strip() else value
        row[key.strip()] = parsed if isinstance(parsed, int | float | bool) else value
    return row


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    """A rich table of dict rows, printed to stdout."""
    if not rows:
        Console().print(f"{title}: (no rows)")
        return
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(str(col), overflow="fold")
    for r in rows:
        table.add_row(*[_fmt(v) for v in r.values()])
    Console().print(table)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
