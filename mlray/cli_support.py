"""What every stage's CLI commands share: errors, options, time and list parsing, tables.

This module sits below every stage (it imports only config and errors), so a
stage's ``commands`` module can use it without importing :mod:`mlray.cli`.
Each stage registers its commands through ``register(app, groups)``; the
``groups`` mapping holds the shared sub-command groups (``demo``, ``features``).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.exceptions import TyperException

from mlray.config import Settings, load_settings
from mlray.errors import ConfigError, Failure, describe_failure

console = Console(stderr=True)
ConfigOpt = typer.Option(
    None, "--config", "-c", help="mlray.yaml settings file.", exists=True, dir_okay=False
)
# For commands whose --config is their own YAML (train, monitor): the settings file beside it.
SettingsOpt = typer.Option(
    None,
    "--settings",
    exists=True,
    dir_okay=False,
    help="mlray.yaml settings (default: the config's settings_file, else $MLRAY_CONFIG "
    "or ./mlray.yaml).",
)
# Exits and usage errors typer (and click, which some typer versions use) handle themselves.
_CLI_EXITS = (
    typer.Exit,
    typer.Abort,
    TyperException,
    click.exceptions.Exit,
    click.exceptions.Abort,
    click.ClickException,
)
# A stage's register function: add commands to the app and to the shared groups.
Register = Callable[[typer.Typer, Mapping[str, typer.Typer]], None]


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Report any failure as one red line, write its traceback to a log file, exit with status 2.

    An mlray error (also when Ray wrapped it) prints as ``<Type>: <message>``;
    any other exception (a bug in a transform run by a Ray task, say) as its
    type, message and the line of user code that raised it. The full traceback
    goes to a log file under ``<data_root>/logs`` (else the temp directory),
    whose path is printed on the next line. Messages are printed as written:
    brackets in them are never read as console markup.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _CLI_EXITS:
            raise
        except Exception as e:  # noqa: BLE001 - every other failure is reported the same way
            report_failure(e, kwargs.get("config"))
            raise typer.Exit(2) from e

    return wrapper


def report_failure(exc: BaseException, config: Path | None = None) -> Path | None:
    """Print ``exc`` as one line (plus the log file's path) to stderr; return the log's path."""
    failure = describe_failure(exc)
    console.print(
        Text.assemble((f"{failure.kind}:", "bold red"), " ", failure.detail), soft_wrap=True
    )
    log = write_error_log(exc, failure, error_log_dir(config))
    if log is not None:
        console.print(Text(f"full traceback: {log}", style="dim"), soft_wrap=True)
    return log


def error_log_dir(config: Path | None = None) -> Path:
    """``<data_root>/logs`` when the settings load and name an existing local data root.

    Else ``<temp dir>/mlray-logs``: a failure never creates the data root.
    """
    try:
        root = load_settings(config).data_root
    except Exception:  # noqa: BLE001 - the settings may be what failed
        root = None
    if root is None or "://" in root or not Path(root).is_dir():
        return Path(tempfile.gettempdir()) / "mlray-logs"
    return Path(root).resolve() / "logs"


def write_error_log(exc: BaseException, failure: Failure, directory: Path) -> Path | None:
    """Write the command line, the one-line report and the full traceback to a new file.

    Returns:
        The file, in ``directory`` or (when that cannot be written) the temp
        directory; None when neither can be written.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    text = (
        f"command: {' '.join(sys.argv)}\n"
        f"time: {datetime.now(UTC).isoformat()}\n"
        f"error: {failure.line()}\n\n" + "".join(traceback.format_exception(exc))
    )
    for d in dict.fromkeys([directory, Path(tempfile.gettempdir()) / "mlray-logs"]):
        path = d / f"error-{stamp}-{os.getpid()}.log"
        try:
            d.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError:
            continue
        return path
    return None


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
    """A rich table of dict rows, printed to stdout (values as written, never as markup)."""
    if not rows:
        Console().print(Text(f"{title}: (no rows)"))
        return
    table = Table(title=Text(title))
    for col in rows[0]:
        table.add_column(Text(str(col)), overflow="fold")
    for r in rows:
        table.add_row(*[Text(_fmt(v)) for v in r.values()])
    Console().print(table)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)
