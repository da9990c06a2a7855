"""Tests for the synthetic click-stream generator."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from mlray.demo.generate import (
    CATALOG_SCHEMA,
    DEFAULT_START,
    IMPRESSIONS_SCHEMA,
    GenerateSummary,
    generate_clickstream,
)
from mlray.errors import ConfigError

SMALL = dict(users=200, items=50, days=3, progress=False)


def _tables(summary: GenerateSummary) -> tuple[pa.Table, pa.Table]:
    return (
        DeltaTable(summary.impressions_uri).to_pyarrow_table(),
        DeltaTable(summary.catalog_uri).to_pyarrow_table(),
    )


@pytest.fixture(scope="module")
def small(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[GenerateSummary, pd.DataFrame, pd.DataFrame]:
    summary = generate_clickstream(str(tmp_path_factory.mktemp("small")), seed=1, **SMALL)
    imp, cat = _tables(summary)
    return summary, imp.to_pandas(), cat.to_pandas()


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    out = str(tmp_path_factory.mktemp("large"))
    summary = generate_clickstream(out, users=3000, items=100, days=4, seed=2, progress=False)
    return DeltaTable(summary.impressions_uri).to_pandas()


def _by_day(df: pd.DataFrame, start: datetime = DEFAULT_START) -> pd.Series:
    return (df["event_time"] - pd.Timestamp(start)) // pd.Timedelta(days=1)


def test_schemas_exact(small):
    summary, _, _ = small
    imp, cat = _tables(summary)
    assert imp.schema.equals(IMPRESSIONS_SCHEMA)
    assert cat.schema.equals(CATALOG_SCHEMA)
    assert imp.column_names == [
        "impression_id",
        "user_id",
        "item_id",
        "event_time",
        "device",
        "price",
        "clicked",
    ]
    assert cat.column_names == ["item_id", "event_time", "category", "price"]
    assert imp.schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert imp.schema.field("device").type == pa.string()


def test_summary_matches_tables(small):
    summary, imp, cat = small
    assert summary.impressions == len(imp) > 0
    assert summary.catalog_changes == len(cat) - summary.items
    assert (summary.users, summary.items) == (200, 50)
    assert summary.start == DEFAULT_START and summary.start.tzinfo is not None
    assert summary.end == DEFAULT_START + timedelta(days=3)
    assert summary.click_rate == pytest.approx(imp["clicked"].mean())
    assert summary.impressions_uri.endswith("/impressions") and summary.catalog_uri.endswith(
        "/item_catalog"
    )


def test_deterministic_for_same_seed(tmp_path):
    a = generate_clickstream(str(tmp_path / "a"), seed=7, **SMALL)
    b = generate_clickstream(str(tmp_path / "b"), seed=7, **SMALL)
    c = generate_clickstream(str(tmp_path / "c"), seed=8, **SMALL)
    (ia, ca), (ib, cb), (ic, _) = _tables(a), _tables(b), _tables(c)
    assert ia.equals(ib) and ca.equals(cb)
    assert not ia.equals(ic)


def test_rerun_overwrites(tmp_path):
    first = generate_clickstream(str(tmp_path), seed=3, **SMALL)
    second = generate_clickstream(str(tmp_path), seed=3, **SMALL)
    imp, _ = _tables(second)
    assert len(imp) == first.impressions == second.impressions


def test_ids_values_and_ordering(small):
    summary, imp, cat = small
    assert imp["user_id"].between(0, 199).all() and imp["item_id"].between(0, 49).all()
    assert cat["item_id"].between(0, 49).all()
    assert imp["impression_id"].is_unique and imp["impression_id"].is_monotonic_increasing
    assert imp["event_time"].is_monotonic_increasing
    start, end = pd.Timestamp(summary.start), pd.Timestamp(summary.end)
    assert imp["event_time"].min() >= start and imp["event_time"].max() < end
    assert set(imp["device"]) <= {"mobile", "desktop", "tablet"}
    assert cat["category"].nunique() >= 5 and (cat["price"] > 0).all()
    assert cat["event_time"].min() >= start and cat["event_time"].max() < end


def test_every_item_has_initial_catalog_row(small):
    summary, _, cat = small
    initial = cat[cat["event_time"] == pd.Timestamp(summary.start)]
    assert sorted(initial["item_id"]) == list(range(summary.items))
    assert len(cat) > summary.items  # some price changes happened


def test_impression_price_is_catalog_price_in_effect(small):
    _, imp, cat = small
    merged = pd.merge_asof(
        imp.sort_values("event_time"),
        cat.sort_values("event_time"),
        on="event_time",
        by="item_id",
        suffixes=("", "_catalog"),
        direction="backward",
    )
    assert merged["price_catalog"].notna().all()
    np.testing.assert_array_equal(merged["price"].to_numpy(), merged["price_catalog"].to_numpy())


def test_click_rate_realistic(small, large):
    assert 0.02 <= small[1]["clicked"].mean() <= 0.2
    assert 0.02 <= large["clicked"].mean() <= 0.2


def test_user_ctr_is_persistent(large):
    half = _by_day(large) >= 2
    stats = large.groupby(["user_id", half])["clicked"].agg(["mean", "size"]).unstack()
    enough = (stats["size"][False] >= 5) & (stats["size"][True] >= 5)
    first, second = stats["mean"][False][enough], stats["mean"][True][enough]
    assert enough.sum() > 500
    assert np.corrcoef(first, second)[0, 1] > 0.15


def test_expensive_items_are_clicked_less(large):
    ratio = large["price"] / large.groupby("user_id")["price"].transform("mean")
    expensive, cheap = large["clicked"][ratio > 1.5], large["clicked"][ratio < 1.0]
    assert len(expensive) > 1000
    assert expensive.mean() < 0.6 * cheap.mean()


def _before_after(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    day = _by_day(df)
    return df[day < 1], df[day >= 1]


@pytest.mark.parametrize("drift_after", [None, 1])
def test_drift_shifts_price_and_device(tmp_path, drift_after):
    summary = generate_clickstream(
        str(tmp_path),
        users=1000,
        items=100,
        days=3,
        seed=4,
        drift_after=drift_after,
        progress=False,
    )
    before, after = _before_after(DeltaTable(summary.impressions_uri).to_pandas())
    price_ratio = after["price"].median() / before["price"].median()
    mobile_delta = (after["device"] == "mobile").mean() - (before["device"] == "mobile").mean()
    if drift_after is None:
        assert 0.85 < price_ratio < 1.15 and abs(mobile_delta) < 0.05
    else:
        assert price_ratio > 1.25 and mobile_delta > 0.2


def test_drift_is_written_to_catalog(tmp_path):
    summary = generate_clickstream(str(tmp_path), seed=5, drift_after=1, **{**SMALL, "days": 2})
    cat = DeltaTable(summary.catalog_uri).to_pandas()
    boundary = pd.Timestamp(summary.start + timedelta(days=1))
    assert (cat["event_time"] == boundary).sum() >= 0.7 * summary.items


def test_custom_start_is_respected(tmp_path):
    start = datetime(2025, 6, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    summary = generate_clickstream(str(tmp_path), start=start, **{**SMALL, "days": 1})
    imp, _ = _tables(summary)
    assert summary.start == start and summary.start.utcoffset() == timedelta(0)
    times = imp.column("event_time").to_pandas()
    assert times.min() >= pd.Timestamp(start) and times.max() < pd.Timestamp(
        start + timedelta(days=1)
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"users": 0}, "users"),
        ({"items": 0}, "items"),
        ({"days": 0}, "days"),
        ({"users": 2.5}, "users"),
        ({"seed": -1}, "seed"),
        ({"impressions_per_user_day": 0.0}, "impressions_per_user_day"),
        ({"drift_after": 3}, "drift_after"),
        ({"drift_after": -1}, "drift_after"),
        ({"start": datetime(2026, 1, 1)}, "start"),
    ],
)
def test_bad_arguments_raise_config_error(tmp_path, kwargs, name):
    with pytest.raises(ConfigError, match=name):
        generate_clickstream(str(tmp_path / "bad"), **{**SMALL, **kwargs})
    assert not (tmp_path / "bad").exists()


def test_rows_stay_ordered_across_files_and_commits(tmp_path, monkeypatch):
    import mlray.demo.generate as gen

    monkeypatch.setattr(gen, "_FILE_ROWS", 1000)  # force several Parquet files
    first = generate_clickstream(str(tmp_path), seed=6, **SMALL)
    second = generate_clickstream(str(tmp_path), seed=9, **SMALL)
    table = DeltaTable(second.impressions_uri)
    assert table.version() == 1  # one commit per run and table
    assert DeltaTable(first.catalog_uri).version() == 1
    assert len(table.file_uris()) > 1
    imp = table.to_pandas()
    assert len(imp) == second.impressions
    assert (np.diff(imp["impression_id"]) == 1).all() and imp["event_time"].is_monotonic_increasing
    assert len(DeltaTable(first.impressions_uri, version=0).to_pandas()) == first.impressions


def test_file_statistics_allow_pruning(small):
    summary, imp, _ = small
    actions = pa.table(
        DeltaTable(summary.impressions_uri).get_add_actions(flatten=True)
    ).to_pandas()
    assert actions["num_records"].sum() == len(imp)
    assert actions["min.event_time"].min() <= imp["event_time"].min()
    assert actions["max.event_time"].max() >= imp["event_time"].max()
    cut = pd.Timestamp(summary.start + timedelta(days=1, hours=12))
    filtered = DeltaTable(summary.impressions_uri).to_pyarrow_table(
        filters=[("event_time", ">=", cut.to_pydatetime())]
    )
    assert filtered.num_rows == (imp["event_time"] >= cut).sum()


def test_progress_bar_runs(tmp_path):
    summary = generate_clickstream(str(tmp_path), users=20, items=5, days=2, progress=True)
    assert summary.impressions > 0
