"""Compaction of offline tables: one sorted file per bucket, same rows, same training sets."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_feature_store import USERS, rows
from typer.testing import CliRunner

from mlray.cli import app
from mlray.features import FeatureRepository
from mlray.store import FeatureStore


@pytest.fixture
def store(settings):
    fs = FeatureStore(settings, FeatureRepository([USERS]))
    # Three ingests of three blocks each: up to nine files in each of the four buckets.
    for seed in (1, 2, 3):
        fs.ingest(
            "u", pa.Table.from_pandas(rows(900, 60, "user_id", seed, {"score": "f", "n": "i"}))
        )
    return fs


def labels():
    return rows(500, 70, "user_id", 9, {}).drop(columns=["available_time"])


def files_per_bucket(fs):
    return {b: len(f) for b, f in fs.offline.snapshot(fs.repo.view("u")).files.items()}


def test_compaction_rewrites_each_bucket_into_one_sorted_file_with_the_same_rows(store):
    view = store.repo.view("u")
    before_files = files_per_bucket(store)
    assert max(before_files.values()) > 1
    before_version = store.offline.version(view)
    before = store.get_training_data(labels(), ["u:score", "u:n"])
    before_rows = store.offline.read(view).to_pandas()

    r = store.compact("u")

    assert r.buckets == sum(1 for n in before_files.values() if n >= 2)
    assert r.files_before == sum(before_files.values())
    assert r.files_after == len(before_files) == 4
    assert r.rows == 2700
    assert r.version == before_version + 1 == store.offline.version(view)
    assert files_per_bucket(store) == dict.fromkeys(before_files, 1)
    snap = store.offline.snapshot(view)
    for (path,) in snap.files.values():
        t = pq.read_table(path, filesystem=snap.filesystem)
        k, ft, at = (
            t.column(c).cast(pa.int64()).to_numpy()
            for c in ("user_id", "event_time", "available_time")
        )
        order = np.lexsort((at, ft, k))
        assert (order == np.arange(len(k))).all(), (
            f"{path} is not in (key, event_time, available_time) order"
        )
    after_rows = store.offline.read(view).to_pandas()
    key = ["user_id", "event_time", "available_time", "score", "n"]
    assert (
        after_rows.sort_values(key)
        .reset_index(drop=True)
        .equals(before_rows.sort_values(key).reset_index(drop=True))
    )
    after = store.get_training_data(labels(), ["u:score", "u:n"])
    assert after.content_hash() == before.content_hash()
    # Time travel to the version before compaction still reads the old files.
    old = store.get_training_data(labels(), ["u:score", "u:n"], versions={"u": before_version})
    assert old.content_hash() == before.content_hash()

    again = store.compact("u")
    assert (again.buckets, again.version) == (0, r.version)


def test_compact_command_reports_each_view(store, settings, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / "mlray.yaml"
    config.write_text(
        f"data_root: {settings.data_root}\nnum_buckets: 4\nfeature_repo: test_compaction_repo\n"
    )
    (tmp_path / "test_compaction_repo.py").write_text("from test_feature_store import USERS\n")
    result = CliRunner().invoke(app, ["features", "compact", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "compaction" in result.output and "u" in result.output
    assert files_per_bucket(store) == {b: 1 for b in files_per_bucket(store)}
