"""When a set of views' windows are full: each view's first source event plus its lookback.

A view with windowed aggregates (``FeatureView.lookback``, e.g. 7 days and an
hour for 7-day counts) computes them from its raw source's events; for the
first ``lookback`` after the source's first event its windows hold less than
a full window of history, so counts and window sums there are lower than
anything serving sees later. A training set built for serving should start
once every view it joins is past that point (:func:`lookback_filled`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import deltalake
import pyarrow as pa
import pyarrow.compute as pc

from mlray.config import Settings
from mlray.features.feature_view import EVENT_TIME, FeatureView
from mlray.features.times import to_datetime, utc_column


@dataclass(frozen=True)
class LookbackStart:
    """The first instant at which every view's lookback has filled.

    Attributes:
        start: ``first_event + lookback`` of ``view``, the latest of the views'.
        view: the view that sets it.
        first_event: that view's first source event.
        lookback: that view's lookback.
    """

    start: datetime
    view: str
    first_event: datetime
    lookback: timedelta

    def describe(self) -> str:
        return (
            f"{self.start.isoformat()}: view {self.view!r} needs {self.lookback} of history "
            f"and its source starts {self.first_event.isoformat()}"
        )


def lookback_filled(settings: Settings, views: Iterable[FeatureView]) -> LookbackStart | None:
    """When every view in ``views`` with a lookback has a full window behind it.

    A view's first event is the earliest ``source_time`` of its raw source
    table (the windows fill from there, however its features were built);
    for a view whose source table is gone, the earliest ``event_time`` of its
    offline table. Views without a lookback, or without any rows, set nothing.

    Returns:
        The latest such instant, with the view that sets it; None when no view sets one.
    """
    best: LookbackStart | None = None
    for view in views:
        if view.lookback <= timedelta(0):
            continue
        first = _first_event(settings, view)
        if first is None:
            continue
        candidate = LookbackStart(first + view.lookback, view.name, first, view.lookback)
        if best is None or candidate.start > best.start:
            best = candidate
    return best


def _first_event(settings: Settings, view: FeatureView) -> datetime | None:
    opts = settings.storage_options or None
    if view.source is not None:
        uri = settings.table_uri("raw", view.source)
        if deltalake.DeltaTable.is_deltatable(uri, storage_options=opts):
            return _min_time(
                deltalake.DeltaTable(uri, storage_options=opts), view.source_time, settings
            )
    uri = settings.table_uri("features", view.name)
    if deltalake.DeltaTable.is_deltatable(uri, storage_options=opts):
        return _min_time(deltalake.DeltaTable(uri, storage_options=opts), EVENT_TIME, settings)
    return None


def _min_time(dt: deltalake.DeltaTable, column: str, settings: Settings) -> datetime | None:
    """The earliest ``column`` value, exactly.

    The files' statistics (truncated to milliseconds) say where it is; only
    the rows up to a millisecond after that are read. A table without
    statistics is read whole (that one column).
    """
    actions = pa.table(dt.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return None
    stat = f"min.{column}"
    data = dt.to_pyarrow_dataset()
    if stat in actions.column_names and actions.column(stat).null_count == 0:
        lowest = pc.min(actions.column(stat))
        below = pa.scalar(lowest.value + _MS[lowest.type.unit], lowest.type)
        values = data.to_table(columns=[column], filter=pc.field(column) < below).column(column)
    else:
        values = data.to_table(columns=[column]).column(column)
    if not pa.types.is_timestamp(values.type) or len(values) == values.null_count:
        return None
    return to_datetime(
        pc.min(utc_column(values, settings.default_timezone).cast(pa.int64())).as_py()
    )


_MS = {"s": 1, "ms": 1, "us": 1_000, "ns": 1_000_000}
