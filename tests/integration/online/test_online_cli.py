"""``mlray materialize``, ``mlray features get`` and ``jobs/materialize.py`` on recent demo data."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlray.cli import app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def config(recent_demo, tmp_path: Path) -> Path:
    settings, _ = recent_demo
    path = tmp_path / "mlray.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data_root": str(settings.data_root),
                "project": "recent_cli",
                "num_buckets": 4,
                "redis": {"url": settings.redis.url, "key_prefix": settings.redis.key_prefix},
            }
        )
    )
    return path


def test_materialize_then_get_prints_a_table(recent_demo, config):
    _, summary = recent_demo
    runner = CliRunner(env={"COLUMNS": "200"})
    end = summary.end.isoformat().replace("+00:00", "Z")
    done = runner.invoke(
        app, ["materialize", "--end", end, "--view", "user_activity", "-c", str(config)]
    )
    assert done.exit_code == 0, done.output
    assert "user_activity" in done.output and "entities" in done.output
    got = runner.invoke(
        app,
        [
            "features",
            "get",
            "--entity",
            "user_id=3",
            "--entity",
            "device=mobile",
            "--entity",
            "price=12.5",
            "--features",
            "user_activity:ctr_7d,user_activity:clicks_7d,request_features:price_vs_usual",
            "--request-time",
            end,
            "-c",
            str(config),
        ],
        terminal_width=200,
    )
    assert got.exit_code == 0, got.output
    for text in (
        "user_activity:ctr_7d",
        "user_activity:clicks_7d",
        "request_features:price_vs_usual",
        "event_time",
    ):
        assert text in got.output
    missing = runner.invoke(
        app,
        [
            "features",
            "get",
            "--entity",
            "user_id=999999",
            "--features",
            "user_activity:ctr_7d",
            "-c",
            str(config),
        ],
    )
    assert missing.exit_code == 0 and "yes" in missing.output  # listed as missing, not an error


def test_cli_errors_are_one_line(config):
    runner = CliRunner()
    bad = runner.invoke(
        app,
        [
            "features",
            "get",
            "--entity",
            "user_id=1",
            "--features",
            "user_activity:ctr7d",
            "-c",
            str(config),
        ],
    )
    assert (
        bad.exit_code == 2
        and "NotFoundError" in bad.output
        and "user_activity:ctr_7d" in bad.output
    )
    worse = runner.invoke(
        app,
        [
            "features",
            "get",
            "--entity",
            "user_id",
            "--features",
            "user_activity:ctr_7d",
            "-c",
            str(config),
        ],
    )
    assert worse.exit_code == 2 and "KEY=VALUE" in worse.output


def test_job_entrypoint(recent_demo, config, capsys):
    settings, summary = recent_demo
    spec = importlib.util.spec_from_file_location(
        "materialize_job", ROOT / "jobs" / "materialize.py"
    )
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    job.main(
        settings.model_copy(update={"project": "recent_job"}),
        argparse.Namespace(end=summary.end.isoformat(), view=["item_stats"], incremental=True),
    )
    assert "item_stats:" in capsys.readouterr().out
    failed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "jobs" / "materialize.py"),
            "--config",
            str(config),
            "--view",
            "no_such_view",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (
        failed.returncode == 2
        and "NotFoundError" in failed.stderr
        and "no_such_view" in failed.stderr
    )
