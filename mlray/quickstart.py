"""``make quickstart``: the whole flow on embedded defaults, stage by stage.

Local Ray, Delta tables under ./mlray-data, embedded Redis, MLflow on SQLite.
Each stage prints what it did; the run ends with a monitor run over the served
traffic (a dry run: it says what it would retrain) and a summary table.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlray.config import Settings, load_settings
from mlray.demo.generate import GenerateSummary, generate_clickstream
from mlray.demo.window import demo_window
from mlray.ray_session import ensure_ray, set_verbose
from mlray.store import FeatureStore

console = Console(width=None if sys.stdout.isatty() else 150)
DEMO = {"users": 2000, "items": 300, "days": 14, "seed": 42}
SERVE_REQUESTS = 300
MONITOR_SKEW = 100  # logged predictions the monitor's skew audit recomputes
# A small tuning budget so the quickstart stays a few minutes on a laptop.
TRAIN_BUDGET = {
    "model_name": "ctr_model",
    "experiment": "mlray-quickstart",
    "tune": {"num_samples": 2},
    "training": {"epochs": 2},
}
TRAIN_FEATURES = [
    "user_activity:impressions_24h",
    "user_activity:clicks_24h",
    "user_activity:ctr_24h",
    "user_activity:ctr_7d",
    "user_activity:usual_price_7d",
    "item_stats:ctr_24h",
    "item_stats:popularity_7d",
    "item_stats:current_price",
    "item_catalog:category",
    "item_catalog:list_price",
    "request_features:hour_of_day",
    "request_features:price_vs_usual",
    "request_features:device_mobile",
]


class Run:
    """Times each stage and collects one summary line per stage."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, float]] = []

    def stage(self, name: str, fn: Callable[[], tuple[Any, str]]) -> Any:
        console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        result, summary = fn()
        secs = time.perf_counter() - t0
        self.lines.append((name, summary, secs))
        console.print(f"[green]✓[/] {name}: {summary} [dim]({secs:.1f} s)[/]")
        return result

    def summary(self) -> None:
        table = Table(title="mlray quickstart")
        for col in ("stage", "result", "seconds"):
            table.add_column(col)
        for name, text, secs in self.lines:
            table.add_row(name, text, f"{secs:.1f}")
        console.print(table)


def generate(settings: Settings) -> tuple[GenerateSummary, str]:
    # The stream ends at the current hour, so the online store's TTLs (real expiry
    # times) hold its values.
    start, days = demo_window(days=DEMO["days"])
    s = generate_clickstream(
        settings.raw_root,
        users=DEMO["users"],
        items=DEMO["items"],
        days=days,
        seed=DEMO["seed"],
        start=start,
        storage_options=settings.storage_options or None,
    )
    return (
        s,
        f"{s.impressions:,} impressions, {s.users:,} users, {s.items:,} items, "
        f"click rate {s.click_rate:.3f}",
    )


def build(fs: FeatureStore, demo: GenerateSummary) -> tuple[list, str]:
    results = fs.build_features(demo.start, demo.end)
    return results, ", ".join(f"{r.view} {r.rows:,} rows" for r in results)


def training_set(fs: FeatureStore, settings: Settings):
    import ray.data

    labels = ray.data.read_delta(settings.table_uri("raw", "impressions")).select_columns(
        ["impression_id", "user_id", "item_id", "event_time", "device", "price", "clicked"]
    )
    ts = fs.get_training_data(labels, "ctr_model_v1")
    ds = ts.dataset.materialize()
    n = ds.count()
    sample = ds.limit(2000).to_pandas().dropna().head(3)
    print(sample.T.to_string())
    versions = ", ".join(f"{v}@v{m['version']}" for v, m in ts.metadata["views"].items())
    return ts, f"{n:,} rows × {len(ts.features)} features ({versions})"


def materialize(fs: FeatureStore, demo: GenerateSummary) -> tuple[list, str]:
    results = fs.materialize(demo.end)
    fresh = fs.online_freshness(now=demo.end)
    lags = ", ".join(f"{f.view} lag {f.lag_s / 60:.0f} min" for f in fresh if f.lag_s is not None)
    return results, ", ".join(f"{r.view} {r.entities:,} entities" for r in results) + f" ({lags})"


def lookup(fs: FeatureStore, demo: GenerateSummary) -> tuple[Any, str]:
    rows = [
        {"user_id": u, "item_id": i, "device": d, "price": p}
        for u, i, d, p in [
            (7, 3, "mobile", 19.9),
            (42, 11, "desktop", 120.0),
            (10**9, 5, "tablet", 5.0),
        ]
    ]
    t0 = time.perf_counter()
    result = fs.get_online_features(rows, TRAIN_FEATURES, request_time=demo.end)
    ms = (time.perf_counter() - t0) * 1000
    shown = [
        "user_activity__ctr_7d",
        "user_activity__usual_price_7d",
        "item_stats__ctr_24h",
        "item_catalog__category",
        "request_features__price_vs_usual",
        "request_features__hour_of_day",
    ]
    table = Table(title="online lookup (3 entity rows, one Redis round trip)")
    for col in ["user_id", "item_id", *shown, "missing"]:
        table.add_column(col.replace("__", ":"), overflow="fold")
    for req, values, missing in zip(rows, result.rows, result.missing, strict=True):
        table.add_row(
            str(req["user_id"]),
            str(req["item_id"]),
            *[_fmt(values.get(c)) for c in shown],
            str(len(missing)),
        )
    console.print(table)
    return result, f"{len(rows)} rows × {len(result.features)} features in {ms:.2f} ms"


def train(settings: Settings, run_no: int) -> tuple[Any, str]:
    from mlray.pipeline import run_pipeline
    from mlray.training.config import load_train_config

    cfg = load_train_config(None, **TRAIN_BUDGET)
    r = run_pipeline(settings, cfg, echo=lambda line: console.print(f"  [dim]{line}[/]"))
    console.print(f"  decision: {r.reason}")
    return r, (
        f"{r.model_name} v{r.version} → {r.alias}, test AUC {r.metrics['test_auc']:.4f}"
        f"{', files ' + ', '.join(r.exported) if r.exported else ''}"
    )


def score(fs: FeatureStore, settings: Settings, demo: GenerateSummary) -> tuple[Any, str]:
    """What a serving replica does: champion files from MLflow → ModelRuntime, features → scores."""
    from mlray.registry.download import download_version
    from mlray.registry.tracking import connect
    from mlray.runtimes import load_runtime
    from mlray.runtimes.encoding import encode_frame

    client, _ = connect(settings, str(TRAIN_BUDGET["experiment"]))
    champion = download_version(
        client,
        str(TRAIN_BUDGET["model_name"]),
        Path(settings.data_root) / "serving",
        alias="champion",
    )
    runtime = load_runtime(champion.path)
    rows = [
        {"user_id": u, "item_id": i, "device": "mobile", "price": 20.0}
        for u, i in [(7, 3), (42, 11), (99, 40)]
    ]
    spec = champion.spec
    online = fs.get_online_features(rows, spec.feature_refs, request_time=demo.end)
    scores = runtime.predict(encode_frame(spec, online.rows))
    shown = ", ".join(f"{s:.3f}" for s in scores)
    return scores, f"champion v{champion.version} on {runtime.name}: scores {shown}"


def serve_traffic(settings: Settings) -> tuple[Any, str]:
    """Serve the champion with the challenger in shadow, send demo traffic, count logged rows."""
    import deltalake
    import requests
    from ray import serve

    from mlray.demo.traffic import bodies_like_impressions, send
    from mlray.serving.app import build_app
    from mlray.serving.config import ServeArgs

    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    args = ServeArgs(
        model_name=str(TRAIN_BUDGET["model_name"]),
        shadow="challenger",
        settings={"data_root": settings.data_root},
    )
    serve.run(build_app(args), name="mlray", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    bodies = bodies_like_impressions(
        settings.table_uri("raw", "impressions"),
        SERVE_REQUESTS,
        seed=1,
        storage_options=settings.storage_options,
    )
    traffic = send(url, bodies, batch_size=25)
    info = requests.get(f"{url}/model", timeout=5).json()
    serve.delete("mlray")  # graceful: every buffered prediction row is committed
    serve.shutdown()
    log = deltalake.DeltaTable(
        settings.table_uri("predictions", args.log.table),
        storage_options=settings.storage_options or None,
    )
    ids = set(traffic.request_ids)
    logged = sum(
        r in ids for r in log.to_pyarrow_table(columns=["request_id"])["request_id"].to_pylist()
    )
    table = Table(
        title=f"served by v{info['model_version']} on {info['runtime']}, "
        f"shadow v{info['shadow_version']}"
    )
    for col in ("user_id", "item_id", "device", "score", "missing"):
        table.add_column(col)
    for body, answer in list(zip(bodies, traffic.answers, strict=False))[:4]:
        e, c = body["entities"], body["context"]
        table.add_row(
            str(e["user_id"]),
            str(e["item_id"]),
            c["device"],
            f"{answer['score']:.4f}",
            str(len(answer["missing_features"])),
        )
    console.print(table)
    summary = (
        f"{len(traffic.answers)} predictions, {traffic.errors} errors, per HTTP call p50 "
        f"{traffic.percentile(50):.1f} ms p99 {traffic.percentile(99):.1f} ms, "
        f"logged {logged}/{len(ids)}"
    )
    return traffic, summary


def delayed_labels(settings: Settings) -> tuple[Any, str]:
    """The demo's hidden click model labels the served requests; labels land 1-30 min later."""
    from mlray.demo.served_labels import DEFAULT_DELAY_S, label_served

    # The labels as they stand an hour on: every one has landed by then.
    later = datetime.now(UTC) + timedelta(hours=1)
    run = label_served(settings, seed=DEMO["seed"], users=DEMO["users"], now=later, overwrite=True)
    lo, hi = (d / 60 for d in DEFAULT_DELAY_S)
    return run, (
        f"{run.written} labels ({run.clicks} clicks) landing {lo:.0f}-{hi:.0f} min after their "
        f"requests, {run.pending} still pending an hour on, {run.skipped} unlabelled"
    )


def monitor(settings: Settings) -> tuple[Any, str]:
    """``mlray monitor --dry-run`` over the served traffic: every check, what it would do."""
    from mlray.monitoring.config import MonitorConfig
    from mlray.monitoring.monitor import run_monitor

    cfg = MonitorConfig(
        model_name=str(TRAIN_BUDGET["model_name"]),
        skew={"sample": MONITOR_SKEW},
        # The demo catalog changes about ten times a day: a day's lag is still fresh for it.
        freshness={"limits_s": {"item_catalog": 86_400}},
    )
    report = run_monitor(cfg, settings, dry_run=True)
    table = Table(title=f"monitor over the last {cfg.window_hours:g} h (dry run)")
    for col in ("check", "status", "figures"):
        table.add_column(col, overflow="fold")
    for row in report.summary_rows():
        table.add_row(row["check"], row["status"], row["figures"])
    console.print(table)
    console.print(f"  report: {report.out_dir}/report.html")
    breaches = ", ".join(sorted({a.check for a in report.breaches})) or "none"
    return report, (
        f"{report.rows} predictions; breaches: {breaches}; retrain: "
        f"{report.retrain.get('action')}; {report.metrics_exported} Ray metric series"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description="The whole mlray flow on embedded defaults.")
    args.add_argument("--verbose", action="store_true", help="Show Ray's own logs too.")
    set_verbose(args.parse_args(argv).verbose)
    settings = load_settings()
    console.print(f"data root: {settings.data_root}   MLflow: {settings.tracking_uri}")
    ensure_ray(settings)
    run = Run()
    fs = FeatureStore(settings)
    demo = run.stage("demo data", lambda: generate(settings))
    run.stage("feature pipeline", lambda: build(fs, demo))
    run.stage("training set", lambda: training_set(fs, settings))
    run.stage("materialize to Redis", lambda: materialize(fs, demo))
    run.stage("online lookup", lambda: lookup(fs, demo))
    run.stage("train #1 (first model)", lambda: train(settings, 1))
    run.stage("train #2 (same data)", lambda: train(settings, 2))
    run.stage("score with the champion", lambda: score(fs, settings, demo))
    run.stage("serve with the challenger in shadow", lambda: serve_traffic(settings))
    run.stage("delayed labels", lambda: delayed_labels(settings))
    run.stage("monitor", lambda: monitor(settings))
    run.summary()
    console.print(
        f"Browse runs and versions: .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri}"
    )
    fs.close()


if __name__ == "__main__":
    main()
