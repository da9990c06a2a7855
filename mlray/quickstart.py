"""``make quickstart``: the whole flow on embedded defaults, stage by stage.

Local Ray, Delta tables under ./mlray-data, embedded Redis, MLflow on SQLite.
Each stage prints what it did; the run ends with a summary table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from mlray.config import Settings, load_settings
from mlray.demo.generate import GenerateSummary, generate_clickstream
from mlray.ray_session import ensure_ray
from mlray.store import FeatureStore

console = Console()
DEMO = {"users": 2000, "items": 300, "days": 14, "seed": 42}


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
    s = generate_clickstream(settings.raw_root, **DEMO, storage_options=settings.storage_options or None)
    return s, f"{s.impressions:,} impressions, {s.users:,} users, {s.items:,} items, click rate {s.click_rate:.3f}"


def build(fs: FeatureStore, demo: GenerateSummary) -> tuple[list, str]:
    results = fs.build_features(demo.start, demo.end)
    return results, ", ".join(f"{r.view} {r.rows:,} rows" for r in results)


def training_set(fs: FeatureStore, settings: Settings):
    import ray.data

    labels = ray.data.read_delta(settings.table_uri("raw", "impressions")).select_columns(
        ["impression_id", "user_id", "item_id", "event_time", "device", "price", "clicked"])
    ts = fs.get_training_data(labels, "ctr_model_v1")
    ds = ts.dataset.materialize()
    n = ds.count()
    sample = ds.limit(2000).to_pandas().dropna().head(3)
    print(sample.T.to_string())
    versions = ", ".join(f"{v}@v{m['version']}" for v, m in ts.metadata["views"].items())
    return ts, f"{n:,} rows × {len(ts.features)} features ({versions})"


def main() -> None:
    settings = load_settings()
    console.print(f"data root: {settings.data_root}   MLflow: {settings.tracking_uri}")
    ensure_ray(settings)
    run = Run()
    fs = FeatureStore(settings)
    demo = run.stage("demo data", lambda: generate(settings))
    run.stage("feature pipeline", lambda: build(fs, demo))
    run.stage("training set", lambda: training_set(fs, settings))
    run.summary()


if __name__ == "__main__":
    main()
