"""The feature pipeline on the demo click stream: values, window replacement, no leakage."""

from __future__ import annotations

import shutil
from datetime import timedelta

import deltalake
import pandas as pd
import pytest
import ray.data

from mlray.config import load_settings
from mlray.demo.features import smoothed_ctr
from mlray.errors import ConfigError
from mlray.store import FeatureStore


@pytest.fixture(scope="module")
def demo(demo_root, tmp_path_factory):
    """A private copy of the session's demo data (these tests rewrite tables)."""
    root = tmp_path_factory.mktemp("pipe") / "data"
    shutil.copytree(demo_root.data_root, root)
    s = load_settings(config_file=None, data_root=str(root), num_buckets=4)
    return s, FeatureStore(s)


def impressions(s) -> pd.DataFrame:
    return deltalake.DeltaTable(s.table_uri("raw", "impressions")).to_pandas()


def test_user_activity_values_match_a_direct_recomputation(demo):
    s, fs = demo
    imp = impressions(s)
    feats = fs.offline.read(fs.repo.view("user_activity")).to_pandas()
    sample = feats.sort_values(["user_id", "event_time"]).groupby("user_id").nth(3).head(20)
    for r in sample.itertuples():
        mine = imp[(imp.user_id == r.user_id) & (imp.event_time < r.event_time)]
        day = mine[mine.event_time >= r.event_time - timedelta(days=1)]
        week = mine[mine.event_time >= r.event_time - timedelta(days=7)]
        assert (r.impressions_24h, r.clicks_24h) == (len(day), int(day.clicked.sum()))
        assert r.impressions_7d == len(week)
        assert r.ctr_7d == pytest.approx(smoothed_ctr(week.clicked.sum(), len(week)))
        assert r.available_time - r.event_time == timedelta(minutes=5)


def test_rebuilding_a_window_replaces_it_without_duplicates(demo):
    s, fs = demo
    view = fs.repo.view("item_stats")
    before = (
        fs.offline.read(view)
        .to_pandas()
        .sort_values(["item_id", "event_time"])
        .reset_index(drop=True)
    )
    start = pd.Timestamp(before.event_time.min()).floor("D") + timedelta(days=3)
    res = fs.build_features(
        start.to_pydatetime(), (start + timedelta(days=2)).to_pydatetime(), ["item_stats"]
    )
    after = (
        fs.offline.read(view)
        .to_pandas()
        .sort_values(["item_id", "event_time"])
        .reset_index(drop=True)
    )
    assert res[0].rows > 0 and len(after) == len(before)
    assert not after.duplicated(["item_id", "event_time"]).any()
    pd.testing.assert_frame_equal(before, after)


def test_training_set_never_leaks_the_future(demo):
    s, fs = demo
    labels = ray.data.read_delta(s.table_uri("raw", "impressions")).select_columns(
        ["impression_id", "user_id", "item_id", "event_time", "clicked"]
    )
    df = fs.get_training_data(labels, "ctr_model_v1", include_feature_times=True).to_pandas()
    assert len(df) == labels.count() and df.impression_id.is_unique
    for view, delay in [("user_activity", 5), ("item_stats", 15)]:
        ft = df[f"{view}__event_time"]
        ok = ft.notna()
        assert ok.mean() > 0.9
        # The chosen snapshot was available (event_time + delay) at or before the label time.
        assert (ft[ok] + timedelta(minutes=delay) <= df.event_time[ok]).all()
    # Features are genuinely predictive: the top CTR quintile clicks far more than the bottom one.
    q = pd.qcut(df.user_activity__ctr_7d.astype(float), 5, labels=False, duplicates="drop")
    by_q = df.groupby(q).clicked.mean()
    assert by_q.iloc[-1] > 2 * by_q.iloc[0]


def test_window_arguments_are_checked(demo):
    _, fs = demo
    t = pd.Timestamp("2026-01-02", tz="UTC").to_pydatetime()
    with pytest.raises(ConfigError, match="Empty window"):
        fs.build_features(t, t)
    with pytest.raises(ConfigError, match="time zone"):
        fs.build_features(t.replace(tzinfo=None), t.replace(tzinfo=None) + timedelta(days=1))
