"""What a training run records: one name per metric, INT8 verdicts, relative lineage, the seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray.data

from mlray.export.quantize import Int8Report
from mlray.pipeline.record import int8_verdict, tuned_params
from mlray.registry import lineage
from mlray.registry.champion import PromotionConfig, decide, named_test_metrics
from mlray.training.config import TrainConfig, load_train_config
from mlray.training.dataset import ordered_execution
from mlray.training.trainer import ordered_ingest


def test_test_slice_metrics_have_one_name_everywhere():
    named = named_test_metrics({"auc": 0.8, "log_loss": 0.4, "ece": 0.01})
    assert named == {"test_auc": 0.8, "test_log_loss": 0.4, "test_ece": 0.01}
    # The champion decision reads the same names the run and the version tags carry.
    d = decide(named, named_test_metrics({"auc": 0.7}), PromotionConfig(margin=0.05), "1")
    assert d.promote and d.challenger_score == 0.8 and d.champion_score == 0.7
    loss = decide(
        {"test_log_loss": 0.40}, {"test_log_loss": 0.45}, PromotionConfig(metric="log_loss"), "1"
    )
    assert loss.promote and loss.champion_score == 0.45


def test_int8_verdict_says_kept_or_rejected_and_why():
    kept = Int8Report(kept=True, auc_fp32=0.81, auc_int8=0.808, max_auc_drop=0.005, rows=200)
    assert int8_verdict(kept) == (
        "kept",
        "INT8 kept: test AUC 0.80800 vs FP32 0.81000 on 200 rows, a drop of 0.00200, "
        "within the limit 0.005",
    )
    rejected = Int8Report(kept=False, auc_fp32=0.81, auc_int8=0.79, max_auc_drop=0.005, rows=200)
    verdict, why = int8_verdict(rejected)
    assert verdict == "rejected" and "a drop of 0.02000, over the limit 0.005" in why
    assert int8_verdict(None)[0] == "skipped"


def test_tuned_params_are_the_searched_ones_only_when_tuning():
    assert tuned_params(TrainConfig()) == ["dropout", "embedding_dim", "lr", "width"]
    assert tuned_params(load_train_config(None, tune={"num_samples": 0})) == []


def test_paths_under_the_data_root_are_recorded_relative_and_resolve_after_a_move(tmp_path: Path):
    old, new = tmp_path / "old", tmp_path / "new"
    recorded = lineage.relative_path(str(old / "raw" / "impressions"), str(old))
    assert recorded == "raw/impressions"
    assert lineage.relative_path((old / "features" / "v").as_uri(), str(old)) == "features/v"
    assert lineage.resolve_path(recorded, str(new)) == str(new / "raw" / "impressions")
    # Outside the data root: an absolute path (never one relative to the working directory).
    elsewhere = lineage.relative_path("labels/x", str(old))
    assert elsewhere == str(Path("labels/x").resolve())
    assert lineage.resolve_path(elsewhere, str(new)) == elsewhere
    assert lineage.relative_path("s3://b/root/raw/t", "s3://b/root") == "raw/t"
    assert lineage.relative_path("s3://other/t", "s3://b/root") == "s3://other/t"
    assert lineage.resolve_path("raw/t", "s3://b/root/") == "s3://b/root/raw/t"


def test_the_labels_read_is_a_tag():
    info = {
        "labels": {
            "uri": "raw/impressions",
            "version": 2,
            "label": "clicked",
            "time": "event_time",
            "columns": None,
            "start": "2026-01-01T00:00:00Z",
            "end": None,
        }
    }
    tags = lineage.lineage_tags(info, ["a:b"], "run-1", code="c")
    assert tags[lineage.TAG_LABELS] == "raw/impressions"
    assert json.loads(tags[lineage.TAG_LABELS_READ]) == {
        "label": "clicked",
        "time": "event_time",
        "columns": None,
        "start": "2026-01-01T00:00:00Z",
        "end": None,
    }


def test_datasets_built_for_training_keep_their_order():
    ctx = ray.data.DataContext.get_current()
    before = ctx.execution_options.preserve_order
    with ordered_execution():
        assert ray.data.DataContext.get_current().execution_options.preserve_order
    assert ctx.execution_options.preserve_order == before
    # Ray Train replaces the datasets' execution options with these when it feeds the workers.
    assert ordered_ingest().preserve_order


def test_the_seed_is_a_documented_default():
    seed = TrainConfig.model_fields["training"].default_factory().model_fields["seed"]
    assert seed.default == 0 and "read order" in (seed.description or "")
    job = Path(__file__).resolve().parents[3] / "jobs" / "train.yaml"
    assert "seed: 0" in job.read_text()


@pytest.mark.parametrize("key", ["metric.auc", "auc"])
def test_old_metric_names_are_gone(key: str):
    assert key not in named_test_metrics({"auc": 0.5})
