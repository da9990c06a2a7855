"""Point-in-time join benchmark: mlray against DuckDB ``ASOF JOIN`` on the same rows.

    python benchmarks/pit_join.py --size small|medium|large [--keep] [--ray-env NAME=VALUE]

Synthetic, seeded data: view ``user_stats`` (keyed by ``user_id``, with
late-arriving rows and corrections that share an ``event_time``), a smaller
view ``item_stats`` (keyed by ``item_id``, 12 h TTL) and labels carrying both
keys, some placed exactly on visibility and TTL edges. Methods, in one run:

- ``duckdb``: the baseline. DuckDB has no availability-aware as-of join, so
  each view gets a running arg-max window (the trick in
  :mod:`mlray.offline.asof`), one ``ASOF LEFT JOIN`` on the visible time and
  a hash join back to the chosen row; all of it is one timed query.
- ``pandas``: ``merge_asof`` with the same trick (``--size small`` only).
- ``point_in_time_join``: :func:`mlray.offline.pit_join.point_in_time_join`
  on the plain Parquet folders (shuffles both sides), chained; and the same on
  ``ray.data.read_parquet`` Datasets of them (Ray Data's read in the timing).
- ``get_training_data``: ``FeatureStore.get_training_data(<labels Parquet folder>, ...)``
  over the same rows ingested into the offline store and compacted (ingest and
  compaction timed separately, as a user runs them once per data drop).

Every method's output is compared row for row with DuckDB's (by label id,
null/NaN-aware); any difference fails the run. Results:
``benchmarks/results/pit_join_<size>.json``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault(
    "RAY_AUTH_MODE", "disabled"
)  # local cluster, loopback only: skip the token warning
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import GiB, Measurement, measure, print_table, write_json

SIZES = {
    "small": {"labels": 50_000, "rows_a": 500_000, "users": 5_000, "rows_b": 50_000, "items": 500},
    "medium": {
        "labels": 1_000_000,
        "rows_a": 10_000_000,
        "users": 100_000,
        "rows_b": 1_000_000,
        "items": 10_000,
    },
    "large": {  # 4x medium
        "labels": 4_000_000,
        "rows_a": 40_000_000,
        "users": 400_000,
        "rows_b": 4_000_000,
        "items": 40_000,
    },
}
MIN_US, HOUR_US, DAY_US = 60_000_000, 3_600_000_000, 86_400_000_000
START_US = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
SPAN_US = 30 * DAY_US
TTL_B = timedelta(hours=12)
TS = pa.timestamp("us", tz="UTC")
A_FEATURES = {
    "u_clicks": pa.int64(),
    "u_views": pa.int64(),
    "u_ctr": pa.float64(),
    "u_spend": pa.float64(),
    "u_score": pa.float32(),
    "u_age_days": pa.float64(),
}
B_FEATURES = {"i_price": pa.float64(), "i_popularity": pa.int64(), "i_rating": pa.float32()}
LABEL_COLS = ["label_id", "user_id", "item_id", "event_time", "label"]


# -- data ------------------------------------------------------------------------------------------
def _values(rng: np.random.Generator, typ: pa.DataType, n: int, null_frac: float) -> pa.Array:
    if pa.types.is_integer(typ):
        vals = rng.integers(0, 1_000, n)
    else:
        vals = rng.normal(10.0, 3.0, n).astype(typ.to_pandas_dtype())
    mask = rng.random(n) < null_frac if null_frac else None
    return pa.array(vals, typ, mask=mask)


def _view_rows(
    rng: np.random.Generator, n: int, entities: int, key: str, features: dict[str, pa.DataType]
) -> pa.Table:
    """Feature rows in log (event_time) order; 2% are corrections of an earlier row."""
    n0 = int(n / 1.02)
    keys = rng.integers(0, entities, n0)
    et = START_US + rng.integers(0, SPAN_US, n0)
    delay = rng.exponential(10 * MIN_US, n0).astype(np.int64)
    delay[rng.random(n0) < 0.10] = 0  # available at once: exercises the t == event_time edge
    late = rng.random(n0) < 0.05  # late arrivals: an hour to three days after the fact
    delay[late] = rng.integers(HOUR_US, 3 * DAY_US, int(late.sum()))
    at = et + delay
    fix = rng.choice(n0, n - n0, replace=False)  # corrections: same event_time, known later
    keys, et = np.concatenate([keys, keys[fix]]), np.concatenate([et, et[fix]])
    at = np.concatenate([at, at[fix] + rng.integers(MIN_US, 2 * DAY_US, n - n0)])
    order = np.argsort(et, kind="stable")
    cols = {
        key: pa.array(keys[order]),
        "event_time": pa.array(et[order], TS),
        "available_time": pa.array(at[order], TS),
    }
    for i, (name, typ) in enumerate(features.items()):
        cols[name] = _values(rng, typ, n, 0.01 if i == 2 else 0.0)
    return pa.table(cols)


def _labels(rng: np.random.Generator, cfg: dict, a: pa.Table, b: pa.Table) -> pa.Table:
    """Labels over both keys; 2% of users have no features, 5% sit exactly on a visibility edge of
    a ``user_stats`` row and 2% exactly on the TTL edge of an ``item_stats`` row."""
    n = cfg["labels"]
    user = rng.integers(0, int(cfg["users"] * 1.02), n)
    item = rng.integers(0, cfg["items"], n)
    t = START_US + rng.integers(0, SPAN_US + DAY_US, n)
    perm = rng.permutation(n)
    edge_a, edge_b = perm[: n // 20], perm[n // 20 : n // 20 + n // 50]
    pick = rng.integers(0, a.num_rows, len(edge_a))
    visible = np.maximum(_us(a, "event_time"), _us(a, "available_time"))
    user[edge_a], t[edge_a] = _np(a, "user_id")[pick], visible[pick]
    pick = rng.integers(0, b.num_rows, len(edge_b))
    ttl_us = int(TTL_B.total_seconds() * 1_000_000)
    item[edge_b], t[edge_b] = _np(b, "item_id")[pick], _us(b, "event_time")[pick] + ttl_us
    order = np.argsort(t, kind="stable")
    return pa.table(
        {
            "label_id": pa.array(np.arange(n)),
            "user_id": pa.array(user[order]),
            "item_id": pa.array(item[order]),
            "event_time": pa.array(t[order], TS),
            "label": pa.array(rng.integers(0, 2, n)),
        }
    )


def _np(t: pa.Table, col: str) -> np.ndarray:
    return t.column(col).to_numpy()


def _us(t: pa.Table, col: str) -> np.ndarray:
    return t.column(col).cast(pa.int64()).to_numpy()


def _check_unique(t: pa.Table, key: str) -> None:
    """The rule leaves rows equal on (key, event_time, available_time) unordered.

    So the data must have none.
    """
    cols = [_np(t, key), _us(t, "event_time"), _us(t, "available_time")]
    order = np.lexsort(cols[::-1])
    if np.logical_and.reduce([c[order][1:] == c[order][:-1] for c in cols]).any():
        raise SystemExit(
            f"generated rows tied on ({key}, event_time, available_time); change --seed"
        )


def _write(table: pa.Table, folder: Path) -> str:
    """Plain Parquet in a few files (so every reader can read in parallel)."""
    folder.mkdir(parents=True)
    files = max(4, -(-table.num_rows // 1_250_000))
    step = -(-table.num_rows // files)
    for i in range(files):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i:03d}.parquet")
    return str(folder)


def generate(root: Path, cfg: dict, seed: int) -> dict[str, str]:
    """Write labels and both views as plain Parquet under ``root``; return their folders."""
    rng = np.random.default_rng(seed)
    a = _view_rows(rng, cfg["rows_a"], cfg["users"], "user_id", A_FEATURES)
    b = _view_rows(rng, cfg["rows_b"], cfg["items"], "item_id", B_FEATURES)
    labels = _labels(rng, cfg, a, b)
    for t, key in [(a, "user_id"), (b, "item_id")]:
        _check_unique(t, key)
    return {
        "labels": _write(labels, root / "labels"),
        "a": _write(a, root / "user_stats"),
        "b": _write(b, root / "item_stats"),
    }


# -- baselines -------------------------------------------------------------------------------------
def _duck_ctes(name: str, folder: str, key: str) -> str:
    """Feature rows with a sortable (event_time, available_time) key, and the visible-time index.

    ``k`` packs the pair into one HUGEINT (lexicographic order for any int64
    pair). ``{name}_idx``: per entity, the running max of ``k`` in visible-time
    order, i.e. at each visible time the best row visible so far (RANGE
    framing gives rows with equal visible time the same value). This beat a
    running max over a struct of all columns by 2.7x in CPU time here.
    """
    return (
        f"{name} AS (SELECT *, "
        "epoch_us(event_time)::HUGEINT * 18446744073709551616 + epoch_us(available_time) "
        f"AS k FROM read_parquet('{folder}/*.parquet')), "
        f"{name}_idx AS (SELECT {key}, greatest(event_time, available_time) AS v, "
        f"max(k) OVER (PARTITION BY {key} ORDER BY greatest(event_time, available_time)) "
        f"AS best FROM {name})"
    )


def _duck_joins(name: str, key: str, ttl: timedelta | None) -> str:
    """ASOF on the visible time, then fetch the chosen row by its key (unique per entity here)."""
    edge = ""
    if ttl is not None:
        ttl_us = int(ttl.total_seconds() * 1_000_000)
        edge = f" AND {name}.event_time > l.event_time - to_microseconds({ttl_us})"
    return (
        f"ASOF LEFT JOIN {name}_idx ON l.{key} = {name}_idx.{key} AND l.event_time >= {name}_idx.v "
        f"LEFT JOIN {name} ON {name}.{key} = l.{key} AND {name}.k = {name}_idx.best{edge} "
    )


def duckdb_join(paths: dict[str, str], threads: int) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    cols = (
        [f"l.{c}" for c in LABEL_COLS]
        + [f"fa.{f}" for f in A_FEATURES]
        + [f"fb.{f}" for f in B_FEATURES]
    )
    query = (
        f"WITH {_duck_ctes('fa', paths['a'], 'user_id')}, "
        f"{_duck_ctes('fb', paths['b'], 'item_id')} "
        f"SELECT {', '.join(cols)} FROM read_parquet('{paths['labels']}/*.parquet') l "
        f"{_duck_joins('fa', 'user_id', None)}{_duck_joins('fb', 'item_id', TTL_B)}"
    )
    out = con.sql(query).to_arrow_table()
    con.close()
    return out


def _pandas_view(labels, feats, key: str, features: list[str], ttl: timedelta | None):
    import pandas as pd

    ft, at = feats["event_time"].to_numpy("int64"), feats["available_time"].to_numpy("int64")
    rank = np.empty(len(feats), np.int64)
    by_rank = np.lexsort((at, ft))  # rank r = r-th row in (event_time, available_time) order
    rank[by_rank] = np.arange(len(feats))
    index = pd.DataFrame({key: feats[key].to_numpy(), "v": np.maximum(ft, at), "rank": rank})
    index = index.sort_values(["v", "rank"], kind="stable")
    index["best"] = index.groupby(key, sort=False)["rank"].cummax()
    left = pd.DataFrame(
        {
            key: labels[key].to_numpy(),
            "t": labels["event_time"].to_numpy("int64"),
            "pos": np.arange(len(labels)),
        }
    ).sort_values("t", kind="stable")
    hit = pd.merge_asof(
        left, index[[key, "v", "best"]], left_on="t", right_on="v", by=key, direction="backward"
    )
    hit = hit.sort_values("pos")
    found = hit["best"].notna().to_numpy().copy()
    row = by_rank[hit["best"].fillna(0).to_numpy("int64")]
    if ttl is not None:
        found &= ft[row] > hit["t"].to_numpy() - int(ttl.total_seconds() * 1_000_000)
    out = feats[features].iloc[row].reset_index(drop=True)
    return out.where(np.broadcast_to(found[:, None], out.shape))


def pandas_join(paths: dict[str, str]) -> pa.Table:
    import pandas as pd

    labels = pd.read_parquet(paths["labels"])
    a = _pandas_view(labels, pd.read_parquet(paths["a"]), "user_id", list(A_FEATURES), None)
    b = _pandas_view(labels, pd.read_parquet(paths["b"]), "item_id", list(B_FEATURES), TTL_B)
    return pa.Table.from_pandas(pd.concat([labels, a, b], axis=1), preserve_index=False)


# -- mlray -----------------------------------------------------------------------------------------
def start_ray(cpus: int) -> None:
    import ray
    import ray.data

    # Worker logs stay in the session folder: task errors still raise here, as exceptions.
    ray.init(
        address="local",  # its own cluster, even when another one runs on this machine
        num_cpus=cpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=False,
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(
        logging.WARNING
    )  # no per-dataset "execution finished" lines
    logging.getLogger("ray.data._internal.progress").setLevel(
        logging.ERROR
    )  # "progress bars disabled"

    @ray.remote
    def warm() -> int:
        import mlray.offline.asof  # noqa: F401 - pays polars' import once per worker, outside the timings

        return os.getpid()

    ray.get([warm.remote() for _ in range(cpus * 2)])
    ray.data.range(1_000, override_num_blocks=cpus).map_batches(lambda b: b).materialize()


def ray_pit_join(paths: dict[str, str], datasets: bool = False):
    """Both views chained; inputs are the Parquet folders, or Ray Datasets over them."""
    import ray.data

    from mlray.offline.pit_join import point_in_time_join

    def src(key: str):
        return ray.data.read_parquet(paths[key]) if datasets else paths[key]

    ds = point_in_time_join(
        src("labels"),
        src("a"),
        entity_keys=["user_id"],
        label_time="event_time",
        feature_time="event_time",
        available_time="available_time",
    )
    ds = point_in_time_join(
        ds,
        src("b"),
        entity_keys=["item_id"],
        ttl=TTL_B,
        label_time="event_time",
        feature_time="event_time",
        available_time="available_time",
    )
    return ds.materialize()


def make_store(root: Path, cpus: int, buckets: int):
    """A store over the two ingest-only views (no source, no transform)."""
    from mlray.config import load_settings
    from mlray.features.entity import Entity
    from mlray.features.feature_view import FeatureView, Field
    from mlray.features.repository import FeatureRepository
    from mlray.store import FeatureStore

    user, item = Entity("user", ("user_id",)), Entity("item", ("item_id",))
    a = FeatureView("user_stats", (user,), tuple(Field(n, t) for n, t in A_FEATURES.items()))
    b = FeatureView(
        "item_stats", (item,), tuple(Field(n, t) for n, t in B_FEATURES.items()), ttl=TTL_B
    )
    settings = load_settings(
        config_file=None, data_root=str(root), num_buckets=buckets, ray={"num_cpus": cpus}
    )
    return FeatureStore(settings, repository=FeatureRepository([a, b])), a, b


def training_data(store, paths: dict[str, str]):

    refs = [f"user_stats:{f}" for f in A_FEATURES] + [f"item_stats:{f}" for f in B_FEATURES]
    ts = store.get_training_data(paths["labels"], refs, full_feature_names=False)
    return ts.dataset.materialize()


# -- checks and report -----------------------------------------------------------------------------
def _as_float(col: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64())
    return col.cast(pa.float64()).to_numpy(zero_copy_only=False)  # nulls become NaN


def differences(ref: pa.Table, got: pa.Table, method: str) -> list[str]:
    """Row-for-row comparison by label_id; empty when they agree (null and NaN count as equal)."""
    if got.num_rows != ref.num_rows:
        return [f"{method}: {got.num_rows:,} rows, DuckDB {ref.num_rows:,}"]
    ref, got = ref.sort_by("label_id"), got.sort_by("label_id")
    if not ref.column("label_id").equals(got.column("label_id")):
        return [f"{method}: label ids differ (a label row is missing or repeated)"]
    ids, problems = ref.column("label_id").to_numpy(), []
    for c in [*LABEL_COLS[1:], *A_FEATURES, *B_FEATURES]:
        if c not in got.column_names:
            problems.append(f"{method}: column {c!r} missing")
            continue
        x, y = _as_float(ref.column(c)), _as_float(got.column(c))
        bad = ~((x == y) | (np.isnan(x) & np.isnan(y)))
        if bad.any():
            problems.append(
                f"{method}: column {c!r} differs on {int(bad.sum()):,} rows, e.g. label_id "
                f"{ids[bad][:5].tolist()}: DuckDB {x[bad][:5].tolist()} vs {y[bad][:5].tolist()}"
            )
    return problems


def _row(m: Measurement, rows: int) -> dict:
    return {
        "wall_s": round(m.wall_s, 3),
        "cpu_s": round(m.cpu_s, 2),
        "rows": rows,
        "rows_per_s": round(rows / m.wall_s),
        "peak_rss_gib": round(m.peak_rss / GiB, 3),
        "peak_pss_gib": round(m.peak_pss / GiB, 3),
        "start_pss_gib": round(m.start_pss / GiB, 3),
    }


def _add_ratios(methods: dict[str, dict]) -> None:
    """Wall and CPU time relative to DuckDB (CPU time is the steadier one on a shared machine)."""
    base = methods["duckdb"]
    for r in methods.values():
        r["ratio_to_duckdb"] = round(r["wall_s"] / base["wall_s"], 3)
        r["cpu_ratio_to_duckdb"] = round(r["cpu_s"] / base["cpu_s"], 3)


def run_mlray(paths: dict[str, str], root: Path, args, ref: pa.Table, out: dict) -> list[str]:
    """Both mlray methods plus the ingest between them; each result is checked, then freed."""
    import ray.data

    problems: list[str] = []
    start_ray(args.cpus)
    m = measure(lambda: ray_pit_join(paths))
    _finish("point_in_time_join", m, ref, out, problems)
    m = measure(lambda: ray_pit_join(paths, datasets=True))
    _finish("point_in_time_join (Ray Datasets in)", m, ref, out, problems)
    store, a, b = make_store(root / "store", args.cpus, args.buckets)
    for view, key in [(a, "a"), (b, "b")]:
        m = measure(lambda v=view, k=key: store.ingest(v, ray.data.read_parquet(paths[k])))
        out["ingest"][view.name] = _row(m, m.result.rows) | {"version": m.result.version}
        m = measure(lambda v=view: store.compact(v))
        r = m.result
        out["compact"][view.name] = _row(m, r.rows) | {
            "files_before": r.files_before,
            "files_after": r.files_after,
            "version": r.version,
        }
    m = measure(lambda: training_data(store, paths))
    _finish("get_training_data", m, ref, out, problems)
    return problems


def _finish(method: str, m: Measurement, ref: pa.Table, out: dict, problems: list[str]) -> None:
    import ray

    got = pa.concat_tables(ray.get(list(m.result.to_arrow_refs())))
    m.result = None  # release the object-store blocks before the next method
    out["methods"][method] = _row(m, got.num_rows)
    problems.extend(differences(ref, got, method))


def report(out: dict, targets: dict[str, bool]) -> None:
    rows = [
        [
            n,
            r["wall_s"],
            r["cpu_s"],
            r["rows_per_s"],
            r["peak_rss_gib"],
            r["peak_pss_gib"],
            r["ratio_to_duckdb"],
            r["cpu_ratio_to_duckdb"],
        ]
        for n, r in out["methods"].items()
    ]
    print_table(
        f"point-in-time join, size={out['size']} ({out['rows']['labels']:,} labels x "
        f"{out['rows']['user_stats']:,} + {out['rows']['item_stats']:,} feature rows)",
        [
            "method",
            "wall s",
            "CPU s",
            "label rows/s",
            "peak RSS GiB",
            "peak PSS GiB",
            "ratio to DuckDB",
            "CPU ratio",
        ],
        rows,
    )
    for section, title, extra in [
        (
            "ingest",
            "FeatureStore.ingest (plain Parquet -> offline Delta table)",
            ["rows", "rows_per_s"],
        ),
        (
            "compact",
            "FeatureStore.compact (one sorted file per bucket, one commit)",
            ["files_before", "files_after"],
        ),
    ]:
        print_table(
            title,
            ["view", "wall s", "CPU s", *(e.replace("_", " ") for e in extra), "peak PSS GiB"],
            [
                [name, r["wall_s"], r["cpu_s"], *(r[e] for e in extra), r["peak_pss_gib"]]
                for name, r in out[section].items()
            ],
        )
    print("agree: " + ("yes" if out["agree"] else "NO"))
    for name, ok in targets.items():
        print(f"target {name}: {'met' if ok else 'NOT met'}")


def targets_met(out: dict) -> dict[str, bool]:
    """Issue 14's targets (stated for --size medium on an idle 2-core machine)."""
    m = out["methods"]
    peak = max(r["peak_pss_gib"] for r in m.values())
    gtd, pit = m["get_training_data"], m["point_in_time_join"]
    return {
        "get_training_data wall <= 0.5x DuckDB": gtd["ratio_to_duckdb"] <= 0.5,
        "get_training_data CPU < DuckDB's": gtd["cpu_ratio_to_duckdb"] < 1.0,
        "point_in_time_join wall <= 1.5x DuckDB": pit["ratio_to_duckdb"] <= 1.5,
        f"peak PSS < 6 GiB (max {peak:.2f})": peak < 6.0,
        "all methods agree row for row": out["agree"],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--seed", type=int, default=20240101)
    p.add_argument("--cpus", type=int, default=2, help="Ray CPUs and DuckDB threads")
    p.add_argument(
        "--buckets", type=int, default=16, help="offline store buckets (Settings.num_buckets)"
    )
    p.add_argument("--keep", action="store_true", help="keep the generated data and store")
    p.add_argument(
        "--dir", type=Path, default=None, help="work folder (default: a new temp folder)"
    )
    p.add_argument(
        "--ray-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment for the local Ray cluster, e.g. RAY_DATA_PARQUET_FOOTER_NUM_ACTORS=2 "
        "(repeatable)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for item in args.ray_env:  # set before ray.init so the raylet and every worker inherit it
        name, _, value = item.partition("=")
        os.environ[name] = value
    cfg = SIZES[args.size]
    root = args.dir or Path(tempfile.mkdtemp(prefix="mlray-pit-bench-"))
    try:
        t0 = time.perf_counter()
        paths = generate(root / "parquet", cfg, args.seed)
        rows = {"labels": cfg["labels"], "user_stats": cfg["rows_a"], "item_stats": cfg["rows_b"]}
        out: dict = {
            "size": args.size,
            "seed": args.seed,
            "cpus": args.cpus,
            "buckets": args.buckets,
            "ray_env": args.ray_env,
            "rows": rows,
            "generate_s": round(time.perf_counter() - t0, 2),
            "methods": {},
            "ingest": {},
            "compact": {},
        }
        m = measure(lambda: duckdb_join(paths, args.cpus))
        ref, m.result = m.result, None
        out["methods"]["duckdb"] = _row(m, ref.num_rows)
        problems = []
        if args.size == "small":
            m = measure(lambda: pandas_join(paths))
            got, m.result = m.result, None
            out["methods"]["pandas merge_asof"] = _row(m, got.num_rows)
            problems += differences(ref, got, "pandas merge_asof")
        problems += run_mlray(paths, root, args, ref, out)
        _add_ratios(out["methods"])
        out["agree"], out["problems"] = not problems, problems
        out["targets"] = targets = targets_met(out)
        report(out, targets)
        print(f"wrote {write_json(f'pit_join_{args.size}', out)}")
        for p in problems:
            print(p, file=sys.stderr)
        return 1 if problems else 0
    finally:
        if args.keep:
            print(f"kept data under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
