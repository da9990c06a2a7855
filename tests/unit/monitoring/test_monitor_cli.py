"""``mlray monitor`` on a data root with nothing served yet: every check says why, exit 0."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mlray.cli import app
from mlray.config import load_settings
from mlray.online.embedded import EmbeddedRedis, embedded_dir


def test_monitor_with_no_prediction_log_reports_each_check_skipped_and_exits_0(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    env = {"MLRAY_DATA_ROOT": str(root), "COLUMNS": "250"}
    out = tmp_path / "report"
    try:
        done = CliRunner().invoke(
            app, ["monitor", "--dry-run", "--no-mlflow", "--out", str(out)], env=env
        )
    finally:
        EmbeddedRedis(embedded_dir(load_settings(config_file=None, data_root=str(root)))).stop(
            save=False
        )
    assert done.exit_code == 0, done.output
    assert "does not exist" in done.output and f"report: {out}/report.html" in done.output
    body = json.loads((out / "report.json").read_text())
    status = {name: c["status"] for name, c in body["checks"].items()}
    assert status == {
        "feature_drift": "skipped",
        "score_drift": "skipped",
        "performance": "skipped",
        "promotion": "skipped",
        "freshness": "ok",  # no lookups, nothing materialized: nothing to alert on
        "skew": "skipped",
    }
    assert body["retrain"]["action"] == "none" and body["rows"] == 0
    assert body["metrics_exported"] == 0  # Ray never started
