"""FeatureStore over real Delta tables: ingest, bucketed training sets, versions, bad input."""

from __future__ import annotations

from datetime import timedelta

import deltalake
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlray.errors import NotFoundError, SchemaError
from mlray.features import Entity, FeatureRepository, FeatureView, Field
from mlray.offline.asof import JoinSpec, asof_join
from mlray.store import FeatureStore

user, item = Entity("user", ("user_id",)), Entity("item", ("item_id",))
USERS = FeatureView(
    name="u", entities=[user], schema=[Field("score", pa.float64()), Field("n", pa.int64())]
)
ITEMS = FeatureView(
    name="i",
    entities=[item],
    ttl=timedelta(hours=2),
    schema=[Field("score", pa.float64()), Field("cat", pa.string(), default="none")],
)
BASE = pd.Timestamp("2026-01-01", tz="UTC")


def rows(n, entities, key, seed, cols):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            key: rng.integers(0, entities, n),
            "event_time": BASE + pd.to_timedelta(rng.integers(0, 48 * 3600, n), unit="s"),
        }
    )
    df["available_time"] = df.event_time + pd.to_timedelta(rng.integers(0, 3 * 3600, n), unit="s")
    for name, kind in cols.items():
        df[name] = (
            rng.random(n)
            if kind == "f"
            else (rng.integers(0, 100, n) if kind == "i" else rng.choice(["a", "b", "c"], n))
        )
    return df


@pytest.fixture
def store(settings):
    return FeatureStore(settings, FeatureRepository([USERS, ITEMS]))


@pytest.fixture
def filled(store):
    u = rows(4000, 200, "user_id", 1, {"score": "f", "n": "i"})
    i = rows(1500, 50, "item_id", 2, {"score": "f", "cat": "s"})
    store.ingest("u", u)
    store.ingest("i", i)
    labels = rows(2000, 220, "user_id", 3, {}).drop(columns=["available_time"])
    labels["item_id"] = np.random.default_rng(4).integers(0, 55, len(labels))
    labels["label_id"] = np.arange(len(labels))
    return store, u, i, labels


def expected(labels, feats, key, cols, ttl=None, defaults=None):
    spec = JoinSpec(
        (key,),
        "event_time",
        "ft",
        tuple(cols),
        "available_time",
        int(ttl.total_seconds() * 1e6) if ttl else None,
        defaults or {},
    )
    out = asof_join(
        pa.Table.from_pandas(labels[["label_id", key, "event_time"]], preserve_index=False),
        pa.Table.from_pandas(feats.rename(columns={"event_time": "ft"}), preserve_index=False),
        spec,
    )
    return out.to_pandas().set_index("label_id").sort_index()


def test_training_set_over_two_views_matches_the_rule(filled):
    store, u, i, labels = filled
    ts = store.get_training_data(labels, ["u:score", "u:n", "i:score", "i:cat"])
    got = ts.to_pandas().set_index("label_id").sort_index()
    assert len(got) == len(labels) and got.index.is_unique
    assert ts.features == ["u__score", "u__n", "i__score", "i__cat"]
    eu = expected(labels, u, "user_id", ["score", "n"])
    ei = expected(labels, i, "item_id", ["score", "cat"], ttl=ITEMS.ttl, defaults={"cat": "none"})
    np.testing.assert_array_equal(
        got.u__score.to_numpy(float, na_value=np.nan), eu.score.to_numpy(float, na_value=np.nan)
    )
    np.testing.assert_array_equal(
        got.i__score.to_numpy(float, na_value=np.nan), ei.score.to_numpy(float, na_value=np.nan)
    )
    assert got.i__cat.tolist() == ei.cat.tolist() and "none" in set(got.i__cat)
    assert got.u__score.isna().any() and got.u__score.notna().mean() > 0.5
    assert ts.metadata["views"]["u"]["version"] == 0 and ts.metadata["views"]["u"]["rows"] == 4000


def test_versions_pin_the_data_read(filled):
    store, u, _, labels = filled
    # Every row superseded one second later: the latest version sees only -1.0.
    later = u.assign(
        event_time=u.event_time + pd.Timedelta(seconds=1),
        available_time=u.available_time + pd.Timedelta(seconds=1),
        score=-1.0,
    )
    store.ingest("u", later)
    pinned = store.get_training_data(labels, ["u:score"], versions={"u": 0}).to_pandas()
    latest = store.get_training_data(labels, ["u:score"]).to_pandas()
    assert (pinned.u__score == -1.0).sum() == 0 and (latest.u__score == -1.0).sum() > 0
    with pytest.raises(NotFoundError, match="no version 9"):
        store.get_training_data(labels, ["u:score"], versions={"u": 9})


def test_layout_is_bucketed_and_sorted(filled, settings):
    store = filled[0]
    snap = store.offline.snapshot(USERS)
    assert snap.num_buckets == 4 and set(snap.files) == {0, 1, 2, 3}
    for b in snap.files:
        t = snap.read_bucket(b, ["user_id", "event_time"]).to_pandas()
        assert t.equals(t.sort_values(["user_id", "event_time"]).reset_index(drop=True))
    parts = deltalake.DeltaTable(store.offline.uri(USERS)).metadata().partition_columns
    assert parts == ["mlray_bucket"]


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda d: d.drop(columns=["n"]), r"missing column\(s\) \['n'\]"),
        (lambda d: d.assign(extra=1), r"column\(s\) \['extra'\] that the view does not declare"),
        (lambda d: d.assign(event_time=d.event_time.dt.tz_localize(None)), "without a time zone"),
        (lambda d: d.assign(n="x"), "'n'"),
        (lambda d: d.assign(user_id=d.user_id.astype("float").where(d.index > 0)), "user_id"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(filled, mutate, needle):
    store, u, _, _ = filled
    before = store.offline.version(USERS)
    with pytest.raises(SchemaError, match=needle):
        store.ingest("u", mutate(u.head(50).copy()))
    assert store.offline.version(USERS) == before


def test_bad_labels_and_unknown_features(filled):
    store, _, _, labels = filled
    with pytest.raises(NotFoundError, match="Did you mean 'u:score'"):
        store.get_training_data(labels, ["u:scor"])
    with pytest.raises(
        SchemaError, match=r"labels \(for feature view 'i'\) is missing column\(s\) \['item_id'\]"
    ):
        store.get_training_data(labels.drop(columns=["item_id"]), ["i:score"])
    with pytest.raises(SchemaError, match="full_feature_names=True"):
        store.get_training_data(labels, ["u:score", "i:score"], full_feature_names=False)


def test_missing_table_is_not_found(settings):
    store = FeatureStore(settings, FeatureRepository([USERS]))
    labels = pd.DataFrame({"user_id": [1], "event_time": [BASE]})
    with pytest.raises(NotFoundError, match="has no offline table"):
        store.get_training_data(labels, ["u:score"])
