"""Synthetic click-stream demo data: an impressions log and an item catalog, as Delta tables.

The rows come from the hidden click model in :mod:`mlray.demo.clickmodel` (users,
items, catalog changes, impressions, drift). Each day is generated with
``np.random.default_rng([seed, stream, day])``, so the same arguments give identical
tables and memory is bounded by one day of impressions. Rows are written to Parquet in
order (sorted by ``event_time``) and committed once per table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from mlray.demo.clickmodel import (
    CATALOG_SCHEMA,
    IMPRESSIONS_SCHEMA,
    catalog_changes,
    catalog_table,
    impression_batches,
    make_world,
)
from mlray.errors import ConfigError
from mlray.offline.delta_files import commit, table_filesystem, write_file

__all__ = [
    "CATALOG_SCHEMA",
    "DEFAULT_START",
    "IMPRESSIONS_SCHEMA",
    "GenerateSummary",
    "generate_clickstream",
]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
_FILE_ROWS = 4_000_000  # roll to a new Parquet file once this many rows are written


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`generate_clickstream` wrote.

    Attributes:
        impressions_uri: URI of the impressions Delta table.
        catalog_uri: URI of the item catalog Delta table.
        impressions: impression rows written.
        catalog_changes: catalog rows after the initial one per item.
        users: number of users.
        items: number of items.
        start: first instant covered (UTC).
        end: ``start + days``; all event times are before it.
        click_rate: share of impressions clicked.
    """

    impressions_uri: str
    catalog_uri: str
    impressions: int
    catalog_changes: int
    users: int
    items: int
    start: datetime
    end: datetime
    click_rate: float

    @property
    def catalog_rows(self) -> int:
        """Rows of the item catalog table: one initial row per item plus every change."""
        return self.items + self.catalog_changes


def _write_delta(
    uri: str,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    storage_options: dict[str, str] | None,
) -> None:
    """Write ``batches`` in order into Parquet files of <= ~_FILE_ROWS rows; commit one overwrite.

    Writing the files here (not ``write_deltalake``) keeps the row order, so the tables are
    sorted by time and byte-identical for a seed; memory stays at one batch.
    """
    fs = table_filesystem(uri, storage_options)
    it = iter(batches)
    state = {"next": next(it, None)}

    def one_file() -> Iterator[pa.RecordBatch]:
        rows = 0
        while state["next"] is not None and rows < _FILE_ROWS:
            batch = state["next"]
            yield batch
            rows += batch.num_rows
            state["next"] = next(it, None)

    actions = [write_file(fs, one_file(), schema)]
    while state["next"] is not None:
        actions.append(write_file(fs, one_file(), schema))
    commit(uri, schema, actions, mode="overwrite", storage_options=storage_options)


def _validate(
    users: int,
    items: int,
    days: int,
    seed: int,
    drift_after: int | None,
    start: datetime,
    per_day: float,
) -> None:
    """Raise :class:`ConfigError` for arguments the generator cannot honour."""
    for name, value in (("users", users), ("items", items), ("days", days)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{name} must be an integer >= 1, got {value!r}; pass e.g. {name}=10."
            )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}; pass e.g. seed=0.")
    if not per_day > 0:
        raise ConfigError(f"impressions_per_user_day must be > 0, got {per_day!r}; pass e.g. 6.0.")
    if drift_after is not None and (
        isinstance(drift_after, bool)
        or not isinstance(drift_after, int)
        or not 0 <= drift_after < days
    ):
        raise ConfigError(
            f"drift_after must be a day index in [0, {days}) or None, got {drift_after!r}; "
            f"pass e.g. drift_after={days // 2} or omit it."
        )
    if start.tzinfo is None or start.utcoffset() is None:
        raise ConfigError(
            f"start must be timezone-aware, got {start!r}; pass e.g. "
            "datetime(2026, 1, 1, tzinfo=timezone.utc)."
        )


def _progress(enabled: bool):
    """A transient rich progress bar on stderr (disabled when ``enabled`` is false)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )


def generate_clickstream(
    out: str,
    *,
    users: int = 2000,
    items: int = 300,
    days: int = 14,
    seed: int = 0,
    drift_after: int | None = None,
    start: datetime | None = None,
    impressions_per_user_day: float = 6.0,
    storage_options: dict[str, str] | None = None,
    progress: bool = True,
) -> GenerateSummary:
    """Write the ``impressions`` and ``item_catalog`` Delta tables under ``out``.

    Each table is replaced in one Delta commit (time travel keeps the old version);
    impressions are streamed day by day into Parquet files, in row order, so memory
    stays bounded by one day of data.

    Args:
        out: base URI or local path; tables go to ``{out}/impressions`` and ``{out}/item_catalog``.
        users: number of users (ids ``0..users-1``).
        items: number of items (ids ``0..items-1``).
        days: number of days of history.
        seed: random seed; the same arguments give identical tables.
        drift_after: 0-based day index from which prices and device mix drift; None for no drift.
        start: first instant (tz-aware); defaults to 2026-01-01T00:00:00Z.
        impressions_per_user_day: mean impressions per user and day.
        storage_options: object-store options (as for ``deltalake.write_deltalake``).
        progress: show a transient progress bar over days on stderr.

    Returns:
        A :class:`GenerateSummary` of what was written.

    Raises:
        ConfigError: an argument is out of range.
    """
    start = DEFAULT_START if start is None else start
    _validate(users, items, days, seed, drift_after, start, impressions_per_user_day)
    start = start.astimezone(UTC)
    start_us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    impressions_uri, catalog_uri = f"{out}/impressions", f"{out}/item_catalog"
    if "://" not in out:
        for uri in (impressions_uri, catalog_uri):
            Path(uri).mkdir(parents=True, exist_ok=True)
    world = make_world(users, items, seed, float(impressions_per_user_day))
    changes = catalog_changes(world, days, seed, drift_after)
    _write_delta(
        catalog_uri,
        CATALOG_SCHEMA,
        catalog_table(world, changes, start_us).to_batches(),
        storage_options,
    )
    totals = {"rows": 0, "clicks": 0}
    with _progress(progress) as bar:
        task = bar.add_task("Generating impressions", total=days)
        batches = impression_batches(
            world, changes, seed, drift_after, start_us, totals, lambda: bar.advance(task)
        )
        _write_delta(impressions_uri, IMPRESSIONS_SCHEMA, batches, storage_options)
    return GenerateSummary(
        impressions_uri=impressions_uri,
        catalog_uri=catalog_uri,
        impressions=totals["rows"],
        catalog_changes=sum(c.item.size for c in changes),
        users=users,
        items=items,
        start=start,
        end=start + timedelta(days=days),
        click_rate=totals["clicks"] / max(totals["rows"], 1),
    )
