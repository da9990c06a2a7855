"""The demo's hidden click model: latent users and items, catalog changes and impressions.

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

Each day is drawn with ``np.random.default_rng([seed, stream, day])``, so the same
arguments give the same rows. :mod:`mlray.demo.generate` writes them as Delta tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def make_world(users: int, items: int, seed: int, per_day: float) -> _World:
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


def click_probability(
    world: _World,
    user: np.ndarray,
    item: np.ndarray,
    hour: np.ndarray,
    device: np.ndarray,
    price: np.ndarray,
) -> np.ndarray:
    """The hidden click probability of impressions (the one formula; see the module docstring).

    Args:
        world: the users' and items' latent attributes (:func:`make_world`).
        user, item: ids, indexes into ``world``.
        hour: hour of the day counted from the window's start (0..23).
        device: index into :data:`DEVICES`.
        price: the price shown.
    """
    logit = (
        _BASE_LOGIT
        + world.propensity[user]
        + world.quality[item]
        + _HOUR_EFFECT[hour]
        + _DEVICE_EFFECT[device]
        - _PRICE_SENSITIVITY * (np.log(price) - world.log_usual[user])
    )
    return 1.0 / (1.0 + np.exp(-logit))


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


def catalog_changes(world: _World, days: int, seed: int, drift_after: int | None) -> list[_Changes]:
    """Draw the catalog changes of every day (small: a few percent of items per day)."""
    price, category = world.price.copy(), world.category.copy()
    return [
        _day_changes(np.random.default_rng([seed, 2, day]), price, category, day == drift_after)
        for day in range(days)
    ]


def catalog_table(world: _World, changes: list[_Changes], start_us: int) -> pa.Table:
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
    clicked = rng.random(n) < click_probability(world, user, item, hour, device, price)
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


def impression_batches(
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
