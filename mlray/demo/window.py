"""The demo's time window: where the generated click stream starts and how many days it covers.

The online store expires values by the real clock (``event_time + ttl``), so demo
data meant to be materialized and served must end near now: by default the window
ends at the current hour (UTC), as ``make quickstart``'s does. A fixed start
(e.g. for byte-identical tables across runs) is still available.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlray.errors import ConfigError

DEFAULT_DAYS = 14
_DAY = timedelta(days=1)


def current_hour(now: datetime | None = None) -> datetime:
    """``now`` (default: the wall clock) truncated to the hour, in UTC."""
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def demo_window(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    days: int | None = None,
    now: datetime | None = None,
) -> tuple[datetime, int]:
    """The first instant and number of days of a demo click stream.

    Any two of ``start``, ``end`` and ``days`` fix the window; a window given by
    ``start`` and ``end`` must span whole days. With only ``start`` or only
    ``end``, ``days`` defaults to :data:`DEFAULT_DAYS`; with neither, the window
    ends at the current hour (:func:`current_hour`).

    Args:
        start: first instant (tz-aware).
        end: end of the window, exclusive (tz-aware).
        days: number of days (>= 1).
        now: the clock, for tests (default: the wall clock).

    Returns:
        ``(start, days)`` in UTC, as :func:`mlray.demo.generate.generate_clickstream` takes them.

    Raises:
        ConfigError: a naive time, days < 1, end not after start, a span that is
            not whole days, or all three given and inconsistent.
    """
    for name, t in (("start", start), ("end", end)):
        if t is not None and t.utcoffset() is None:
            raise ConfigError(
                f"The demo's {name} {t.isoformat()} has no time zone; "
                "write it like 2026-01-01T00:00:00Z."
            )
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise ConfigError(f"The demo's days must be an integer >= 1, got {days!r}; e.g. --days 14.")
    if start is not None and end is not None:
        span = end - start
        if span <= timedelta(0) or span % _DAY:
            raise ConfigError(
                f"The demo window {start.isoformat()} .. {end.isoformat()} must cover a whole, "
                "positive number of days; give --start and --days, or --end and --days instead."
            )
        if days is not None and days != span // _DAY:
            raise ConfigError(
                f"--start {start.isoformat()} and --end {end.isoformat()} span {span // _DAY} "
                f"days, not --days {days}; give only two of the three."
            )
        return start.astimezone(UTC), span // _DAY
    n = DEFAULT_DAYS if days is None else days
    if start is not None:
        return start.astimezone(UTC), n
    last = current_hour(now) if end is None else end.astimezone(UTC)
    return last - n * _DAY, n
