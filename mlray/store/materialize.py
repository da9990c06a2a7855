"""Materialization: the offline tables' latest row per entity, as of a time, into the online store.

It sits above both stores (the online package never reads the offline one).

For each view, one Ray Data task per bucket of the pinned table version
reads that bucket's files, picks each entity's row at ``end_time`` with the
offline join's kernel (:func:`mlray.offline.asof.latest_per_entity`: the
same visibility, tie-break and TTL rule, so online equals offline), and
writes the rows straight from the task to the online store in pipelined,
conditional batches. Nothing is collected on the driver but counts.

Incremental runs remember a watermark per view in the online store itself
(a flushed store therefore starts over with a full run) and only recompute
entities with a row that became visible (``max(event_time,
available_time)``) in ``(watermark, end_time]``. Rows whose ``available_time``
is set in the past after the watermark passed it are only picked up by a
full :func:`materialize` run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import pyarrow as pa
import ray.data

from mlray.config import Settings
from mlray.errors import ConfigError, find_mlray_error
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.features.repository import FeatureRepository
from mlray.features.times import TIMESTAMP, now_us, to_datetime, to_us
from mlray.offline.asof import JoinSpec, latest_per_entity
from mlray.offline.delta_store import OfflineStore, ViewSnapshot
from mlray.online.factory import open_online_store, pin_online_store
from mlray.online.freshness import METRICS
from mlray.online.protocol import ViewState
from mlray.ray_session import ensure_ray

_ASOF, _CHOSEN_TIME = "__mlray_asof", "__mlray_event_time"
_STATS = ("entities", "rows", "applied", "unchanged", "older", "expired")


@dataclass(frozen=True)
class MaterializeResult:
    """What one view's materialization did.

    ``entities``: entities with a row at ``end_time`` within the TTL;
    ``written``: stored rows created or replaced; ``unchanged``: already stored
    identically; ``older``: refused because the store holds a newer row;
    ``expired``: already past their TTL by the wall clock, so not written;
    ``seconds``: wall time of the whole run (all its views together).
    """

    view: str
    end_time: datetime
    since: datetime | None
    table_version: int
    entities: int
    written: int
    unchanged: int
    older: int
    expired: int
    newest_event_time: datetime | None
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.entities / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Job:
    view: FeatureView
    snapshot: ViewSnapshot
    since_us: int | None


def materialize(
    settings: Settings,
    repo: FeatureRepository,
    end_time: datetime,
    views: Sequence[str] | None = None,
    *,
    incremental: bool = False,
) -> list[MaterializeResult]:
    """Write each view's latest rows as of ``end_time`` to the online store.

    Args:
        settings: the settings (online store, offline tables, Ray).
        repo: the feature views.
        end_time: the as-of time (tz-aware); rows not visible by then are ignored.
        views: view names (default: every view in the repository).
        incremental: only entities changed since the view's watermark.

    Raises:
        ConfigError: ``end_time`` has no time zone.
        NotFoundError: a view is unknown or has no offline table.
        BackendUnavailable: the online store is unreachable.
    """
    if end_time.tzinfo is None:
        raise ConfigError(
            f"end_time {end_time.isoformat()} has no time zone; write it like 2026-01-01T00:00:00Z."
        )
    t0 = time.perf_counter()
    settings = pin_online_store(settings)  # the tasks connect to the server the driver found
    store = open_online_store(settings)
    offline = OfflineStore(settings)
    end_us, started_us = to_us(end_time), now_us()
    jobs: dict[str, _Job] = {}
    for view in [repo.view(v) for v in views] if views else list(repo.views.values()):
        since = store.get_state(view.name).watermark_us if incremental else None
        jobs[view.name] = _Job(view, offline.snapshot(view), since)
    items = [
        {"view": name, "bucket": b}
        for name, job in jobs.items()
        if job.since_us is None or job.since_us < end_us
        for b in sorted(job.snapshot.files)
    ]
    stats = _run(settings, items, jobs, end_us, started_us)
    seconds = time.perf_counter() - t0
    results = []
    for name, job in jobs.items():
        s = stats.get(name, dict.fromkeys((*_STATS, "newest"), 0))
        newest = s["newest"] or None
        results.append(
            MaterializeResult(
                name,
                end_time,
                to_datetime(job.since_us),
                job.snapshot.version,
                s["entities"],
                s["applied"],
                s["unchanged"],
                s["older"],
                s["expired"],
                to_datetime(newest),
                seconds,
            )
        )
        store.update_state(
            name, ViewState(newest, end_us, started_us, job.snapshot.version, s["applied"])
        )
        newest_now = store.get_state(name).newest_event_us
        if newest_now is not None:
            METRICS.lag(settings.project, name, (started_us - newest_now) / 1e6)
    store.close()
    return results


def _run(
    settings: Settings,
    items: list[dict],
    jobs: dict[str, _Job],
    end_us: int,
    started_us: int,
) -> dict[str, dict[str, int]]:
    """One Ray Data task per (view, bucket); returns summed counts per view."""
    if not items:
        return {}
    ensure_ray(settings)
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    out = ds.map_batches(
        # Ray types fn as a one-argument callable; fn_kwargs supplies the keyword-only rest.
        _materialize_batch,  # type: ignore[arg-type]
        batch_size=1,
        batch_format="pyarrow",
        fn_kwargs={"jobs": jobs, "settings": settings, "end_us": end_us, "started_us": started_us},
    )
    try:
        rows = out.take_all()
    except Exception as e:
        err = find_mlray_error(e)
        if err is not None:
            raise err from e
        raise
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        t = totals.setdefault(r["view"], dict.fromkeys((*_STATS, "newest"), 0))
        for k in _STATS:
            t[k] += int(r[k])
        t["newest"] = max(t["newest"], int(r["newest"]))
    return totals


def _materialize_batch(
    batch: pa.Table, *, jobs: dict[str, _Job], settings: Settings, end_us: int, started_us: int
) -> pa.Table:
    """Ray Data task: compute and write the latest rows of the (view, bucket) items in ``batch``.

    TTLs are checked against the run's start (``started_us``), the same for every task.
    """
    store = open_online_store(settings, bulk_writes=True)
    out: dict[str, list] = {k: [] for k in ("view", "bucket", *_STATS, "newest")}
    try:
        for name, bucket in zip(
            batch.column("view").to_pylist(), batch.column("bucket").to_pylist(), strict=True
        ):
            job = jobs[name]
            latest = latest_rows(job.view, job.snapshot, bucket, end_us, job.since_us)
            ws = store.write(job.view, latest, started_us)
            for k, v in (
                ("view", name),
                ("bucket", bucket),
                ("entities", latest.num_rows),
                ("rows", ws.rows),
                ("applied", ws.applied),
                ("unchanged", ws.unchanged),
                ("older", ws.older),
                ("expired", ws.expired),
                ("newest", ws.newest_event_us or 0),
            ):
                out[k].append(v)
    finally:
        store.close()
    return pa.table(out)


def latest_rows(
    view: FeatureView, snapshot: ViewSnapshot, bucket: int, end_us: int, since_us: int | None = None
) -> pa.Table:
    """Each entity's row at ``end_us`` in one bucket, by the offline join's rule.

    Entities with no qualifying row are dropped.

    Returns the join keys, ``event_time``, ``available_time`` and every feature of the chosen rows.
    """
    keys, feats = list(view.join_keys), list(view.feature_names)
    columns = [*keys, EVENT_TIME, AVAILABLE_TIME, *feats]
    table = snapshot.read_bucket(bucket, columns)
    if table is None or table.num_rows == 0:
        return view.table_schema().empty_table()
    if since_us is not None:
        table = _changed_entities(table, view, since_us, end_us)
    entities = (
        pl.from_arrow(table.select(keys)).unique().to_arrow(compat_level=pl.CompatLevel.oldest())
    )
    asof = pa.array([end_us] * entities.num_rows, pa.int64()).cast(TIMESTAMP)
    entities = entities.append_column(_ASOF, asof)
    spec = JoinSpec(
        tuple(keys),
        _ASOF,
        EVENT_TIME,
        (*feats, AVAILABLE_TIME),
        view.available_time,
        view.ttl_us,
        {},
        _CHOSEN_TIME,
    )
    chosen = latest_per_entity(table, spec, entities)
    chosen = chosen.filter(pa.compute.is_valid(chosen.column(_CHOSEN_TIME)))
    chosen = chosen.drop_columns([_ASOF]).rename_columns(
        [EVENT_TIME if c == _CHOSEN_TIME else c for c in chosen.column_names if c != _ASOF]
    )
    return chosen.select(columns)


def _changed_entities(table: pa.Table, view: FeatureView, since_us: int, end_us: int) -> pa.Table:
    """Full histories of the entities with a row that became visible in ``(since, end]``."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    et = pl.col(EVENT_TIME).dt.epoch("us")
    visible = (
        pl.max_horizontal(et, pl.col(AVAILABLE_TIME).dt.epoch("us")) if view.available_time else et
    )
    changed = (
        df.filter((visible > since_us) & (visible <= end_us)).select(list(view.join_keys)).unique()
    )
    return df.join(changed, on=list(view.join_keys), how="semi").to_arrow(
        compat_level=pl.CompatLevel.oldest()
    )
