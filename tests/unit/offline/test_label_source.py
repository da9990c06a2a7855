"""Label tables found and inspected without Ray: Parquet file/dir, Delta, bad formats, nulls."""

from __future__ import annotations

from datetime import UTC, datetime

import deltalake
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from mlray.config import load_settings
from mlray.errors import NotFoundError, SchemaError
from mlray.offline.labels import find_labels, labels_location

T = pa.timestamp("us", tz="UTC")


def table(n: int = 3, null_time: int = 0) -> pa.Table:
    times = [datetime(2026, 1, 2, h, tzinfo=UTC) for h in range(n)]
    return pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "event_time": pa.array([None] * null_time + times[null_time:], T),
            "clicked": pa.array([True] * n),
        }
    )


@pytest.fixture
def settings(tmp_path):
    return load_settings(config_file=None, data_root=str(tmp_path / "data"))


def test_a_single_parquet_file_by_bare_name_in_the_working_directory(
    tmp_path, settings, monkeypatch
):
    pq.write_table(table(), tmp_path / "labels.parquet")
    monkeypatch.chdir(tmp_path)
    assert labels_location(settings, "labels.parquet") == "labels.parquet"
    src = find_labels(settings, "labels.parquet")
    assert src.format == "parquet" and src.version is None
    assert src.files == (str(tmp_path / "labels.parquet"),)
    assert src.schema.names == ["user_id", "event_time", "clicked"]
    assert src.null_counts == {"user_id": 0, "event_time": 0, "clicked": 0}


def test_a_bare_name_that_is_no_local_path_is_a_table_under_raw(tmp_path, settings, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "data" / "raw"
    assert labels_location(settings, "impressions") == str(raw / "impressions")
    with pytest.raises(NotFoundError, match="impressions does not exist"):
        find_labels(settings, "impressions")


def test_a_directory_of_parquet_skips_hidden_and_marker_files(tmp_path, settings):
    d = tmp_path / "labels"
    (d / "part=1").mkdir(parents=True)
    pq.write_table(table(2), d / "a.parquet")
    pq.write_table(table(3, null_time=1), d / "part=1" / "b.parquet")
    (d / "_SUCCESS").write_text("")
    (d / ".a.parquet.crc").write_text("x")
    src = find_labels(settings, str(d))
    assert src.format == "parquet"
    assert src.files == (str(d / "a.parquet"), str(d / "part=1" / "b.parquet"))
    assert src.null_counts == {"user_id": 0, "event_time": 1, "clicked": 0}
    assert src.schema.names == ["user_id", "event_time", "clicked", "part"]  # Ray reads it too


def test_a_delta_table_is_pinned_and_its_null_counts_come_from_the_log(tmp_path, settings):
    uri = str(tmp_path / "delta_labels")
    deltalake.write_deltalake(uri, table(3, null_time=2))
    deltalake.write_deltalake(uri, table(2), mode="append")
    src = find_labels(settings, uri)
    assert src.format == "delta" and src.version == 1 and src.files == ()
    assert src.schema.field("event_time").type == T
    assert src.null_counts == {"user_id": 0, "event_time": 2, "clicked": 0}


def test_a_csv_file_gets_a_clear_error(tmp_path, settings):
    pcsv.write_csv(table(), tmp_path / "labels.csv")
    with pytest.raises(SchemaError, match=r"is CSV, not Parquet or Delta\. Convert it first"):
        find_labels(settings, str(tmp_path / "labels.csv"))


def test_a_file_that_is_not_parquet_gets_a_clear_error(tmp_path, settings):
    (tmp_path / "labels.bin").write_bytes(b"not parquet at all")
    with pytest.raises(SchemaError, match="is not a Parquet file"):
        find_labels(settings, str(tmp_path / "labels.bin"))


def test_a_directory_without_parquet_gets_a_clear_error(tmp_path, settings):
    d = tmp_path / "csvs"
    d.mkdir()
    pcsv.write_csv(table(), d / "labels.csv")
    with pytest.raises(SchemaError, match=r"holds no Parquet files \(found: \.csv\)"):
        find_labels(settings, str(d))


def test_null_label_times_are_refused_naming_the_column(tmp_path, settings):
    pq.write_table(table(4, null_time=1), tmp_path / "l.parquet")
    src = find_labels(settings, str(tmp_path / "l.parquet"))
    src.check_not_null(["user_id"])
    with pytest.raises(SchemaError, match=r"column 'event_time' has 1 null value\(s\)"):
        src.check_not_null(["event_time", "user_id"])


def test_columns_without_statistics_are_left_to_the_join(tmp_path, settings):
    pq.write_table(table(4, null_time=1), tmp_path / "l.parquet", write_statistics=False)
    src = find_labels(settings, str(tmp_path / "l.parquet"))
    assert src.null_counts == {}
    src.check_not_null(["event_time"])  # unknown here; the join's tasks check it
