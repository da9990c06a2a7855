"""The feature pipeline: raw events in, offline feature tables out, on Ray Data.

For each computed view and a window ``[start, end)``: read the raw Delta
source with the time filter pushed into the scan (history from ``start -
lookback``), hash-partition by the view's entity keys so each task sees
complete histories, run the view's transform, keep the snapshots inside the
window, and replace that window of the view's table in one Delta commit.

A view's rows are all computed, checked (output types, time zones, the
fields' ``nullable``/``ge``/``le``) and written before its commit: a failure
or an interrupt (Ctrl-C) until then commits nothing for that view, and the
views after it are not started. Views are committed one after the other
(one Delta table each), so views committed before the interrupt keep their
new version; the build logs which.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import deltalake
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data
from ray.data.expressions import col

from mlray.config import Settings
from mlray.errors import ConfigError, DefinitionError, NotFoundError, SchemaError
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.features.repository import FeatureRepository
from mlray.features.times import TIMESTAMP
from mlray.offline import inputs
from mlray.offline.delta_store import OfflineStore
from mlray.offline.inputs import PrepareRows
from mlray.offline.staging import InterruptedAfterCommit

log = logging.getLogger(__name__)


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

    Views are built and committed one at a time: an error or a
    ``KeyboardInterrupt`` leaves the view in progress (and those after it) at
    its old version; the views committed before it stay committed.

    Raises:
        ConfigError: the window is empty or its bounds lack a time zone.
        DefinitionError: a named view has no source and transform, or a
            transform's output lacks a column.
        SchemaError: a transform returned something other than a DataFrame, a
            time column that is not a zone-aware timestamp, a column that does
            not cast to its field's type, or values its fields forbid (nulls
            where ``nullable=False``, values outside ``ge``/``le``).
    """
    check_window(start, end)
    store = OfflineStore(settings)
    chosen = buildable_views(repo, views)
    results: list[BuildResult] = []
    try:
        for view in chosen:
            t0 = time.perf_counter()
            rows = compute_view(settings, view, store.num_buckets(view), start, end)
            res = store.write(view, rows, window=(start, end))
            results.append(BuildResult(view.name, res.rows, res.version, time.perf_counter() - t0))
    except KeyboardInterrupt as e:
        if isinstance(e, InterruptedAfterCommit):  # that view's commit was under way: it is done
            r = e.result
            results.append(BuildResult(r.view, r.rows, r.version, time.perf_counter() - t0))
        done = ", ".join(f"{r.view} (version {r.version})" for r in results) or "none"
        log.warning(
            "Feature build interrupted: nothing committed for %s; committed: %s.",
            ", ".join(v.name for v in chosen[len(results) :]) or "none",
            done,
        )
        raise
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


def buildable_views(repo: FeatureRepository, names: list[str] | None) -> list[FeatureView]:
    """The views a build computes: ``names``, or every view with a transform.

    Raises:
        NotFoundError: an unknown view (with close names).
        DefinitionError: a named view is computed at request time, or filled by ingest.
    """
    if not names:
        return [v for v in repo.views.values() if v.transform]
    chosen = []
    for name in names:
        if name in repo.on_demand:
            raise DefinitionError(
                f"{repo.on_demand[name].where} is computed at request time, not built; "
                "build stored views only (see `mlray features list`)."
            )
        view = repo.view(name)
        if view.transform is None:
            raise DefinitionError(
                f"Feature view {name!r} has no transform (it is filled by ingest); "
                "build only computed views."
            )
        chosen.append(view)
    return chosen


def compute_view(
    settings: Settings, view: FeatureView, num_buckets: int, start: datetime, end: datetime
) -> ray.data.Dataset:
    """The view's prepared feature rows for ``[start, end)``, lazily, as a Ray Dataset."""
    assert view.source is not None
    uri, options = settings.table_uri("raw", view.source), settings.storage_options or None
    if not deltalake.DeltaTable.is_deltatable(uri, storage_options=options):
        raise NotFoundError(
            f"Feature view {view.name!r} reads raw table {view.source!r} at {uri}, which is not a "
            "Delta table; write it first (mlray demo generate, or your own ingest) or fix "
            "data_root."
        )
    source = ray.data.read_delta(uri, storage_options=options)
    lo = start - view.lookback
    source = source.filter(expr=(col(view.source_time) >= lo) & (col(view.source_time) < end))
    n = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    parts = source.repartition(n, keys=list(view.join_keys))
    computed = parts.map_batches(
        RunTransform(view, start, end, settings.default_timezone),
        batch_format="pyarrow",
        batch_size=None,
    )
    return computed.map_batches(
        PrepareRows(view, num_buckets, settings.default_timezone), batch_format="pyarrow"
    )


class RunTransform:
    """Apply the view's transform to one partition of complete histories (a ``map_batches`` fn).

    The transform gets a pandas DataFrame with NumPy-backed columns (Arrow's
    ``to_pandas()``: ``int64``, ``float64``, ``bool``, ``datetime64[us, UTC]``,
    pandas' default string dtype; integers with nulls as ``float64``), sorted
    by the source time. Its output is checked before anything is written.
    """

    def __init__(
        self, view: FeatureView, start: datetime, end: datetime, default_timezone: str | None
    ) -> None:
        self.view, self.tz = view, default_timezone
        self.start, self.end = pa.scalar(start, TIMESTAMP), pa.scalar(end, TIMESTAMP)

    def __call__(self, batch: pa.Table) -> pa.Table:
        view = self.view
        events = batch.to_pandas().sort_values(view.source_time, kind="stable", ignore_index=True)
        out = view.transform(events)  # type: ignore[misc]
        return self.check_output(out)

    def check_output(self, out: object) -> pa.Table:
        """The transform's rows inside the window as Arrow, times in UTC; else a typed error."""
        view = self.view
        where = f"Transform of feature view {view.name!r} (defined at {view.defined_at})"
        expected = [*view.join_keys, EVENT_TIME, *view.feature_names]
        if not isinstance(out, pd.DataFrame):
            raise SchemaError(
                f"{where} returned {type(out).__name__}; it must return a pandas DataFrame "
                f"with columns {expected}."
            )
        missing = [c for c in expected if c not in out.columns]
        if missing:
            raise DefinitionError(
                f"{where} returned no column(s) {missing}; it must return {expected}."
            )
        keep = expected + ([AVAILABLE_TIME] if AVAILABLE_TIME in out.columns else [])
        if out.empty:
            return view.table_schema().empty_table().select(keep)
        try:
            table = pa.Table.from_pandas(out[keep], preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
            raise SchemaError(f"{where} returned a column Arrow cannot read: {e}") from e
        times = [t for t in (EVENT_TIME, AVAILABLE_TIME) if t in keep]
        what = (
            f"Output of the transform of feature view {view.name!r} (defined at {view.defined_at}):"
        )
        for t in times:
            inputs.check_time_column(table.schema, t, what, self.tz)
        table = inputs.normalize_times(table, times, self.tz)
        ev = table.column(EVENT_TIME)
        return table.filter(pc.and_(pc.greater_equal(ev, self.start), pc.less(ev, self.end)))
