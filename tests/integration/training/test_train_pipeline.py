"""The whole pipeline on real Ray, Delta and MLflow.

Champion first, then a challenger; lineage on every version.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import deltalake
import numpy as np
import pytest
import ray.data
import torch
from training_helpers import mlflow_client

from mlray.config import Settings, code_version
from mlray.offline.labels import TimeSlice
from mlray.offline.lookback import lookback_filled
from mlray.pipeline import PipelineResult
from mlray.registry import lineage
from mlray.registry.download import download_version
from mlray.registry.versions import STATE_FILE
from mlray.runtimes.encoding import encode_frame
from mlray.store import FeatureStore
from mlray.training.config import TrainConfig
from mlray.training.model import build_model


def test_first_run_tunes_and_registers_the_champion(
    train_root: Settings, first_run: PipelineResult
):
    client = mlflow_client(train_root)
    assert (
        first_run.promoted and first_run.alias == "champion" and first_run.champion_version is None
    )
    assert (
        str(client.get_model_version_by_alias("ctr_model", "champion").version) == first_run.version
    )
    assert 0.6 < first_run.metrics["test_auc"] <= 1.0
    run = client.get_run(first_run.run_id)
    assert run.info.status == "FINISHED"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{first_run.run_id}'"
    )
    assert len(children) == 2  # one per Tune trial, each with its per-epoch metrics
    assert all(len(client.get_metric_history(c.info.run_id, "val_auc")) >= 1 for c in children)
    assert [m.step for m in client.get_metric_history(first_run.run_id, "val_auc")] == [0, 1][
        : len(client.get_metric_history(first_run.run_id, "val_auc"))
    ]
    artifacts = {a.path for a in client.list_artifacts(first_run.run_id)}
    assert {"validation", "evaluation", "model", "decision.json", "train_config.json"} <= artifacts
    assert {a.path for a in client.list_artifacts(first_run.run_id, "evaluation")} == {
        "evaluation/reliability.png",
        "evaluation/score_histogram.png",
    }


def test_tuning_leaves_no_worker_reservations_behind(first_run: PipelineResult):
    # A trial ASHA stops early must not keep its workers' CPUs (see ReleaseStoppedTrials).
    import time

    deadline = time.time() + 15
    while time.time() < deadline and ray.available_resources().get("CPU", 0) < 2:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == 2


def test_second_run_on_the_same_data_is_a_challenger(
    train_root: Settings, first_run: PipelineResult, second_run: PipelineResult
):
    client = mlflow_client(train_root)
    assert not second_run.promoted and second_run.alias == "challenger"
    assert second_run.champion_version == first_run.version
    assert "does not beat it by the margin 0.05" in second_run.reason
    assert second_run.champion_metrics is not None
    assert second_run.champion_metrics["test_auc"] == pytest.approx(
        first_run.metrics["test_auc"]
    )  # same test slice
    assert (
        str(client.get_model_version_by_alias("ctr_model", "challenger").version)
        == second_run.version
    )
    assert (
        str(client.get_model_version_by_alias("ctr_model", "champion").version) == first_run.version
    )
    tags = client.get_model_version("ctr_model", second_run.version).tags
    assert tags[lineage.TAG_DECISION] == "challenger"
    first_tags = client.get_model_version("ctr_model", first_run.version).tags
    assert tags[lineage.TAG_DATA_HASH] == first_tags[lineage.TAG_DATA_HASH]  # same data, same hash
    drift = {
        k: v
        for k, v in client.get_run(second_run.run_id).data.metrics.items()
        if k.startswith("psi.")
    }
    assert drift and max(drift.values()) < 0.01  # compared with the champion's reference: no shift


def test_lineage_tags_are_present_and_correct(train_root: Settings, first_run: PipelineResult):
    client = mlflow_client(train_root)
    mv = client.get_model_version("ctr_model", first_run.version)
    tags = mv.tags
    cfg = TrainConfig()
    store = FeatureStore(train_root)
    refs = [str(r) for r in store.repo.resolve(cfg.features)] + cfg.extra_features
    labels_uri = train_root.table_uri("raw", "impressions")
    # The training set starts once every view's 7-day windows are full (start_after_lookback).
    filled = lookback_filled(
        train_root, [store.repo.view(v) for v in ("user_activity", "item_stats")]
    )
    assert filled is not None
    assert json.loads(tags[lineage.TAG_LABELS_READ])["start"] == filled.start.isoformat()
    labels = ray.data.read_delta(labels_uri).map_batches(
        TimeSlice("event_time", filled.start, None), batch_format="pyarrow"
    )
    ts = store.get_training_data(labels, refs)
    assert tags[lineage.TAG_DATA_HASH] == ts.content_hash()
    assert tags[lineage.TAG_SCHEMA_HASH] == ts.metadata["feature_schema_hash"]
    expected = {
        v: deltalake.DeltaTable(m["uri"]).version() for v, m in ts.metadata["views"].items()
    }
    expected["labels"] = deltalake.DeltaTable(labels_uri).version()
    assert json.loads(tags[lineage.TAG_DELTA_VERSIONS]) == expected
    assert_code_version(tags[lineage.TAG_CODE_VERSION])
    assert set(json.loads(tags[lineage.TAG_FEATURES])) == set(refs)
    assert json.loads(tags[lineage.TAG_SPLIT])["rows"]["test"] > 0
    assert float(tags["test_auc"]) == first_run.metrics["test_auc"]
    run_tags = client.get_run(first_run.run_id).data.tags
    assert all(
        run_tags[k] == tags[k]
        for k in (
            lineage.TAG_DATA_HASH,
            lineage.TAG_DELTA_VERSIONS,
            lineage.TAG_SCHEMA_HASH,
            lineage.TAG_CODE_VERSION,
        )
    )


def assert_code_version(tag: str) -> None:
    """A commit of this repository (HEAD may have moved on since the run), or the package version.

    The package version is what a run outside git records.
    """
    current = code_version()
    if current.startswith("mlray-"):
        assert tag == current
        return
    assert re.fullmatch(r"[0-9a-f]{40}", tag)
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{tag}^{{commit}}"],
        check=False,
        cwd=Path(__file__).parent,
        capture_output=True,
    )
    assert found.returncode == 0, f"code version {tag} is not a commit of this repository"


def test_registered_files_load_and_score_like_the_trained_model(
    train_root: Settings, first_run: PipelineResult, tmp_path: Path
):
    client = mlflow_client(train_root)
    loaded = download_version(client, "ctr_model", tmp_path, alias="champion")
    state = torch.load(loaded.path / STATE_FILE, map_location="cpu", weights_only=True)
    assert loaded.version == first_run.version
    assert set(loaded.reference.features) == set(loaded.spec.feature_names)
    assert loaded.reference.score is not None and loaded.reference.score.count > 0
    assert all(abs(sum(d.proportions) - 1) < 1e-9 for d in loaded.reference.features.values())
    names = {a.path.split("/")[-1] for a in client.list_artifacts(first_run.run_id, "model")}
    assert {
        "MLmodel",
        "model_spec.json",
        "state_dict.pt",
        "normalization.json",
        "reference.json",
        "lineage.json",
        "train_config.json",
    } <= names
    rows = (
        FeatureStore(train_root)
        .get_training_data(
            ray.data.read_delta(train_root.table_uri("raw", "impressions")).limit(64),
            loaded.spec.feature_refs,
        )
        .to_pandas()
    )
    x = encode_frame(loaded.spec, rows)
    with torch.no_grad():
        p = build_model(loaded.spec, state)(torch.from_numpy(x)).numpy()
    assert p.shape == (len(rows),) and np.all((p > 0) & (p < 1))
    assert "model.onnx" in first_run.exported
    import onnxruntime as ort

    sess = ort.InferenceSession(str(loaded.path / "model.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(out, p, atol=1e-5)
