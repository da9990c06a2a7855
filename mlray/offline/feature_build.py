"""The feature pipeline: raw events in, offline feature tables out, on Ray Data.

For each computed view and a window ``[start, end)``: read the raw Delta
source with the time filter pushed into the scan (history from ``start -
lookback``), hash-partition by the view's entity keys so each task sees
complete histories, run the view's transform, keep the snapshots inside the
window, and replace that window of the view's table in one Delta commit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import pyarrow as pa
import ray
import ray.data
from ray.data.expressions import col

from mlray.config import Settings
from mlray.errors import ConfigError, DefinitionError
from mlray.features.feature_view import EVENT_TIME, FeatureView
from mlray.features.repository import FeatureRepository
from mlray.offline.delta_store import OfflineStore, PrepareRows


@dataclass(frozen=True)
class BuildResult:
    view: str
    rows: int
    version: int
    seconds: float


def build_features(
    settings: Settings,
    repo: FeatureRepository,
    start: datetime,
    end: datetime,
    views: list[str] | None = None,
) -> list[BuildResult]:
    """Compute the views' features for ``[start, end)`` and replace that window offline.

    Raises:
        ConfigError: the window is empty or its bounds lack a time zone.
        DefinitionError: a named view has no source and transform.
    """
    check_window(start, end)
    store = OfflineStore(settings)
    chosen = (
        [repo.view(v) for v in views] if views else [v for v in repo.views.values() if v.transform]
    )
    results = []
    for view in chosen:
        if view.transform is None:
            raise DefinitionError(
                f"Feature view {view.name!r} has no transform (it is filled by ingest); "
                "build only computed views."
            )
        t0 = time.perf_counter()
        rows = compute_view(settings, view, store.num_buckets(view), start, end)
        res = store.write(view, rows, window=(start, end))
        results.append(BuildResult(view.name, res.rows, res.version, time.perf_counter() - t0))
    return results


def check_window(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError(
            f"Window bounds need a time zone, got start={start!s} end={end!s}; "
            "write them like 2026-01-01T00:00:00Z."
        )
    if end <= start:
        raise ConfigError(
            f"Empty window: end {end.isoformat()} is not after start {start.isoformat()}."
        )


def compute_view(
    settings: Settings, view: FeatureView, num_buckets: int, start: datetime, end: datetime
) -> ray.data.Dataset:
    """The view's prepared feature rows for ``[start, end)``, lazily, as a Ray Dataset."""
    assert view.source is not None
    source = ray.data.read_delta(
        settings.table_uri("raw", view.source), storage_options=settings.storage_options or None
    )
    lo = start - view.lookback
    source = source.filter(expr=(col(view.source_time) >= lo) & (col(view.source_time) < end))
    n = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    parts = source.repartition(n, keys=list(view.join_keys))
    computed = parts.map_batches(
        _RunTransform(view, start, end), batch_format="pandas", batch_size=None
    )
    return computed.map_batches(
        PrepareRows(view, num_buckets, settings.default_timezone), batch_format="pyarrow"
    )


class _RunTransform:
    """Apply the view's transform to one partition of complete histories."""

    def __init__(self, view: FeatureView, start: datetime, end: datetime) -> None:
        self.view, self.start, self.end = view, pd.Timestamp(start), pd.Timestamp(end)

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        view = self.view
        out = view.transform(batch.sort_values(view.source_time, kind="stable"))  # type: ignore[misc]
        expected = [*view.join_keys, EVENT_TIME, *view.feature_names]
        missing = [c for c in expected if c not in out.columns]
        if missing:
            raise DefinitionError(
                f"Transform of feature view {view.name!r} ({view.defined_at}) returned no "
                f"column(s) {missing}; it must return {expected}."
            )
        out = out[(out[EVENT_TIME] >= self.start) & (out[EVENT_TIME] < self.end)]
        keep = expected + (["available_time"] if "available_time" in out.columns else [])
        return pa.Table.from_pandas(out[keep], preserve_index=False)
