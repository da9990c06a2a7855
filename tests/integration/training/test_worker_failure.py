"""A training worker killed mid-run is replaced.

Training resumes from the last checkpoint and the job finishes.
"""

from __future__ import annotations

import psutil
import pytest
from training_helpers import mlflow_client

from mlray.config import Settings
from mlray.pipeline import PipelineResult
from mlray.registry import lineage


@pytest.mark.slow
def test_killed_worker_resumes_from_checkpoint_and_the_job_registers_a_model(
    train_root: Settings, killed_run, first_run: PipelineResult, second_run: PipelineResult
):
    assert killed_run.killed, "no training worker was found to kill"
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        for pid in killed_run.killed
    )
    result = killed_run.result
    client = mlflow_client(train_root)
    metrics = client.get_run(result.run_id).data.metrics
    assert (
        metrics["resumed_from_epoch"] >= 0
    )  # the restarted worker loaded a checkpoint, not epoch 0 weights
    steps = sorted({m.step for m in client.get_metric_history(result.run_id, "train_loss")})
    assert steps == [0, 1, 2, 3]  # every epoch was trained, before and after the restart
    assert result.version not in (first_run.version, second_run.version)


def test_beating_the_champion_by_the_margin_promotes(
    train_root: Settings, killed_run, first_run: PipelineResult, second_run: PipelineResult
):
    result = killed_run.result
    client = mlflow_client(train_root)
    assert (
        result.promoted
        and result.alias == "champion"
        and result.champion_version == first_run.version
    )
    assert "beats it by the margin -1.0" in result.reason
    assert str(client.get_model_version_by_alias("ctr_model", "champion").version) == result.version
    assert (
        str(client.get_model_version_by_alias("ctr_model", "challenger").version)
        == second_run.version
    )
    assert (
        client.get_model_version("ctr_model", result.version).tags[lineage.TAG_DECISION]
        == "champion"
    )
