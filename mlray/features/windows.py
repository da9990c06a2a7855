"""Sliding-window aggregates as step-aligned snapshots, vectorised over many entities.

Feature transforms call :func:`window_snapshots` on a batch holding complete
event histories. A snapshot at step boundary ``T`` covers events with
``T - w <= time < T`` for each window ``w``. Rows are emitted exactly at the
boundaries where some window's value changes (an event enters, or leaves
one of the windows), so a point-in-time lookup at any instant sees the
exact window values as of the last boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

_SHIFT = np.int64(1) << np.int64(32)


def window_snapshots(
    events: pd.DataFrame,
    *,
    keys: Sequence[str],
    time: str,
    sums: Mapping[str, str],
    windows: Mapping[str, timedelta],
    step: timedelta = timedelta(hours=1),
    last: Sequence[str] = (),
) -> pd.DataFrame:
    """Window sums per entity at every step boundary where one changes.

    Args:
        events: rows with ``keys``, a tz-aware ``time`` column and value columns.
        keys: entity key columns.
        time: event time column.
        sums: ``{output_prefix: value_column}``; output ``f"{prefix}_{window}"``.
        windows: ``{label: length}``; each a multiple of ``step``.
        step: snapshot grid.
        last: value columns whose latest value before ``T`` is also output.

    Returns:
        One row per (entity, boundary) with ``keys``, ``event_time`` (UTC) and
        the aggregates.
    """
    step_us = int(step.total_seconds() * 1e6)
    spans = {w: int(d.total_seconds() * 1e6) // step_us for w, d in windows.items()}
    if any(int(d.total_seconds() * 1e6) % step_us for d in windows.values()):
        raise ValueError("every window must be a multiple of the step")
    cols = [*keys, time, *set(sums.values()), *last]
    empty = pd.DataFrame(
        columns=[*keys, "event_time", *[f"{p}_{w}" for p in sums for w in windows], *last]
    )
    if events.empty:
        return empty
    ev = events[list(dict.fromkeys(cols))].sort_values(time, kind="stable")
    code = ev.groupby(list(keys), sort=False).ngroup().to_numpy().astype(np.int64)
    tus = pd.DatetimeIndex(ev[time]).tz_convert("UTC").as_unit("us").asi8
    bucket = tus // step_us
    k = code * _SHIFT + bucket
    order = np.argsort(k, kind="stable")
    k = k[order]
    cum = {
        c: np.concatenate([[0.0], np.cumsum(ev[c].to_numpy(dtype=float)[order])])
        for c in set(sums.values())
    }
    uniq = np.unique(k)
    cand = np.unique(np.concatenate([uniq + 1] + [uniq + 1 + s for s in spans.values()]))
    out = {}
    hi = np.searchsorted(k, cand, side="left")
    for prefix, c in sums.items():
        for w, s in spans.items():
            lo = np.searchsorted(k, cand - s, side="left")
            lo = np.maximum(lo, np.searchsorted(k, (cand >> 32) << 32, side="left"))
            out[f"{prefix}_{w}"] = cum[c][hi] - cum[c][lo]
    for c in last:
        out[c] = ev[c].to_numpy()[order][hi - 1]
    first_row = (
        ev.iloc[order]
        .drop_duplicates(subset=list(keys))
        .set_index(pd.Index(code[order][np.r_[True, np.diff(code[order]) != 0]]))
    )
    cand_code = cand >> 32
    frame = first_row.loc[cand_code, list(keys)].reset_index(drop=True)
    frame["event_time"] = pd.to_datetime((cand & (_SHIFT - 1)) * step_us, unit="us", utc=True)
    for name, values in out.items():
        frame[name] = values
    return frame
