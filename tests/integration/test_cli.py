"""The mlray command end to end: demo data, feature build, training set, errors."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from mlray.cli import app

pytestmark = pytest.mark.usefixtures("ray_session")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "data"
    return {"MLRAY_DATA_ROOT": str(root), "MLRAY_NUM_BUCKETS": "2"}


def invoke(env, *args):
    return CliRunner().invoke(app, list(args), env=env)


def test_demo_build_and_training_set(env, tmp_path):
    r = invoke(
        env,
        "demo",
        "generate",
        "--users",
        "60",
        "--items",
        "20",
        "--days",
        "3",
        "--seed",
        "1",
        "--start",
        "2026-01-01T00:00:00Z",
    )
    assert r.exit_code == 0, r.output
    assert "impressions" in r.output and "window: 2026-01-01T00:00:00+00:00" in r.output
    r = invoke(
        env,
        "features",
        "build",
        "--start",
        "2026-01-01T00:00:00Z",
        "--end",
        "2026-01-04T00:00:00Z",
        "--view",
        "user_activity",
    )
    assert r.exit_code == 0, r.output
    assert "user_activity" in r.output
    out = tmp_path / "ts.parquet"
    r = invoke(
        env,
        "training-set",
        "--labels",
        f"{env['MLRAY_DATA_ROOT']}/raw/impressions",
        "--features",
        "user_activity:ctr_7d,user_activity:clicks_24h",
        "--out",
        str(out),
    )
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert f"wrote {len(df)} rows" in r.output
    assert {"user_activity__ctr_7d", "user_activity__clicks_24h", "clicked"} <= set(df.columns)
    r = invoke(env, "features", "list")
    assert r.exit_code == 0 and "user_activity" in r.output and "item_catalog" in r.output


@pytest.mark.parametrize(
    "args,needle",
    [
        (
            ["features", "build", "--start", "2026-01-01", "--end", "2026-01-02T00:00:00Z"],
            "has no time zone",
        ),
        (
            ["features", "build", "--start", "yesterday", "--end", "2026-01-02T00:00:00Z"],
            "not an ISO-8601 time",
        ),
        (
            [
                "training-set",
                "--labels",
                "/nonexistent",
                "--features",
                "user_activity:ctr_7d",
                "--out",
                "/tmp/x",
            ],
            "does not exist",
        ),
        (
            [
                "features",
                "build",
                "--start",
                "2026-01-01T00:00:00Z",
                "--end",
                "2026-01-02T00:00:00Z",
                "--view",
                "nope",
            ],
            "Unknown feature view 'nope'",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(env, args, needle):
    r = invoke(env, *args)
    assert r.exit_code == 2, r.output
    assert needle in r.output
    assert "Traceback" not in r.output
