"""Synthetic click-stream demo data: an impressions log and an item catalog, as Delta tables.

Hidden click model (the generator's ground truth; features computed from history
are predictive because of it):

* Users: latent propensity ``N(0, 0.8)``; activity ``lognormal(0, 1)`` scaled so the
  mean is ``impressions_per_user_day`` (impressions per day ~ ``Poisson(activity)``);
  a preferred device (used for 70% of impressions, the rest follow the global mix);
  a usual log-price level ``N(mean, std)`` of the catalog's log prices.
* Items: a category (8 of them, each with a typical price), a price
  ``category price * lognormal(0, 0.35)``, a latent quality ``N(0, 0.6)`` and a
  popularity weight ``exp(0.8 * quality + N(0, 0.8))``.
* Exposure: 60% of impressions show an item priced near the user's usual level
  (nearest by log price, plus a small random rank offset), 40% an item drawn by
  popularity. Event hours follow a diurnal curve peaking around 20:00 UTC.
* Click: ``sigmoid(-3.4 + propensity + quality + 0.3 cos(2pi (hour - 21) / 24)
  + device effect - 1.2 log(price / user's usual price))``; device effects are
  mobile -0.15, desktop +0.15, tablet +0.05. Overall click rate is about 5-10%.
* Catalog: every item has a row at ``start``; each day ~3% of items change price
  (``* lognormal(0, 0.12)``) at a random time, 5% of those also change category.

Drift (``drift_after=d``): at the start of day ``d`` about 90% of items get ~40% dearer
(catalog rows at that instant), exposure targets prices 40% higher and 60% of
impressions move to mobile. The click model itself is unchanged, so clicks drop
because prices exceed users' usual level.

Each day is generated with ``np.random.default_rng([seed, stream, day])``, so the same
arguments give identical tables and memory is bounded by one day of impressions. Rows are
written to Parquet in order (sorted by ``event_time``) and committed once per table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlray.errors import ConfigError
from mlray.offline.delta_files import commit, table_filesystem, write_file

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
DEVICES = ("mobile", "desktop", "tablet")
CATEGORIES = {
    "books": 15.0,
    "electronics": 220.0,
    "clothing": 45.0,
    "home": 60.0,
    "sports": 55.0,
    "beauty": 25.0,
    "toys": 30.0,
    "grocery": 8.0,
}
TIMESTAMP = pa.timestamp("us", tz="UTC")
IMPRESSIONS_SCHEMA = pa.schema(
    [
        ("impression_id", pa.int64()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("event_time", TIMESTAMP),
        ("device", pa.string()),
        ("price", pa.float64()),
        ("clicked", pa.bool_()),
    ]
)
CATALOG_SCHEMA = pa.schema(
    [
        ("item_id", pa.int64()),
        ("event_time", TIMESTAMP),
        ("category", pa.string()),
        ("price", pa.float64()),
    ]
)

_DEVICE_MIX = np.array([0.45, 0.40, 0.15])
_DEVICE_EFFECT = np.array([-0.15, 0.15, 0.05])
_HOUR_WEIGHTS = np.array(
    [2, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 7, 8, 7, 6, 6, 7, 8, 10, 12, 14, 13, 9, 5], float
)
_HOUR_P = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
_HOUR_EFFECT = 0.3 * np.cos(2 * np.pi * (np.arange(24) - 21) / 24)
_BASE_LOGIT, _PRICE_SENSITIVITY = -3.4, 1.2
_CHANGE_RATE, _CATEGORY_CHANGE_RATE = 0.03, 0.05
_DRIFT_PRICE, _DRIFT_ITEM_SHARE, _DRIFT_MOBILE = 1.4, 0.9, 0.6
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


@dataclass(frozen=True)
class _World:
    """Static latent attributes of users and items."""

    propensity: np.ndarray
    activity: np.ndarray
    device: np.ndarray
    log_usual: np.ndarray
    quality: np.ndarray
    popularity: np.ndarray
    category: np.ndarray
    price: np.ndarray


@dataclass(frozen=True)
class _Changes:
    """One day's catalog rows, sorted by (item, time); ``t`` is microseconds into the day."""

    item: np.ndarray
    t: np.ndarray
    price: np.ndarray
    category: np.ndarray


def _make_world(users: int, items: int, seed: int, per_day: float) -> _World:
    """Draw the users' and items' latent attributes."""
    rng = np.random.default_rng([seed, 0])
    category = rng.integers(0, len(CATEGORIES), items)
    price = np.round(
        np.array(list(CATEGORIES.values()))[category] * rng.lognormal(0, 0.35, items), 2
    )
    quality = rng.normal(0, 0.6, items)
    popularity = np.exp(0.8 * quality + rng.normal(0, 0.8, items))
    log_price = np.log(price)
    return _World(
        propensity=rng.normal(0, 0.8, users),
        activity=per_day * rng.lognormal(0, 1.0, users) / np.exp(0.5),
        device=rng.choice(len(DEVICES), users, p=_DEVICE_MIX),
        log_usual=rng.normal(log_price.mean(), log_price.std() + 0.1, users),
        quality=quality,
        popularity=popularity / popularity.sum(),
        category=category,
        price=price,
    )


def _day_changes(
    rng: np.random.Generator, price: np.ndarray, category: np.ndarray, drift: bool
) -> _Changes:
    """Draw one day's catalog changes, updating ``price`` and ``category`` in place."""
    items, parts = price.size, []
    if drift:
        hit = np.flatnonzero(rng.random(items) < _DRIFT_ITEM_SHARE)
        price[hit] = np.round(price[hit] * rng.lognormal(np.log(_DRIFT_PRICE), 0.05, hit.size), 2)
        parts.append((hit, np.zeros(hit.size, np.int64), price[hit], category[hit]))
    n = rng.binomial(items, _CHANGE_RATE)
    idx = rng.choice(items, n, replace=False)
    t = rng.integers(1, DAY_US, n)
    price[idx] = np.maximum(0.5, np.round(price[idx] * rng.lognormal(0, 0.12, n), 2))
    moved = idx[rng.random(n) < _CATEGORY_CHANGE_RATE]
    category[moved] = (category[moved] + rng.integers(1, len(CATEGORIES), moved.size)) % len(
        CATEGORIES
    )
    parts.append((idx, t, price[idx], category[idx]))
    item, t, p, c = (np.concatenate(col) for col in zip(*parts, strict=True))
    order = np.lexsort((t, item))
    return _Changes(item[order].astype(np.int64), t[order], p[order], c[order])


def _catalog(world: _World, days: int, seed: int, drift_after: int | None) -> list[_Changes]:
    """Draw the catalog changes of every day (small: a few percent of items per day)."""
    price, category = world.price.copy(), world.category.copy()
    return [
        _day_changes(np.random.default_rng([seed, 2, day]), price, category, day == drift_after)
        for day in range(days)
    ]


def _catalog_table(world: _World, changes: list[_Changes], start_us: int) -> pa.Table:
    """Assemble the catalog rows (initial state plus changes) sorted by (event_time, item_id)."""
    items = world.price.size
    item = np.concatenate([np.arange(items)] + [c.item for c in changes])
    t = np.concatenate(
        [np.zeros(items, np.int64)] + [c.t + d * DAY_US for d, c in enumerate(changes)]
    )
    price = np.concatenate([world.price] + [c.price for c in changes])
    category = np.concatenate([world.category] + [c.category for c in changes])
    order = np.lexsort((item, t))
    return pa.Table.from_arrays(
        [
            pa.array(item[order], pa.int64()),
            pa.array(t[order] + start_us, TIMESTAMP),
            pc.take(pa.array(list(CATEGORIES)), pa.array(category[order])),
            pa.array(price[order], pa.float64()),
        ],
        schema=CATALOG_SCHEMA,
    )


def _pick_items(
    rng: np.random.Generator, world: _World, user: np.ndarray, price: np.ndarray, drift: bool
) -> np.ndarray:
    """Choose the item of each impression: near the user's price level, or by popularity."""
    n, items = user.size, price.size
    by_price = np.argsort(np.log(price), kind="stable")
    target = (
        world.log_usual[user] + rng.normal(0, 0.3, n) + (np.log(_DRIFT_PRICE) if drift else 0.0)
    )
    width = max(2, items // 30)
    pos = np.searchsorted(np.log(price)[by_price], target) + rng.integers(-width, width + 1, n)
    near = by_price[np.clip(pos, 0, items - 1)]
    popular = rng.choice(items, n, p=world.popularity)
    return np.where(rng.random(n) < 0.6, near, popular)


def _price_at(
    item: np.ndarray, t: np.ndarray, day_price: np.ndarray, changes: _Changes
) -> np.ndarray:
    """Catalog price in effect at ``t`` (microseconds into the day) for each impression."""
    if changes.item.size == 0:
        return day_price[item]
    j = np.searchsorted(changes.item * DAY_US + changes.t, item * DAY_US + t, side="right") - 1
    j0 = np.maximum(j, 0)
    return np.where((j >= 0) & (changes.item[j0] == item), changes.price[j0], day_price[item])


def _impressions_day(
    world: _World, day: int, seed: int, day_price: np.ndarray, changes: _Changes, drift: bool
) -> tuple[np.ndarray, ...]:
    """Draw one day of impressions; returns (user, item, t, device, price, clicked) sorted by t."""
    rng = np.random.default_rng([seed, 1, day])
    user = np.repeat(np.arange(world.activity.size, dtype=np.int64), rng.poisson(world.activity))
    n = user.size
    hour = rng.choice(24, n, p=_HOUR_P)
    t = hour * HOUR_US + rng.integers(0, HOUR_US, n)
    opening = _price_at(
        np.arange(day_price.size), np.zeros(day_price.size, np.int64), day_price, changes
    )
    item = _pick_items(rng, world, user, opening, drift)
    device = np.where(
        rng.random(n) < 0.7, world.device[user], rng.choice(len(DEVICES), n, p=_DEVICE_MIX)
    )
    device = np.where(rng.random(n) < (_DRIFT_MOBILE if drift else 0.0), 0, device)
    price = _price_at(item, t, day_price, changes)
    logit = (
        _BASE_LOGIT
        + world.propensity[user]
        + world.quality[item]
        + _HOUR_EFFECT[hour]
        + _DEVICE_EFFECT[device]
        - _PRICE_SENSITIVITY * (np.log(price) - world.log_usual[user])
    )
    clicked = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))
    order = np.argsort(t, kind="stable")
    return tuple(a[order] for a in (user, item, t, device, price, clicked))


def _end_of_day_prices(day_price: np.ndarray, changes: _Changes) -> np.ndarray:
    """Prices after applying a day's changes (the last change per item wins)."""
    out = day_price.copy()
    last = (
        np.append(changes.item[1:] != changes.item[:-1], True)
        if changes.item.size
        else np.array([], bool)
    )
    out[changes.item[last]] = changes.price[last]
    return out


def _impression_batches(
    world: _World,
    changes: list[_Changes],
    seed: int,
    drift_after: int | None,
    start_us: int,
    totals: dict[str, int],
    on_day: Callable[[], None],
) -> Iterator[pa.RecordBatch]:
    """Yield one record batch per day, accumulating row and click counts in ``totals``."""
    price, devices = world.price.copy(), pa.array(DEVICES)
    for day, day_changes in enumerate(changes):
        drift = drift_after is not None and day >= drift_after
        user, item, t, device, shown, clicked = _impressions_day(
            world, day, seed, price, day_changes, drift
        )
        ids = np.arange(totals["rows"], totals["rows"] + user.size, dtype=np.int64)
        totals["rows"] += user.size
        totals["clicks"] += int(clicked.sum())
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(ids),
                pa.array(user),
                pa.array(item.astype(np.int64)),
                pa.array(t + start_us + day * DAY_US, TIMESTAMP),
                pc.take(devices, pa.array(device)),
                pa.array(shown, pa.float64()),
                pa.array(clicked, pa.bool_()),
            ],
            schema=IMPRESSIONS_SCHEMA,
        )
        price = _end_of_day_prices(price, day_changes)
        on_day()


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
    world = _make_world(users, items, seed, float(impressions_per_user_day))
    changes = _catalog(world, days, seed, drift_after)
    _write_delta(
        catalog_uri,
        CATALOG_SCHEMA,
        _catalog_table(world, changes, start_us).to_batches(),
        storage_options,
    )
    totals = {"rows": 0, "clicks": 0}
    with _progress(progress) as bar:
        task = bar.add_task("Generating impressions", total=days)
        batches = _impression_batches(
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
