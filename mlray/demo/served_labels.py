"""Delayed labels for served traffic: the demo's hidden click model applied to logged requests.

Each request in the prediction log gets the outcome the demo generator would
have drawn for it: the click probability of
:func:`mlray.demo.clickmodel.click_probability` for the logged user, item,
device and price at the request's hour, with the generator's own latent users
and items. Those are not stored anywhere: they are rebuilt with
:func:`~mlray.demo.clickmodel.make_world` from the seed and the number of
users the demo was generated with (pass the same ``seed`` and ``users`` as to
``mlray demo generate``; a ``users`` the impressions contradict is refused);
the number of items and the window's start (the generator's hours count from
it) are read from the ``item_catalog`` table, whose first rows are one per
item at exactly the start. A request the model cannot score (an unknown user
or item, no ``device`` or ``price`` in its context) gets no label.

A label lands ``delay`` seconds after its request, drawn per request within
``delay_s``. Only labels whose ``label_time`` is at or before ``now`` are
written, so running again later adds the labels landed since; a request
already labelled is never labelled again (the table is idempotent per
``request_id``). The click and the delay of a request are drawn from a hash
of ``(seed, request_id)``, so a request gets the same label whichever run
writes it.

Table ``<data_root>/raw/<out>``: ``request_id``, ``user_id``, ``item_id``,
``request_time``, ``label_time``, ``clicked`` (0/1).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlray.config import Settings
from mlray.demo.clickmodel import DEVICES, HOUR_US, TIMESTAMP, click_probability, make_world
from mlray.errors import ConfigError, NotFoundError
from mlray.features.times import now_us, to_us
from mlray.offline.predictions import read_predictions

DEFAULT_DELAY_S = (60.0, 1800.0)
DEFAULT_USERS = 2000  # mlray demo generate's default
SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("request_time", TIMESTAMP),
        ("label_time", TIMESTAMP),
        ("clicked", pa.int64()),
    ]
)
_TO_UNIT = 2.0**-53


@dataclass(frozen=True)
class LabelRun:
    """What one :func:`label_served` run did.

    Attributes:
        uri: the labels table.
        written: labels added by this run.
        total: labels in the table after it.
        pending: logged requests whose label lands after ``now`` (not written yet).
        skipped: logged requests the click model cannot label (an unknown user or item, or
            no device or price in the context).
        clicks: clicks among the labels written.
    """

    uri: str
    written: int
    total: int
    pending: int
    skipped: int
    clicks: int


def delay_range(delay_s: float | Sequence[float]) -> tuple[float, float]:
    """``delay_s`` as ``(min, max)`` seconds: one number is a fixed delay.

    Raises:
        ConfigError: negative, not finite, or min above max.
    """
    lo, hi = (delay_s, delay_s) if isinstance(delay_s, int | float) else tuple(delay_s)
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
        raise ConfigError(
            f"The label delay must be 0 <= min <= max seconds, got {lo!r}..{hi!r}; "
            "e.g. --delay-min 60 --delay-max 1800."
        )
    return float(lo), float(hi)


def write_served_labels(
    settings: Settings,
    table: str = "predictions",
    out: str = "served_labels",
    delay_s: float | Sequence[float] = DEFAULT_DELAY_S,
    seed: int = 0,
    *,
    users: int = DEFAULT_USERS,
    now: datetime | None = None,
    overwrite: bool = False,
) -> int:
    """Label the logged requests of ``table`` whose labels have landed; return how many were added.

    See :func:`label_served` for the arguments.
    """
    return label_served(
        settings, table, out, delay_s, seed, users=users, now=now, overwrite=overwrite
    ).written


def label_served(
    settings: Settings,
    table: str = "predictions",
    out: str = "served_labels",
    delay_s: float | Sequence[float] = DEFAULT_DELAY_S,
    seed: int = 0,
    *,
    users: int = DEFAULT_USERS,
    now: datetime | None = None,
    overwrite: bool = False,
) -> LabelRun:
    """Append the landed labels of the logged requests not labelled yet to ``raw/<out>``.

    Args:
        settings: the data root (prediction log, demo tables, labels table).
        table: the prediction log table.
        out: the labels table's name under ``<data_root>/raw``.
        delay_s: seconds from request to label: a fixed delay or a ``(min, max)`` range
            (uniform per request).
        seed: the seed the demo data was generated with.
        users: the number of users it was generated with.
        now: labels with ``label_time`` after it have not landed (default: the clock).
        overwrite: replace the table instead of adding to it.

    Raises:
        ConfigError: a bad delay, seed or users, or a ``users`` the demo's impressions
            contradict (ids beyond it, or none in its upper half).
        SchemaError: ``now`` has no time zone.
        NotFoundError: no prediction log, or no demo ``item_catalog``/``impressions`` table.
    """
    lo, hi = delay_range(delay_s)
    for name, value, least in (("seed", seed, 0), ("users", users, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{name} must be an integer >= {least}, got {value!r}.")
    landed_by = to_us(now) if now is not None else now_us()
    start_us, items = _demo_window(settings)
    _check_users(settings, users)
    world = make_world(users, items, seed, 1.0)  # activity is not used: any rate will do
    uri = settings.table_uri("raw", out)
    opts = settings.storage_options or None
    known = set() if overwrite else _labelled(uri, opts)
    rows = read_predictions(
        settings, table, columns=["request_id", "request_time", "entities", "context"]
    )
    req = _requests(rows, known, users, items)
    u_click, u_delay = _uniforms(seed, req["request_id"])
    label_us = req["request_time"] + np.round((lo + u_delay * (hi - lo)) * 1e6).astype(np.int64)
    landed = req["ok"] & (label_us <= landed_by)
    hour = ((req["request_time"] - start_us) // HOUR_US) % 24
    p = click_probability(world, req["user"], req["item"], hour, req["device"], req["price"])
    clicked = (u_click < p).astype(np.int64)
    idx = np.flatnonzero(landed)
    idx = idx[np.argsort(label_us[idx], kind="stable")]
    new = pa.Table.from_arrays(
        [
            pa.array(req["request_id"], pa.string()).take(idx),
            pa.array(req["user"][idx]),
            pa.array(req["item"][idx]),
            pa.array(req["request_time"][idx], TIMESTAMP),
            pa.array(label_us[idx], TIMESTAMP),
            pa.array(clicked[idx]),
        ],
        schema=SCHEMA,
    )
    if new.num_rows or overwrite:
        from deltalake import write_deltalake

        write_deltalake(uri, new, mode="overwrite" if overwrite else "append", storage_options=opts)
    return LabelRun(
        uri=uri,
        written=new.num_rows,
        total=len(known) + new.num_rows,
        pending=int((req["ok"] & ~landed).sum()),
        skipped=int((~req["ok"]).sum()),
        clicks=int(clicked[idx].sum()),
    )


def _demo_window(settings: Settings) -> tuple[int, int]:
    """(start in µs, number of items) of the demo data, from its ``item_catalog`` table."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = settings.table_uri("raw", "item_catalog")
    try:
        cat = DeltaTable(uri, storage_options=settings.storage_options or None).to_pyarrow_table(
            columns=["item_id", "event_time"]
        )
    except TableNotFoundError as e:
        raise NotFoundError(
            f"Demo item catalog {uri} does not exist; the click model needs the demo data: run "
            "`mlray demo generate` (with the seed and users you pass here) first."
        ) from e
    if cat.num_rows == 0:
        raise NotFoundError(f"Demo item catalog {uri} is empty; run `mlray demo generate` again.")
    start = pc.min(cat.column("event_time").cast(pa.int64())).as_py()
    return int(start), int(pc.max(cat.column("item_id")).as_py()) + 1


def _check_users(settings: Settings, users: int) -> None:
    """Refuse a user count the demo's impressions contradict (its latent users would differ).

    Ids beyond ``users``, or none in the upper half of them (every user is active, so that
    cannot happen with ``users`` users), mean the data was generated with another count.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = settings.table_uri("raw", "impressions")
    try:
        ids = DeltaTable(uri, storage_options=settings.storage_options or None).to_pyarrow_table(
            columns=["user_id"]
        )
    except TableNotFoundError as e:
        raise NotFoundError(
            f"Demo impressions {uri} do not exist; run `mlray demo generate` first."
        ) from e
    top = (pc.max(ids.column("user_id")).as_py() or 0) + 1 if ids.num_rows else 0
    if top > users or 2 * top <= users:
        raise ConfigError(
            f"The demo impressions {uri} hold user ids up to {top - 1}, which does not fit "
            f"--users {users}: pass the --users (and --seed) `mlray demo generate` was run with."
        )


def _labelled(uri: str, opts: dict[str, str] | None) -> set[str]:
    """The request ids the labels table already holds (none when it does not exist yet)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(uri, storage_options=opts)
    except TableNotFoundError:
        return set()
    return set(dt.to_pyarrow_table(columns=["request_id"]).column("request_id").to_pylist())


def _requests(rows: pa.Table, known: set[str], users: int, items: int) -> dict[str, np.ndarray]:
    """The requests to label: first row per request id not in ``known``, decoded.

    ``ok`` marks the rows the click model can score (known user and item, a device and a price).
    """
    ids = rows.column("request_id").to_pylist()
    times = rows.column("request_time").cast(pa.int64()).to_numpy(zero_copy_only=False)
    ents, ctxs = rows.column("entities").to_pylist(), rows.column("context").to_pylist()
    seen = set(known)
    keep: list[int] = []
    for i, rid in enumerate(ids):
        if rid is not None and rid not in seen:
            seen.add(rid)
            keep.append(i)
    n = len(keep)
    out = {
        "request_id": np.array([ids[i] for i in keep], dtype=object),
        "request_time": times[keep].astype(np.int64) if n else np.zeros(0, np.int64),
        "user": np.zeros(n, np.int64),
        "item": np.zeros(n, np.int64),
        "device": np.zeros(n, np.int64),
        "price": np.ones(n),
        "ok": np.zeros(n, bool),
    }
    for j, i in enumerate(keep):
        parsed = _parse(ents[i], ctxs[i], users, items)
        if parsed is not None:
            out["user"][j], out["item"][j], out["device"][j], out["price"][j] = parsed
            out["ok"][j] = True
    return out


def _parse(
    entities: str | None, context: str | None, users: int, items: int
) -> tuple[int, int, int, float] | None:
    """(user, item, device index, price) of one logged request, or None if it cannot be scored."""
    try:
        e, c = json.loads(entities or "{}"), json.loads(context or "{}")
        user, item, price = int(e["user_id"]), int(e["item_id"]), float(c["price"])
        device = DEVICES.index(c["device"])
    except (KeyError, ValueError, TypeError):
        return None
    if not (0 <= user < users and 0 <= item < items and math.isfinite(price) and price > 0):
        return None
    return user, item, device, price


def _uniforms(seed: int, request_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two uniform [0, 1) draws per request (click, delay) from a hash of ``(seed, request_id)``."""
    u = np.empty((len(request_ids), 2))
    for j, rid in enumerate(request_ids):
        h = hashlib.blake2b(f"{seed}/{rid}".encode(), digest_size=16).digest()
        u[j] = (int.from_bytes(h[:8], "big") >> 11, int.from_bytes(h[8:], "big") >> 11)
    return u[:, 0] * _TO_UNIT, u[:, 1] * _TO_UNIT
