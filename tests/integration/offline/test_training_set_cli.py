"""`mlray training-set` end to end: label formats, overwriting, empty labels, exact values."""

from __future__ import annotations

import os

import deltalake
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mlray.cli import app
from mlray.config import load_settings
from mlray.store import FeatureStore

pytestmark = pytest.mark.usefixtures("ray_session")
DAY = pd.Timestamp("2026-01-01", tz="UTC")
CATEGORIES = ["books", "toys", "games", "tools"]
FEATURES = "item_catalog:category,request_features:price_vs_usual"


@pytest.fixture(scope="module")
def env(tmp_path_factory, ray_session):
    """The demo repository's item_catalog and user_activity, ingested for 4 items and users."""
    root = tmp_path_factory.mktemp("tscli") / "data"
    fs = FeatureStore(load_settings(config_file=None, data_root=str(root), num_buckets=2))
    ids = list(range(4))
    fs.ingest(
        "item_catalog",
        pd.DataFrame(
            {
                "item_id": ids,
                "event_time": [DAY] * 4,
                "category": CATEGORIES,
                "list_price": [10.0 * i for i in ids],
            }
        ),
    )
    view = fs.repo.view("user_activity")
    users = pd.DataFrame({"user_id": ids, "event_time": [DAY] * 4})
    for f in view.feature_names:
        users[f] = [0.5] * 4 if view.field(f).dtype == pa.float64() else [1] * 4
    users["usual_price_7d"] = [10.0, 20.0, 40.0, 50.0]
    fs.ingest("user_activity", users)
    return {"MLRAY_DATA_ROOT": str(root), "MLRAY_NUM_BUCKETS": "2"}


LABELS = pa.schema(
    [
        ("label_id", pa.int64()),
        ("user_id", pa.int64()),
        ("item_id", pa.int64()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("device", pa.string()),
        ("price", pa.float64()),
        ("clicked", pa.bool_()),
    ]
)


def labels(n: int = 12) -> pa.Table:
    return pa.table(
        {
            "label_id": range(n),
            "user_id": [i % 4 for i in range(n)],
            "item_id": [i % 4 for i in range(n)],
            "event_time": [DAY + pd.Timedelta(hours=1 + i) for i in range(n)],
            "device": ["mobile"] * n,
            "price": [20.0] * n,
            "clicked": [i % 3 == 0 for i in range(n)],
        },
        schema=LABELS,
    )


def run(env, labels_path, out, *extra, features=FEATURES):
    args = ["training-set", "--labels", str(labels_path), "--features", features, "--out", str(out)]
    return CliRunner().invoke(app, [*args, *extra], env=env)


def read(out) -> pd.DataFrame:
    return pd.read_parquet(out).sort_values("label_id").reset_index(drop=True)


def expected(n: int = 12) -> pd.DataFrame:
    usual = [10.0, 20.0, 40.0, 50.0]
    return pd.DataFrame(
        {
            "item_catalog__category": [CATEGORIES[i % 4] for i in range(n)],
            "request_features__price_vs_usual": [20.0 / usual[i % 4] for i in range(n)],
        }
    )


def test_a_parquet_file_a_parquet_directory_and_a_delta_table_give_one_set(
    env, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    table = labels()
    pq.write_table(table, "labels.parquet")  # a bare name in the working directory
    (tmp_path / "dir" / "day=2").mkdir(parents=True)
    pq.write_table(table.slice(0, 5), tmp_path / "dir" / "a.parquet")
    pq.write_table(table.slice(5), tmp_path / "dir" / "day=2" / "b.parquet")
    deltalake.write_deltalake(str(tmp_path / "delta"), table)
    for i, source in enumerate(["labels.parquet", tmp_path / "dir", tmp_path / "delta"]):
        r = run(env, source, tmp_path / f"ts{i}")
        assert r.exit_code == 0, r.output
        assert r.output.strip().endswith(f"wrote 12 rows to {tmp_path / f'ts{i}'}")
        got = read(tmp_path / f"ts{i}")
        assert got.label_id.tolist() == list(range(12))
        pd.testing.assert_frame_equal(got[expected().columns], expected())
    assert read(tmp_path / "ts1")["day"].fillna("-").tolist() == ["-"] * 5 + ["2"] * 7  # hive dir


def test_an_existing_out_is_kept_or_replaced_whole(env, tmp_path):
    pq.write_table(labels(12), tmp_path / "l12.parquet")
    out = tmp_path / "ts.parquet"
    out.mkdir()
    pq.write_table(labels(4), out / "earlier.parquet")  # an earlier set of 4 rows
    r = run(env, tmp_path / "l12.parquet", out)
    assert r.exit_code == 2 and "already exists; pass --overwrite" in r.output, r.output
    assert len(read(out)) == 4
    r = run(env, tmp_path / "l12.parquet", out, "--overwrite")
    assert r.exit_code == 0 and "wrote 12 rows" in r.output, r.output
    assert len(read(out)) == 12  # replaced, not appended to (it used to hold 16)
    assert "earlier.parquet" not in os.listdir(out)
    assert sorted(os.listdir(tmp_path)) == ["l12.parquet", "ts.parquet"]  # no temporaries left


def test_delta_out_is_overwritten_in_one_commit(env, tmp_path):
    pq.write_table(labels(12), tmp_path / "l12.parquet")
    out = tmp_path / "ts_delta"
    deltalake.write_deltalake(str(out), labels(4).drop_columns(["device"]))  # an earlier table
    r = run(env, tmp_path / "l12.parquet", out, "--delta", "--overwrite")
    assert r.exit_code == 0 and "wrote 12 rows" in r.output, r.output
    dt = deltalake.DeltaTable(str(out))
    got = dt.to_pyarrow_dataset().to_table()
    assert dt.version() == 1 and got.num_rows == 12
    assert got.schema.names == [*LABELS.names, *expected().columns]


def test_empty_labels_give_an_empty_set_with_every_column(env, tmp_path):
    pq.write_table(labels(0), tmp_path / "l0.parquet")
    r = run(env, tmp_path / "l0.parquet", tmp_path / "ts")
    assert r.exit_code == 0 and "wrote 0 rows" in r.output, r.output
    got = pq.read_table(tmp_path / "ts")
    assert got.num_rows == 0
    assert got.schema.names == [*labels(0).schema.names, *expected().columns]
    assert got.schema.field("request_features__price_vs_usual").type == pa.float64()


def test_empty_labels_through_the_api(env):
    fs = FeatureStore(load_settings(config_file=None, data_root=env["MLRAY_DATA_ROOT"]))
    ts = fs.get_training_data(labels(0), FEATURES.split(","))
    names = [*labels(0).schema.names, *expected().columns]
    assert ts.dataset.schema().names == names
    assert list(ts.to_pandas().columns) == names and len(ts.to_pandas()) == 0
    assert set(ts.metadata["views"]) == {"item_catalog", "user_activity"}
    assert len(ts.content_hash()) == 64
