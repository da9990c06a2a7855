"""Materialization: the offline tables' latest row per entity, as of a time, into the online store.

It sits above both stores (the online package never reads the offline one).

For each view, one Ray Data task per bucket of the pinned table version
reads that bucket's files, picks each entity's row at ``end_time`` with the
offline join's kernel (:func:`mlray.offline.asof.latest_per_entity`: the
same visibility, tie-break and TTL rule, so online equals offline), and
writes the rows straight from the task to the online store in pipelined,
conditional batches. Nothing is collected on the driver but counts.

Before any Ray work the driver reads every view's state from the online
store (so an unreachable store fails in a second, not after the tasks'
retries) and refuses an ``end_time`` more than ``max_ahead`` (default one
day) past the wall clock: the watermark only moves forward, and one in the
far future would make every later incremental run a no-op.

Incremental runs remember a watermark and the offline table version per view
in the online store itself (a flushed store therefore starts over with a full
run) and only recompute the entities with a row that became visible
(``max(event_time, available_time)``) in ``(watermark, end_time]`` or a row in
a Delta file added since the recorded table version. The second set catches
batches ingested late with an ``available_time`` at or before the watermark
(for example without an ``available_time`` column). When the recorded
version cannot be compared (no version recorded, or the table was recreated
with fewer versions), the view is recomputed in full.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import ray.data
from deltalake.exceptions import DeltaError

from mlray.config import Settings
from mlray.errors import ConfigError, NotFoundError, find_mlray_error
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.features.repository import FeatureRepository
from mlray.features.times import TIMESTAMP, duration_us, now_us, to_datetime, to_us
from mlray.offline.asof import JoinSpec, latest_per_entity
from mlray.offline.delta_store import OfflineStore, ViewSnapshot
from mlray.online.factory import open_online_store, pin_online_store
from mlray.online.freshness import METRICS
from mlray.online.protocol import OnlineStore, ViewState
from mlray.ray_session import ensure_ray

_ASOF, _CHOSEN_TIME = "__mlray_asof", "__mlray_event_time"
_STATS = ("entities", "rows", "applied", "unchanged", "older", "expired")
_MAXES = ("newest", "chosen_newest")
MAX_AHEAD = timedelta(days=1)  # the default limit on how far past now ``end_time`` may lie


@dataclass(frozen=True)
class MaterializeResult:
    """What one view's materialization did.

    ``entities``: entities with a row at ``end_time`` within the TTL;
    ``written``: stored rows created or replaced; ``unchanged``: already stored
    identically; ``older``: refused because the store holds a newer row;
    ``expired``: already past their TTL by the wall clock, so not written;
    ``seconds``: wall time of the whole run (all its views together);
    ``newest_event_time``: newest event time written; ``newest_chosen_event_time``:
    newest event time of the rows picked, expired ones included.
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
    newest_chosen_event_time: datetime | None = None

    @property
    def rows_per_s(self) -> float:
        return self.entities / self.seconds if self.seconds > 0 else 0.0

    @property
    def all_expired(self) -> bool:
        """Rows were picked but every one was past its TTL by the wall clock (nothing written)."""
        return self.entities > 0 and self.expired == self.entities


@dataclass(frozen=True)
class _Job:
    """One view's work: its pinned snapshot, watermark and files added since the recorded run.

    ``since_us`` None: recompute every entity. Otherwise recompute the entities with a row
    visible in ``(since_us, end]`` or a row in ``added`` (bucket -> file paths).
    """

    view: FeatureView
    snapshot: ViewSnapshot
    since_us: int | None
    added: dict[int, tuple[str, ...]] = field(default_factory=dict)


def materialize(
    settings: Settings,
    repo: FeatureRepository,
    end_time: datetime,
    views: Sequence[str] | None = None,
    *,
    incremental: bool = False,
    max_ahead: timedelta = MAX_AHEAD,
) -> list[MaterializeResult]:
    """Write each view's latest rows as of ``end_time`` to the online store.

    Args:
        settings: the settings (online store, offline tables, Ray).
        repo: the feature views.
        end_time: the as-of time (tz-aware); rows not visible by then are ignored.
        views: view names (default: every view in the repository).
        incremental: only entities changed since the view's last run (its watermark
            and table version).
        max_ahead: how far past the wall clock ``end_time`` may lie (default one day).

    Raises:
        ConfigError: ``end_time`` has no time zone or lies more than ``max_ahead`` past now.
        NotFoundError: a view is unknown or has no offline table.
        BackendUnavailable: the online store is unreachable (raised before any Ray work).
    """
    end_us = check_end_time(end_time, max_ahead)
    t0 = time.perf_counter()
    settings = pin_online_store(settings)  # the tasks connect to the server the driver found
    store = open_online_store(settings)
    try:
        chosen = [repo.view(v) for v in views] if views else list(repo.views.values())
        # One round trip per view before any Ray work; it is also the check that the store answers.
        states = {v.name: store.get_state(v.name) for v in chosen}
        offline, started_us = OfflineStore(settings), now_us()
        jobs = {v.name: _job(offline, v, states[v.name] if incremental else None) for v in chosen}
        items = [
            {"view": name, "bucket": b}
            for name, job in jobs.items()
            for b in sorted(job.snapshot.files)
            if job.since_us is None or job.since_us < end_us or b in job.added
        ]
        stats = _run(settings, items, jobs, end_us, started_us)
        seconds = time.perf_counter() - t0
        return [
            _finish(store, settings, job, stats.get(name), end_time, started_us, seconds)
            for name, job in jobs.items()
        ]
    finally:
        store.close()


def check_end_time(end_time: datetime, max_ahead: timedelta = MAX_AHEAD) -> int:
    """``end_time`` in microseconds, if it has a zone and lies at most ``max_ahead`` past now.

    Raises:
        ConfigError: a naive ``end_time``, a negative ``max_ahead``, or an ``end_time``
            further ahead: materializing it would move the incremental watermark there.
    """
    if end_time.tzinfo is None or end_time.utcoffset() is None:
        raise ConfigError(
            f"end_time {end_time.isoformat()} has no time zone; write it like 2026-01-01T00:00:00Z."
        )
    if max_ahead < timedelta(0):
        raise ConfigError(f"max_ahead must not be negative, got {max_ahead}; e.g. 1 day.")
    end_us, limit_us = to_us(end_time), now_us() + duration_us(max_ahead)
    if end_us > limit_us:
        raise ConfigError(
            f"end_time {end_time.isoformat()} is more than {max_ahead} past now "
            f"({datetime.now(UTC).isoformat(timespec='seconds')}); materializing it would move "
            "each view's incremental watermark there, and later incremental runs would skip "
            "everything before it. Pass an end time up to now (the default), or raise the limit "
            "(--max-ahead-hours, max_ahead=) if the future time is deliberate."
        )
    return end_us


def _job(offline: OfflineStore, view: FeatureView, state: ViewState | None) -> _Job:
    """The view's job; ``state`` None: a full run."""
    snapshot = offline.snapshot(view)
    if state is None or state.watermark_us is None:
        return _Job(view, snapshot, None)
    added = _added_files(offline, view, snapshot, state.table_version)
    if added is None:  # what changed since the last run is unknown: recompute every entity
        return _Job(view, snapshot, None)
    return _Job(view, snapshot, state.watermark_us, added)


def _added_files(
    offline: OfflineStore, view: FeatureView, snapshot: ViewSnapshot, version: int | None
) -> dict[int, tuple[str, ...]] | None:
    """Files (per bucket) in ``snapshot`` but not in table version ``version``; None if unknown.

    File names are unique (a uuid each), so a table recreated since then shows all its files.
    """
    if version is None or version > snapshot.version:
        return None
    if version == snapshot.version:
        return {}
    try:
        old = offline.snapshot(view, version)
    except (NotFoundError, DeltaError):  # that version's log is gone (cleaned up)
        return None
    added = {}
    for bucket, files in snapshot.files.items():
        new = sorted(set(files) - set(old.files.get(bucket, ())))
        if new:
            added[bucket] = tuple(new)
    return added


def _finish(
    store: OnlineStore,
    settings: Settings,
    job: _Job,
    stats: dict[str, int] | None,
    end_time: datetime,
    started_us: int,
    seconds: float,
) -> MaterializeResult:
    """Record the view's state (watermark, table version) and report its counts."""
    name = job.view.name
    s = stats or dict.fromkeys((*_STATS, *_MAXES), 0)
    newest = s["newest"] or None
    store.update_state(
        name, ViewState(newest, to_us(end_time), started_us, job.snapshot.version, s["applied"])
    )
    newest_now = store.get_state(name).newest_event_us
    if newest_now is not None:
        METRICS.lag(settings.project, name, (started_us - newest_now) / 1e6)
    return MaterializeResult(
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
        to_datetime(s["chosen_newest"] or None),
    )


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
        t = totals.setdefault(r["view"], dict.fromkeys((*_STATS, *_MAXES), 0))
        for k in _STATS:
            t[k] += int(r[k])
        for k in _MAXES:
            t[k] = max(t[k], int(r[k]))
    return totals


def _materialize_batch(
    batch: pa.Table, *, jobs: dict[str, _Job], settings: Settings, end_us: int, started_us: int
) -> pa.Table:
    """Ray Data task: compute and write the latest rows of the (view, bucket) items in ``batch``.

    TTLs are checked against the run's start (``started_us``), the same for every task.
    """
    store = open_online_store(settings, bulk_writes=True)
    out: dict[str, list] = {k: [] for k in ("view", "bucket", *_STATS, *_MAXES)}
    try:
        for name, bucket in zip(
            batch.column("view").to_pylist(), batch.column("bucket").to_pylist(), strict=True
        ):
            job = jobs[name]
            latest = latest_rows(
                job.view, job.snapshot, bucket, end_us, job.since_us, job.added.get(bucket, ())
            )
            ws = store.write(job.view, latest, started_us)
            times = latest.column(EVENT_TIME)
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
                ("chosen_newest", to_us(pc.max(times).as_py()) if latest.num_rows else 0),
            ):
                out[k].append(v)
    finally:
        store.close()
    return pa.table(out)


def latest_rows(
    view: FeatureView,
    snapshot: ViewSnapshot,
    bucket: int,
    end_us: int,
    since_us: int | None = None,
    added: Sequence[str] = (),
) -> pa.Table:
    """Each entity's row at ``end_us`` in one bucket, by the offline join's rule.

    With ``since_us``, only the entities with a row visible in ``(since_us, end_us]`` or a
    row in one of the ``added`` files (paths in the snapshot's filesystem). Entities with
    no qualifying row are dropped.

    Returns the join keys, ``event_time``, ``available_time`` and every feature of the chosen rows.
    """
    keys, feats = list(view.join_keys), list(view.feature_names)
    columns = [*keys, EVENT_TIME, AVAILABLE_TIME, *feats]
    table = snapshot.read_bucket(bucket, columns)
    if table is None or table.num_rows == 0:
        return view.table_schema().empty_table()
    if since_us is not None:
        fresh = (
            pads.dataset(list(added), format="parquet", filesystem=snapshot.filesystem).to_table(
                columns=keys
            )
            if added
            else None
        )
        table = _changed_entities(table, view, since_us, end_us, fresh)
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


def _changed_entities(
    table: pa.Table, view: FeatureView, since_us: int, end_us: int, fresh: pa.Table | None
) -> pa.Table:
    """Full histories of the entities with a row visible in ``(since, end]`` or in ``fresh``."""
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    et = pl.col(EVENT_TIME).dt.epoch("us")
    visible = (
        pl.max_horizontal(et, pl.col(AVAILABLE_TIME).dt.epoch("us")) if view.available_time else et
    )
    keys = list(view.join_keys)
    changed = df.filter((visible > since_us) & (visible <= end_us)).select(keys)
    if fresh is not None and fresh.num_rows:
        added = pl.from_arrow(fresh.select(keys))
        assert isinstance(added, pl.DataFrame)
        changed = pl.concat([changed, added.cast(changed.schema)])
    changed = changed.unique()
    return df.join(changed, on=keys, how="semi").to_arrow(compat_level=pl.CompatLevel.oldest())
