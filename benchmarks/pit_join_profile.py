"""Where the CPU of ``FeatureStore.get_training_data`` goes, from Ray's timeline.

    python benchmarks/pit_join_profile.py --size medium [--labels-as dataset|path]

Generates the join benchmark's data (:mod:`pit_join`), ingests both views
into an offline store (and compacts them when the store can), runs the
training set once to warm up, then once more under :func:`ray.timeline`.
Every task's time in the timeline is summed by task name (the join's own
tasks, Ray Data's operators), and what the whole process tree spent beyond
the tasks (the driver, Ray Data's executor, Ray's own processes) is the
rest. Inside the join task, one bucket's read, kernel and output build are
timed again in this process. Results: ``benchmarks/results/pit_join_profile_<size>.json``.
It runs on any version of mlray (it only calls the public API), so the same
command profiles the code before and after a change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import pit_join as pj
from _common import measure, print_table, write_json

PHASES = ("task:deserialize_arguments", "task:store_outputs")


def timeline_by_task(events: list[dict], since_us: float) -> dict[str, float]:
    """Seconds of task execution per task name (Chrome-trace ``X`` events after ``since_us``)."""
    out: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("ph") != "X" or float(e.get("ts", 0)) < since_us:
            continue
        name = str(e.get("name", "?"))
        if name.startswith(("task::", "actor_task::")):
            name = name.split("::", 1)[1]
        out[name.split(" ")[0]] += float(e.get("dur", 0)) / 1e6
    return dict(out)


def kernel_split(store, view, labels_path: str) -> dict[str, float]:
    """One bucket of ``view`` joined in this process: read, kernel and output, CPU seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlray.offline.asof import JoinSpec, asof_join
    from mlray.offline.bucketing import bucket_of

    snap = store.offline.snapshot(view)
    labels = pq.read_table(labels_path)
    mine = labels.filter(pa.array(bucket_of(labels, view.join_keys, snap.num_buckets) == 0))
    mine = mine.rename_columns(["t" if c == "event_time" else c for c in mine.column_names])
    cols = [*view.join_keys, "event_time", "available_time", *[f.name for f in view.schema]]
    spec = JoinSpec(
        view.join_keys,
        "t",
        "event_time",
        tuple(f.name for f in view.schema),
        "available_time",
        view.ttl_us,
    )
    t0 = time.process_time()
    feats = snap.read_bucket(0, cols)
    t1 = time.process_time()
    asof_join(mine, feats, spec)
    t2 = time.process_time()
    return {"read one bucket": t1 - t0, "kernel one bucket": t2 - t1}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", choices=sorted(pj.SIZES), default="medium")
    p.add_argument("--seed", type=int, default=20240101)
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--labels-as", choices=["path", "dataset"], default="path")
    p.add_argument("--tag", default="", help="suffix of the results file (e.g. before/after)")
    args = p.parse_args(argv)
    import ray
    import ray.data

    root = Path(tempfile.mkdtemp(prefix="mlray-pit-profile-"))
    try:
        paths = pj.generate(root / "parquet", pj.SIZES[args.size], args.seed)
        pj.start_ray(args.cpus)
        store, a, b = pj.make_store(root / "store", args.cpus, 16)
        for view, key in [(a, "a"), (b, "b")]:
            store.ingest(view, ray.data.read_parquet(paths[key]))
            if hasattr(store, "compact"):
                store.compact(view)
        refs = [f"user_stats:{f}" for f in pj.A_FEATURES] + [
            f"item_stats:{f}" for f in pj.B_FEATURES
        ]

        def run():
            lab = (
                paths["labels"]
                if args.labels_as == "path"
                else ray.data.read_parquet(paths["labels"])
            )
            ts = store.get_training_data(lab, refs, full_feature_names=False)
            return ts.dataset.materialize().count()

        run()  # warm: worker imports, footers
        since = time.time() * 1e6
        m = measure(run)
        timeline = timeline_by_task(ray.timeline(), since)
        # task:* events are phases inside the named task events (counted there).
        tasks = {n: t for n, t in timeline.items() if not n.startswith("task:")}
        phases = {n: t for n, t in timeline.items() if n in PHASES}
        in_tasks = sum(tasks.values())
        rows = [
            [n, round(s, 2), round(100 * s / m.cpu_s, 1)]
            for n, s in sorted(tasks.items(), key=lambda kv: -kv[1])
        ]
        rows += [
            [
                f"  of which {n.removeprefix('task:')} (all tasks)",
                round(t, 2),
                round(100 * t / m.cpu_s, 1),
            ]
            for n, t in phases.items()
        ]
        rows.append(
            [
                "(outside tasks: driver, Ray Data executor, Ray processes)",
                round(m.cpu_s - in_tasks, 2),
                round(100 * (m.cpu_s - in_tasks) / m.cpu_s, 1),
            ]
        )
        print_table(
            f"get_training_data CPU by task, size={args.size}, labels as {args.labels_as} "
            f"(wall {m.wall_s:.2f} s, CPU {m.cpu_s:.2f} s)",
            ["task", "seconds", "% of CPU"],
            rows,
        )
        kernel = kernel_split(store, a, str(Path(paths["labels"]) / "part-000.parquet"))
        print(json.dumps({k: round(v, 3) for k, v in kernel.items()}))
        out = {
            "size": args.size,
            "labels_as": args.labels_as,
            "wall_s": round(m.wall_s, 3),
            "cpu_s": round(m.cpu_s, 3),
            "tasks_s": {k: round(v, 3) for k, v in tasks.items()},
            "task_phases_s": {k: round(v, 3) for k, v in phases.items()},
            "outside_tasks_s": round(m.cpu_s - in_tasks, 3),
            "user_stats_bucket0_cpu_s": {k: round(v, 3) for k, v in kernel.items()},
        }
        suffix = f"_{args.tag}" if args.tag else ""
        print(f"wrote {write_json(f'pit_join_profile_{args.size}{suffix}', out)}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
