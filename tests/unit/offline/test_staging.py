"""A staged Delta write commits only when released; aborted, it commits nothing."""

from __future__ import annotations

import time

import deltalake
import pyarrow as pa
import pytest

from mlray.errors import SchemaError
from mlray.features import Entity, FeatureView, Field
from mlray.offline.staging import DRAINED, Feed, StagedWrite, refuse_violations, violations

SCHEMA = pa.schema([("x", pa.int64())])


def feed_into(uri: str) -> Feed:
    feed = Feed(SCHEMA, "t")
    feed.start(lambda reader: deltalake.write_deltalake(uri, reader, mode="append"))
    return feed


def versions(uri: str) -> tuple[int, list[int]]:
    dt = deltalake.DeltaTable(uri)
    return dt.version(), sorted(dt.to_pyarrow_table().column("x").to_pylist())


def test_every_row_is_written_but_the_commit_waits_for_the_release(tmp_path):
    uri = str(tmp_path / "t")
    deltalake.write_deltalake(uri, pa.table({"x": [0]}, schema=SCHEMA))
    feed = feed_into(uri)
    for i in (1, 2, 3):
        feed.put(pa.table({"x": [i]}, schema=SCHEMA))
    feed.put(DRAINED)
    time.sleep(0.5)  # the writer has every row and waits for the verdict
    assert versions(uri) == (0, [0])
    version = lambda: deltalake.DeltaTable(uri).version()  # noqa: E731
    res = StagedWrite("t", 3, feed.finish, version, release=feed.release).commit()
    assert (res.view, res.version, res.rows) == ("t", 1, 3)
    assert versions(uri) == (1, [0, 1, 2, 3])


@pytest.mark.parametrize("drained", [True, False])
def test_an_aborted_write_commits_nothing(tmp_path, drained):
    uri = str(tmp_path / "t")
    deltalake.write_deltalake(uri, pa.table({"x": [0]}, schema=SCHEMA))
    feed = feed_into(uri)
    feed.put(pa.table({"x": [1, 2]}, schema=SCHEMA))
    if drained:
        feed.put(DRAINED)
    feed.abort()
    assert feed._thread is not None and not feed._thread.is_alive()
    assert versions(uri) == (0, [0])


def test_a_writer_that_stops_reading_fails_the_next_put():
    def refuse(reader: pa.RecordBatchReader) -> None:
        raise SchemaError("table 't' is read-only")

    feed = Feed(SCHEMA, "t")
    feed.start(refuse)
    with pytest.raises(SchemaError, match="read-only"):
        for _ in range(10):
            feed.put(pa.table({"x": [1]}, schema=SCHEMA))
    feed.abort()


def test_violations_are_counted_per_column_and_rule_and_refused_with_the_counts():
    view = FeatureView(
        name="v",
        entities=[Entity("user", ("user_id",))],
        schema=[Field("a", pa.float64(), nullable=False, ge=0), Field("b", pa.int64(), le=3)],
    )
    table = pa.table({"a": [1.0, None, -2.0, None], "b": [1, 5, 7, None]})
    bad = violations(view.schema, table) + violations(view.schema, table.slice(0, 2))
    assert bad == {("a", "null (nullable=False)"): 3, ("a", "< ge=0"): 1, ("b", "> le=3"): 3}
    with pytest.raises(SchemaError) as e:
        refuse_violations(view, bad)
    assert str(e.value).startswith(
        "Rows for feature view 'v' break its declared fields: column 'a': 1 row(s) < ge=0; "
        "column 'a': 3 row(s) null (nullable=False); column 'b': 3 row(s) > le=3. Nothing was "
        "committed"
    )
    refuse_violations(view, violations(view.schema, table.slice(0, 1)))  # no breaks: no error
