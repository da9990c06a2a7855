"""Time in mlray: UTC microseconds everywhere, one conversion each way, and the TTL rule.

Every timestamp mlray stores, joins or serves is ``timestamp[us, tz=UTC]`` in
Arrow (:data:`TIMESTAMP`) and an ``int`` of microseconds since the epoch in
Python. The functions here are the only conversions between those forms and
from what users pass in (aware datetimes, timestamp columns of any unit and
zone, naive columns with a configured default zone).

A TTL is a positive :class:`~datetime.timedelta` or ``None`` (no TTL); zero
or a negative TTL is a definition error, never a silent "no TTL".
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc

from mlray.errors import DefinitionError, SchemaError

TIMESTAMP = pa.timestamp("us", tz="UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

Column: TypeAlias = pa.Array | pa.ChunkedArray


def to_us(t: datetime) -> int:
    """An aware datetime as microseconds since the epoch.

    Raises:
        SchemaError: ``t`` has no time zone.
    """
    if t.tzinfo is None:
        raise SchemaError(
            f"Time {t.isoformat()} has no time zone; pass an aware datetime (tzinfo=UTC) or "
            "write it with Z or an offset, e.g. 2026-01-08T00:00:00Z."
        )
    return (t - EPOCH) // _US


def to_datetime(us: int | None) -> datetime | None:
    """Microseconds since the epoch as an aware UTC datetime (None stays None)."""
    return None if us is None else EPOCH + timedelta(microseconds=us)


def now_us() -> int:
    """The wall clock in microseconds since the epoch."""
    return time.time_ns() // 1000


def duration_us(d: timedelta) -> int:
    """A duration in whole microseconds (exact: no float rounding)."""
    return d // _US


def ttl_to_us(ttl: timedelta | None, owner: str) -> int | None:
    """A TTL in microseconds; None means no TTL.

    Args:
        ttl: a positive duration, or None.
        owner: what the TTL belongs to, for the message (e.g. ``"feature view 'users'"``).

    Raises:
        DefinitionError: the TTL is zero or negative.
    """
    if ttl is None:
        return None
    if ttl <= timedelta(0):
        raise DefinitionError(
            f"{owner}: ttl must be positive, got {ttl}; use ttl=None for values that never expire."
        )
    return duration_us(ttl)


def utc_column(col: Column, default_timezone: str | None) -> Column:
    """A timestamp column as UTC microseconds; naive values are read in ``default_timezone``.

    Callers check at the boundary that naive columns are allowed
    (``inputs.check_time_column``); without a default zone they are read as UTC.
    """
    if col.type.tz is None:
        col = pc.assume_timezone(col, default_timezone or "UTC")
    return col if col.type == TIMESTAMP else col.cast(TIMESTAMP)


def epoch_us(col: Column) -> Column:
    """A timestamp column (any unit; naive read as UTC) as int64 microseconds since the epoch."""
    return col.cast(TIMESTAMP).cast(pa.int64())
