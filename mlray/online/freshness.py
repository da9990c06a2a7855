"""Freshness of the online store: how far behind each view is, and how old served values are.

Two measures, per feature view:

* lag: now minus the newest ``event_time`` materialized (a gauge, refreshed by
  :func:`view_freshness` and after every materialization);
* age of served values: request time minus the ``event_time`` of the values a
  read returned (per read, the oldest returned per view, into a histogram).

Both are available from the Python API (:func:`view_freshness`,
``OnlineFeatures.ages_s()``) and, when Ray is initialized in the process, as
``ray.util.metrics`` (``mlray_online_lag_seconds``,
``mlray_online_value_age_seconds``), which the Ray dashboard's Prometheus
endpoint exports. A read never starts Ray.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ray

from mlray.features.times import to_datetime
from mlray.online.protocol import OnlineStore

AGE_BOUNDARIES_S: list[float] = [
    1,
    10,
    60,
    300,
    900,
    3600,
    4 * 3600,
    86_400,
    3 * 86_400,
    7 * 86_400,
]


@dataclass(frozen=True)
class ViewFreshness:
    """One view's online freshness at ``now``.

    ``lag_s`` is ``now - newest_event_time`` (None if nothing was materialized).
    """

    view: str
    newest_event_time: datetime | None
    lag_s: float | None
    watermark: datetime | None
    materialized_at: datetime | None
    table_version: int | None
    last_applied: int


class _Metrics:
    """The Ray metrics, created on first use in a process where Ray is up."""

    def __init__(self) -> None:
        self._lag: Any = None
        self._age: Any = None

    def _ready(self) -> bool:
        if not ray.is_initialized():
            return False
        if self._lag is None:
            from ray.util.metrics import Gauge, Histogram

            self._lag = Gauge(
                "mlray_online_lag_seconds",
                "Now minus the newest materialized event_time, per view.",
                tag_keys=("project", "view"),
            )
            self._age = Histogram(
                "mlray_online_value_age_seconds",
                "Age (request time - event_time) of the oldest value a read returned, per view.",
                boundaries=AGE_BOUNDARIES_S,
                tag_keys=("project", "view"),
            )
        return True

    def lag(self, project: str, view: str, seconds: float) -> None:
        if self._ready():
            self._lag.set(seconds, tags={"project": project, "view": view})

    def ages(self, project: str, ages: dict[str, float]) -> None:
        if ages and self._ready():
            for view, age in ages.items():
                self._age.observe(max(age, 0.0), tags={"project": project, "view": view})


METRICS = _Metrics()


def view_freshness(
    store: OnlineStore, project: str, views: Iterable[str], now_us: int
) -> list[ViewFreshness]:
    """Per view: newest materialized event time, lag behind ``now_us``, watermark.

    Also sets the lag gauge.
    """
    out = []
    for v in views:
        st = store.get_state(v)
        lag = None if st.newest_event_us is None else (now_us - st.newest_event_us) / 1e6
        if lag is not None:
            METRICS.lag(project, v, lag)
        out.append(
            ViewFreshness(
                v,
                to_datetime(st.newest_event_us),
                lag,
                to_datetime(st.watermark_us),
                to_datetime(st.materialized_at_us),
                st.table_version,
                st.last_applied,
            )
        )
    return out
