"""Training-pipeline fixtures: a private copy of the demo data, pipeline runs shared by the tests.

The runs build on each other as a deployment would: the first registers the
champion, the second (same data, a margin it cannot meet) a challenger, the
third (a worker killed mid-run, a margin any model meets) replaces the
champion. They are session fixtures so each runs once, whichever test asks first.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import ray
from training_helpers import small_config

from mlray.config import Settings, load_settings
from mlray.pipeline import PipelineResult, run_pipeline


@pytest.fixture(scope="session")
def train_root(demo_root: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the demo data root (tables only), so MLflow and Ray results land in our tree."""
    root = tmp_path_factory.mktemp("train") / "data"
    shutil.copytree(
        demo_root.data_root,
        root,
        ignore=shutil.ignore_patterns("mlflow.db", "mlartifacts", "ray_results"),
    )
    return load_settings(config_file=None, data_root=str(root), num_buckets=4)


@pytest.fixture(scope="session")
def first_run(train_root: Settings) -> PipelineResult:
    """Tuned (2 trials side by side): becomes the champion."""
    cfg = small_config(tune={"num_samples": 2, "max_concurrent_trials": 2})
    return run_pipeline(train_root, cfg, echo=lambda line: None)


@pytest.fixture(scope="session")
def second_run(train_root: Settings, first_run: PipelineResult) -> PipelineResult:
    """Same data, a margin no retrain meets: registered as challenger, champion untouched."""
    return run_pipeline(
        train_root, small_config(promotion={"margin": 0.05}), echo=lambda line: None
    )


@dataclass
class KilledRun:
    result: PipelineResult
    killed: list[int] = field(default_factory=list)
    seen_checkpoint: str = ""


def train_workers() -> list[psutil.Process]:
    """The Ray Train worker processes of this test session's Ray node."""
    socket = ray.nodes()[0]["RayletSocketName"]
    for p in psutil.process_iter(["name", "cmdline"]):
        if p.info["name"] == "raylet" and socket in " ".join(p.info["cmdline"] or []):
            return [
                c for c in p.children(recursive=True) if c.name().startswith("ray::RayTrainWorker")
            ]
    return []


class WorkerKiller(threading.Thread):
    """Waits until a new run under ``storage`` has registered a checkpoint; SIGKILLs its worker."""

    def __init__(self, storage: Path) -> None:
        super().__init__(daemon=True)
        self.storage, self.before = storage, set(storage.glob("*")) if storage.exists() else set()
        self.stop, self.killed, self.checkpoint = threading.Event(), [], ""

    def run(self) -> None:
        while not self.stop.is_set() and not self.killed:
            for run_dir in set(self.storage.glob("*")) - self.before:
                # The controller writes this snapshot once a reported checkpoint is registered:
                # killing earlier (while the checkpoint directory is still being written) would
                # lose it.
                ckpts = sorted(run_dir.glob("checkpoint_*"))
                if ckpts and (run_dir / "checkpoint_manager_snapshot.json").exists():
                    self.checkpoint = str(ckpts[0])
                    for worker in train_workers():
                        os.kill(worker.pid, signal.SIGKILL)
                        self.killed.append(worker.pid)
            time.sleep(0.05)


@pytest.fixture(scope="session")
def killed_run(train_root: Settings, second_run: PipelineResult) -> Iterator[KilledRun]:
    """Four slow epochs; the worker is killed after the first checkpoint.

    Any model is promoted (margin -1).
    """
    cfg = small_config(
        training={"epochs": 4, "batch_size": 32, "max_failures": 2}, promotion={"margin": -1.0}
    )
    killer = WorkerKiller(Path(train_root.table_uri("ray_results", cfg.model_name)))
    killer.start()
    try:
        result = run_pipeline(train_root, cfg, echo=lambda line: None)
    finally:
        killer.stop.set()
        killer.join(5)
    yield KilledRun(result, killer.killed, killer.checkpoint)
