"""The monitor end to end on a hand-made log: a breach submits ONE real Ray job, no breach none.

A registered version (real MLflow) carries a reference for one feature and
the score; the prediction log (real Delta) holds a day of traffic that matches
it and, a day later, an hour that does not. The retrain is a trivial job on the
shared ``ray start --head`` (tests/integration/conftest.py); the cooldown state
file keeps a second breach from submitting another.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from mlray.config import Settings
from mlray.monitoring.config import MonitorConfig
from mlray.monitoring.monitor import run_monitor
from mlray.monitoring.ray_metrics import exported
from mlray.online.embedded import EmbeddedRedis, embedded_dir
from mlray.registry.tracking import connect
from mlray.registry.versions import ModelPackage, register
from mlray.runtimes.model_spec import ModelSpec
from mlray.serving.prediction_log import DeltaLogWriter, LogRow
from mlray.validation.psi import Distribution, Reference

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MODEL = "ctr_model"
# price: a quarter in each bin; score: half either side of 0.5.
REFERENCE = Reference(
    {"shop__price": Distribution("numeric", [0.25, 0.25, 0.25, 0.25, 0.0], [10, 20, 30], [], 1000)},
    Distribution("numeric", [0.5, 0.5, 0.0], [0.5], [], 1000),
    1000,
)


def register_champion(settings: Settings, tmp: Path) -> str:
    """Version 1 of MODEL with REFERENCE, aliased champion; returns its run id."""
    client, experiment = connect(settings, "monitor-test")
    run_id = client.create_run(experiment).info.run_id
    spec = ModelSpec(["shop__price"], [], {}, [0.0], [1.0], [0.0], feature_refs=["shop:price"])
    x = np.zeros((2, 1), np.float32)
    metrics = {"test_auc": 0.7}
    pkg = ModelPackage(tmp / "model", spec, REFERENCE, metrics, {}, {}, {}, x, x[:, 0], [])
    assert register(client, MODEL, run_id, pkg, "champion") == "1"
    return run_id


def log_traffic(settings: Settings) -> None:
    """60 rows like the reference the day before T0, 60 drifted ones in the hour before T0."""
    rows = []
    for i in range(60):
        like = T0 - timedelta(days=1, minutes=60 - i)
        drifted = T0 - timedelta(minutes=60 - i)
        rows.append(row(f"like-{i}", like, price=5.0 + 10 * (i % 4), score=0.2 + 0.6 * (i % 2)))
        rows.append(row(f"drift-{i}", drifted, price=25.0, score=0.9))
    DeltaLogWriter(settings.table_uri("predictions", "predictions")).append(rows)


def row(request_id: str, t: datetime, price: float, score: float) -> LogRow:
    return LogRow(
        request_id, int(t.timestamp() * 1e6), "/predict", MODEL, {"user_id": 1}, {"price": price},
        {"shop__price": price}, {}, [], score, "1", 1.0, False,
    )  # fmt: skip


def config(head: str, tmp: Path, end: datetime) -> MonitorConfig:
    work = tmp / "job"
    work.mkdir(exist_ok=True)
    (work / "marker.txt").write_text("uploaded")
    entrypoint = (
        "python -c \"import os; print('retrain', open('marker.txt').read(), "
        "os.environ['MLRAY_DATA_ROOT'])\""
    )
    return MonitorConfig(
        model_name=MODEL,
        window_hours=1,
        end=end.isoformat(),
        drift={"min_rows": 20},
        skew={"sample": 20},
        retrain={"address": head, "entrypoint": entrypoint, "working_dir": str(work)},
    )


def wait_done(client, job_id: str, timeout_s: float = 90) -> str:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(job_id))
        if status.endswith(("SUCCEEDED", "FAILED", "STOPPED")) or time.monotonic() > deadline:
            return status
        time.sleep(0.5)


def test_a_breach_submits_one_retrain_job_and_no_breach_or_the_cooldown_submit_none(
    settings: Settings, ray_head_address: str, tmp_path: Path
) -> None:
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(ray_head_address)

    def ours() -> list:
        return [j for j in jobs.list_jobs() if (j.metadata or {}).get("mlray.trigger") == "monitor"]

    model_run = register_champion(settings, tmp_path)
    log_traffic(settings)
    try:
        # The day before: traffic like the reference, no breach, nothing submitted.
        calm = run_monitor(
            config(ray_head_address, tmp_path, T0 - timedelta(days=1)),
            settings,
            now=T0 - timedelta(days=1),
            log_mlflow=False,
        )
        assert calm.rows == 60 and not calm.breached, calm.summary_rows()
        assert calm.section("feature_drift").figures["psi"]["shop:price"] < 0.01
        assert calm.retrain["action"] == "none" and ours() == []

        # The drifted hour: both drift checks breach and the retrain job is submitted.
        hot = run_monitor(config(ray_head_address, tmp_path, T0), settings, now=T0)
        assert {a.check for a in hot.breaches} == {"feature_drift", "score_drift"}
        assert hot.retrain["action"] == "submitted", hot.retrain
        job_id = hot.retrain["job_id"]
        assert wait_done(jobs, job_id).endswith("SUCCEEDED"), jobs.get_job_logs(job_id)
        root = str(Path(settings.data_root).resolve())
        assert f"retrain uploaded {root}" in jobs.get_job_logs(job_id)
        assert [j.submission_id for j in ours()] == [job_id]

        # A minute later the breach persists: the cooldown holds, no second job.
        again = run_monitor(
            config(ray_head_address, tmp_path, T0), settings, now=T0 + timedelta(minutes=1),
            log_mlflow=False,
        )  # fmt: skip
        assert again.breached and again.retrain["action"] == "cooldown"
        assert again.retrain["job_id"] == job_id and len(ours()) == 1
    finally:
        EmbeddedRedis(embedded_dir(settings)).stop(save=False)

    # The report: on disk, in MLflow (its own run and the serving version's run), as Ray metrics.
    out = Path(hot.out_dir)
    assert (out / "report.json").exists() and "<img alt" in (out / "report.html").read_text()
    assert hot.model_run_id == model_run and hot.run_id is not None
    client, _ = connect(settings, "monitor-test")
    stamp = out.name
    assert {a.path for a in client.list_artifacts(model_run, f"monitor/{stamp}")} == {
        f"monitor/{stamp}/report.html",
        f"monitor/{stamp}/report.json",
    }
    psi = client.get_run(hot.run_id).data.metrics["score_psi.1"]
    assert psi == pytest.approx(hot.section("score_drift").figures["psi"]["1"])
    assert exported()["mlray_monitor_score_psi{model_version=1}"] == pytest.approx(psi)
