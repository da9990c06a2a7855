"""`mlray training-set` and `mlray features build|list`: every cheap check runs before Ray.

Unit tests refuse ``ray.init`` (tests/unit/conftest.py, which also hides a Ray
already running in a combined run): an error reported here as expected was
reported without starting Ray (it used to take 9 s); reaching Ray would answer
"unit tests must not start Ray" instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mlray.cli import app

T = pa.timestamp("us", tz="UTC")


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"MLRAY_DATA_ROOT": str(tmp_path / "data"), "COLUMNS": "250"}

    def invoke(*args: str):
        return CliRunner().invoke(app, list(args), env=env)

    return invoke


def labels(n: int = 3, null_time: int = 0) -> pa.Table:
    times = [datetime(2026, 1, 2, h, tzinfo=UTC) for h in range(n)]
    return pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "item_id": pa.array(range(n), pa.int64()),
            "event_time": pa.array([None] * null_time + times[null_time:], T),
        }
    )


def training_set(run, labels_path: str, out: str, *extra: str, features="user_activity:ctr_7d"):
    args = ["--labels", labels_path, "--features", features, "--out", out]
    return run("training-set", *args, *extra)


def test_unknown_feature_is_reported_before_ray(run, tmp_path):
    pq.write_table(labels(), tmp_path / "labels.parquet")
    r = training_set(run, "labels.parquet", "ts.parquet", features="user_activity:nope")
    assert r.exit_code == 2, r.output
    assert "Unknown feature 'user_activity:nope'" in r.output
    assert "Did you mean 'user_activity:ctr_7d'" in r.output


def test_unknown_service_is_reported_before_ray(run, tmp_path):
    pq.write_table(labels(), tmp_path / "labels.parquet")
    r = training_set(run, "labels.parquet", "ts.parquet", features="ctr_model_v9")
    assert r.exit_code == 2 and "Unknown feature service 'ctr_model_v9'" in r.output, r.output


def test_null_label_time_is_a_schema_error_naming_the_column(run, tmp_path):
    pq.write_table(labels(4, null_time=1), tmp_path / "labels.parquet")
    r = training_set(run, "labels.parquet", "ts.parquet")
    assert r.exit_code == 2, r.output
    assert r.output.startswith(
        "SchemaError: Labels table labels.parquet: column 'event_time' has 1 null value(s)"
    )
    assert "UserCodeException" not in r.output and "Traceback" not in r.output


def test_a_missing_label_time_column_is_named(run, tmp_path):
    pq.write_table(labels().drop_columns(["event_time"]), tmp_path / "labels.parquet")
    r = training_set(run, "labels.parquet", "ts.parquet")
    assert r.exit_code == 2 and "labels is missing column(s) ['event_time']" in r.output, r.output


def test_csv_labels_get_a_clear_error(run, tmp_path):
    pcsv.write_csv(labels(), tmp_path / "labels.csv")
    r = training_set(run, "labels.csv", "ts.parquet")
    assert r.exit_code == 2, r.output
    assert "SchemaError: Labels file labels.csv is CSV, not Parquet or Delta" in r.output


def test_an_existing_out_is_refused_without_overwrite_before_the_join(run, tmp_path):
    pq.write_table(labels(), tmp_path / "labels.parquet")
    (tmp_path / "ts.parquet").mkdir()
    (tmp_path / "ts.parquet" / "old.parquet").write_bytes(b"keep me")
    r = training_set(run, "labels.parquet", "ts.parquet")
    assert r.exit_code == 2, r.output
    assert "ConfigError: --out ts.parquet already exists; pass --overwrite" in r.output
    assert (tmp_path / "ts.parquet" / "old.parquet").read_bytes() == b"keep me"


@pytest.mark.parametrize("out", ["data/features/user_activity", "data/features", "data", "."])
def test_out_on_the_offline_feature_tables_is_refused(run, tmp_path, out):
    pq.write_table(labels(), tmp_path / "labels.parquet")
    (tmp_path / "data" / "features" / "user_activity").mkdir(parents=True)
    r = training_set(run, "labels.parquet", out, "--overwrite")
    assert r.exit_code == 2, r.output
    assert f"ConfigError: --out {out} would overwrite the offline feature tables" in r.output


def test_out_on_the_labels_is_refused(run, tmp_path):
    pq.write_table(labels(), tmp_path / "labels.parquet")
    r = training_set(run, "labels.parquet", "labels.parquet", "--overwrite")
    assert r.exit_code == 2 and "would overwrite the labels it reads" in r.output, r.output


@pytest.mark.parametrize(
    "views,needle",
    [
        (["--view", "nope"], "NotFoundError: Unknown feature view 'nope'"),
        (["--views", "user_activity,nope"], "NotFoundError: Unknown feature view 'nope'"),
        (["--views", "request_features"], "is computed at request time, not built"),
    ],
)
def test_features_build_checks_view_names_before_ray(run, views, needle):
    r = run(
        "features", "build", "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z",
        *views,
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert needle in r.output


def test_features_build_checks_the_window_before_ray(run):
    r = run(
        "features", "build", "--start", "2026-01-02T00:00:00Z", "--end", "2026-01-01T00:00:00Z",
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "ConfigError: Empty window: end 2026-01-01T00:00:00+00:00 is not after start" in r.output


def test_features_list_shows_request_time_views_and_services(run):
    r = run("features", "list")
    assert r.exit_code == 0, r.output
    for needle in [
        "feature views (stored)",
        "user_activity",
        "request-time views (on demand)",
        "request_features",
        "price_vs_usual",
        "device, price",
        "feature services",
        "ctr_model_v1",
        "item_catalog:list_price",
        "view__feature",
    ]:
        assert needle in r.output, needle
