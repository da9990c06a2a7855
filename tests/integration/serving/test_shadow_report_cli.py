"""``mlray shadow-report`` on a real Delta prediction log and a real MLflow SQLite store, no Ray."""

from __future__ import annotations

import base64
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlray.cli import app
from mlray.config import Settings, load_settings
from mlray.serving.prediction_log import DeltaLogWriter, LogRow, to_table

DAY1 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY2 = datetime(2026, 3, 3, 10, tzinfo=UTC)
# Pair v3 vs v4 on day 1 (ties on both sides), pair v4 vs v5 on day 2.
CHAMPION = [0.1, 0.4, 0.6, 0.6, 0.9]
SHADOW = [0.2, 0.4, 0.4, 0.7, 0.8]
REPO = Path(__file__).resolve().parents[3]


def row(
    t: datetime,
    score: float,
    version: str,
    shadow: float | None,
    shadow_version: str | None,
    degraded: bool = False,
) -> LogRow:
    return LogRow(
        request_id=f"r-{t.timestamp()}-{score}",
        request_time_us=int(t.timestamp() * 1_000_000),
        route="/predict",
        model_name="ctr_model",
        entities={"user_id": 1},
        context={},
        features={"user_activity__ctr_7d": 0.1},
        feature_event_times={"user_activity": None},
        missing_features=[],
        score=score,
        model_version=version,
        latency_ms=3.0,
        degraded=degraded,
        shadow_score=shadow,
        shadow_version=shadow_version,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh data root (the log and MLflow's SQLite under it); no Ray."""
    return load_settings(config_file=None, data_root=str(tmp_path / "data"))


@pytest.fixture
def env(settings: Settings) -> dict[str, str | None]:
    # No settings file; a wide terminal so an error stays on one line whatever the tmp path.
    return {"MLRAY_DATA_ROOT": settings.data_root, "MLRAY_CONFIG": None, "COLUMNS": "2000"}


@pytest.fixture
def log(settings: Settings) -> str:
    uri = settings.table_uri("predictions", "predictions")
    minute = timedelta(minutes=1)
    day1 = [
        row(DAY1 + i * minute, c, "3", s, "4")
        for i, (c, s) in enumerate(zip(CHAMPION, SHADOW, strict=True))
    ]
    excluded = [
        row(DAY1 - timedelta(days=1), 0.0, "3", 1.0, "4"),  # before --start
        row(DAY1 + 9 * minute, 0.0, "3", 1.0, "4", degraded=True),
        row(DAY1 + 10 * minute, 0.9, "3", None, None),  # no shadow
        row(DAY2 + timedelta(days=1), 1.0, "4", 0.0, "5"),  # at --end (exclusive)
    ]
    day2 = [row(DAY2, 0.3, "4", 0.35, "5"), row(DAY2 + minute, 0.7, "4", 0.6, "5")]
    writer = DeltaLogWriter(uri, settings.storage_options)
    writer.append(day1 + excluded[:2])
    writer.append(excluded[2:] + day2)
    return uri


def invoke(env: dict[str, str | None], *args: str):
    return CliRunner().invoke(app, ["shadow-report", *args], env=env)


def test_report_figures_html_and_mlflow_run(settings, env, log, tmp_path) -> None:
    out = tmp_path / "report"
    window = ["--start", "2026-03-02T00:00:00Z", "--end", "2026-03-04T10:00:00Z"]
    r = invoke(env, *window, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "Shadow vs champion" in r.output and "mean_abs_diff" in r.output
    body = json.loads((out / "report.json").read_text())
    first, second = body["pairs"]
    assert (first["model_version"], first["shadow_version"]) == ("3", "4")
    # |diff| [.1, 0, .2, .1, .1]; decisions at .5 [F F T T T] vs [F F F T T]; tied ranks
    # [1, 2, 3.5, 3.5, 5] vs [1, 2.5, 2.5, 4, 5] give 8.75 / 9.5.
    assert first["rows"] == 5
    assert first["mean_abs_diff"] == pytest.approx(0.1)
    assert first["max_abs_diff"] == pytest.approx(0.2)
    assert first["flip_share"] == pytest.approx(0.2)
    assert first["spearman"] == pytest.approx(8.75 / 9.5)
    assert first["pearson"] == pytest.approx(0.26 / math.sqrt(0.348 * 0.24))
    assert (first["champion_mean"], first["shadow_mean"]) == pytest.approx((0.52, 0.5))
    # v4 vs v5: |diff| .05 and .1, no flip, two rows in the same order.
    assert (second["model_version"], second["shadow_version"], second["rows"]) == ("4", "5", 2)
    assert second["mean_abs_diff"] == pytest.approx(0.075)
    assert second["max_abs_diff"] == pytest.approx(0.1)
    assert second["flip_share"] == 0.0 and second["spearman"] == pytest.approx(1.0)
    page = (out / "report.html").read_text()
    images = page.split("data:image/png;base64,")[1:]
    assert len(images) == 4  # a scatter and a histogram per pair
    assert base64.b64decode(images[0].split("'")[0])[:4] == b"\x89PNG"
    _check_mlflow_run(settings, body["run_id"])


def _check_mlflow_run(settings: Settings, run_id: str) -> None:
    from mlray.registry.tracking import connect

    client, experiment_id = connect(settings, "mlray-monitoring")
    run = client.get_run(run_id)
    assert run.info.experiment_id == experiment_id and run.info.status == "FINISHED"
    assert run.info.run_name.startswith("shadow-report-")
    assert run.data.tags["mlray.pair.0"] == "ctr_model: v3 vs shadow v4"
    assert run.data.tags["mlray.pair.1"] == "ctr_model: v4 vs shadow v5"
    assert run.data.metrics["shadow.mean_abs_diff"] == pytest.approx(0.075)  # latest pair
    history = client.get_metric_history(run_id, "shadow.mean_abs_diff")
    assert {m.step: m.value for m in history} == pytest.approx({0: 0.1, 1: 0.075})
    assert {m.step for m in client.get_metric_history(run_id, "shadow.flip_share")} == {0, 1}
    names = {a.path for a in client.list_artifacts(run_id, "shadow_report")}
    assert names == {"shadow_report/report.json", "shadow_report/report.html"}


def test_default_window_and_folder(settings, env, log) -> None:
    r = invoke(env, "--threshold", "0.05", "--no-mlflow")
    assert r.exit_code == 0, r.output
    reports = list((Path(settings.data_root) / "reports" / "shadow").glob("*/report.json"))
    assert len(reports) == 1
    body = json.loads(reports[0].read_text())
    assert body["run_id"] is None and body["threshold"] == 0.05
    # every non-degraded shadow row counts: day 0's 0 vs 1 joins v3/v4, day 3's 1 vs 0 v4/v5
    assert [p["rows"] for p in body["pairs"]] == [6, 3]
    assert body["pairs"][0]["max_abs_diff"] == pytest.approx(1.0)
    assert body["pairs"][0]["flip_share"] == pytest.approx(1 / 6)  # only 0 vs 1 flips at .05


@pytest.mark.parametrize("empty", [False, True])
def test_missing_or_empty_log_is_one_error_line_and_exit_2(settings, env, empty) -> None:
    uri = settings.table_uri("predictions", "predictions")
    if empty:
        from deltalake import write_deltalake

        write_deltalake(uri, to_table([]), partition_by=["day"])
    r = invoke(env)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[1].startswith("full traceback: "), r.output
    assert lines[0].startswith("NotFoundError:") and uri in lines[0]
    assert "serve some traffic" in lines[0] and "Traceback" not in r.output


def test_job_entrypoint(settings, log, tmp_path) -> None:
    out = tmp_path / "job"
    env = {k: v for k, v in os.environ.items() if k != "MLRAY_CONFIG"}
    env["MLRAY_DATA_ROOT"] = settings.data_root
    cmd = [sys.executable, str(REPO / "jobs" / "shadow_report.py"), "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--no-mlflow", "--start", "2026-03-03T00:00:00Z"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ctr_model v4 vs shadow v5: 3 rows" in proc.stdout
    assert json.loads((out / "report.json").read_text())["pairs"][0]["rows"] == 3
    proc = subprocess.run(
        [*cmd, "--table", "nope"], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 2 and proc.stderr.startswith("NotFoundError: Prediction log")
