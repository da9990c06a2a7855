"""The online store contract: latest row per entity, written conditionally, read in one trip.

A backend stores, per (feature view, entity), the row the point-in-time rule
picks at materialization time: its values, ``event_time`` and
``available_time``. Writes never go backwards (a row replaces the stored one
only if its ``(event_time, available_time)`` is not older) and expire at
``event_time + ttl``. Reads return what is stored; the TTL check at request
time, defaults and names live in :mod:`mlray.online.reader`, the same for
every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from mlray.features.feature_view import FeatureView

# One entity's stored row, flat for speed: ``(event_us, available_us, *values in schema order)``,
# times in microseconds since the epoch (UTC).
StoredRow = tuple


@dataclass(frozen=True)
class WriteStats:
    """What one :meth:`OnlineStore.write` did.

    ``applied`` rows replaced (or created) a stored row; ``unchanged`` were
    stored already, identically; ``older`` were refused because a newer row is
    stored; ``expired`` were dropped before writing because their TTL had
    already passed.
    """

    rows: int
    applied: int
    unchanged: int
    older: int
    expired: int
    newest_event_us: int | None


@dataclass(frozen=True)
class ViewState:
    """Per-view bookkeeping kept next to the data (so a flushed store starts over)."""

    newest_event_us: int | None = None
    watermark_us: int | None = None
    materialized_at_us: int | None = None
    table_version: int | None = None
    last_applied: int = 0


class OnlineStore(Protocol):
    """A key-value store of the latest feature rows (Redis; anything with a conditional write)."""

    def write(self, view: FeatureView, rows: pa.Table, now_us: int) -> WriteStats:
        """Conditionally upsert ``rows`` (join keys, event_time, available_time, every feature)."""
        ...

    def read(
        self, requests: Sequence[tuple[FeatureView, Sequence[Sequence[object]]]]
    ) -> list[list[StoredRow | None]]:
        """Per (view, entity key tuples): the stored rows, None where absent. One round trip."""
        ...

    def get_state(self, view: str) -> ViewState:
        """The view's bookkeeping (empty state if never materialized)."""
        ...

    def update_state(self, view: str, state: ViewState) -> None:
        """Merge ``state`` in: times only move forward; version and counts are replaced."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
