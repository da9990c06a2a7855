"""Skew classification on hand-made log rows and recomputations: stale, transform, ahead, no row.

The offline recomputation (a Ray join) is exercised in
tests/integration/monitoring/test_skew_replay.py; here it is given row by row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlray.config import load_settings
from mlray.features.repository import FeatureRepository
from mlray.features.times import to_us
from mlray.monitoring.config import SkewConfig
from mlray.monitoring.recompute import Recomputed, values_equal
from mlray.monitoring.skew import _sample, compare_recomputed, skew_audit
from mlray.offline.predictions import decode_json_columns
from mlray.serving.prediction_log import LogRow, to_table

REPO = FeatureRepository.from_module("mlray.demo.features")
T = datetime(2026, 1, 10, 12, 30, tzinfo=UTC)  # hour of day 12
H = timedelta(hours=1)
UA, CAT = "user_activity", "item_catalog"


def log_row(i: int, feats: dict[str, Any], events: dict[str, datetime | None], **kw) -> LogRow:
    return LogRow(
        request_id=f"r{i}",
        request_time_us=to_us(T),
        route="/predict",
        model_name="ctr_model",
        entities={"user_id": i, "item_id": 1},
        context={"device": "mobile", "price": 10.0},
        features=feats,
        feature_event_times={v: None if t is None else to_us(t) for v, t in events.items()},
        missing_features=[],
        score=0.5,
        model_version="1",
        latency_ms=1.0,
        degraded=kw.get("degraded", False),
    )


def feats(clicks: int | None, usual: float | None, category: str, ratio: float | None) -> dict:
    return {
        "user_activity__clicks_24h": clicks,
        "user_activity__usual_price_7d": usual,
        "item_catalog__category": category,
        "request_features__price_vs_usual": ratio,
        "request_features__hour_of_day": 12,
    }


def times(ua: datetime | None, cat: datetime | None) -> dict[str, datetime | None]:
    return {UA: ua, CAT: cat}


# (served features, served event times, recomputed features, offline event times)
CASES = [
    # 0: the same row on both sides.
    (feats(4, 10.0, "shoes", 1.0), times(T - H, T - 9 * H), None, None),
    # 1: stale: the store still held the 2-hours-old user row; the ratio follows its input.
    (
        feats(3, 10.0, "shoes", 1.0),
        times(T - 2 * H, T - 9 * H),
        feats(4, 20.0, "shoes", 0.5),
        times(T - H, T - 9 * H),
    ),
    # 2: transform skew on a stored feature: the same event time, another value.
    (feats(5, 10.0, "shoes", 1.0), times(T - H, T - 9 * H), feats(8, 10.0, "shoes", 1.0), None),
    # 3: transform skew of the request-time feature: 10 / 10 is 1, not 2.
    (feats(4, 10.0, "shoes", 2.0), times(T - H, T - 9 * H), feats(4, 10.0, "shoes", 1.0), None),
    # 4: an item unknown on both sides: its default on both, no skew.
    (feats(4, 10.0, "unknown", 1.0), times(T - H, None), None, times(T - H, None)),
    # 5: ahead: a user row served that the offline join does not have at the request time.
    (
        feats(2, 10.0, "shoes", 1.0),
        times(T - H, T - 9 * H),
        feats(None, None, "shoes", None),
        times(None, T - 9 * H),
    ),
]


def frame(rows: list[LogRow]) -> pd.DataFrame:
    return decode_json_columns(to_table(rows))


def build() -> tuple[pd.DataFrame, Recomputed]:
    rows, values, events = [], [], []
    for i, (served, served_ev, again, again_ev) in enumerate(CASES):
        rows.append(log_row(i, served, served_ev))
        values.append(again or served)
        ev = again_ev or served_ev
        events.append({v: None if t is None else to_us(t) for v, t in ev.items()})
    return frame(rows), Recomputed(values, events, {UA: 3, CAT: 1})


def test_each_mismatch_gets_its_kind_and_size() -> None:
    rows, offline = build()
    res = compare_recomputed(rows, offline, SkewConfig(), REPO)

    clicks = res.feature("user_activity:clicks_24h")
    assert clicks.compared == 6
    assert clicks.mismatches == {"stale": 1, "transform": 1, "ahead": 1}
    d = clicks.to_dict()
    # |3 - 4| and |5 - 8|; the ahead row's recomputed value is null: no size.
    assert (d["mean_abs_diff"], d["max_abs_diff"]) == (2.0, 3.0)
    assert d["rates"]["transform"] == pytest.approx(1 / 6)
    assert [e["request_id"] for e in d["examples"]] == ["r1", "r2", "r5"]

    ratio = res.feature("request_features:price_vs_usual")
    # Row 1 differs only because its input was stale; row 3's transform gives 1, not 2.
    assert ratio.mismatches == {"stale": 1, "transform": 1, "ahead": 1}
    assert sorted(ratio.diffs) == [0.5, 1.0]
    assert res.feature("user_activity:usual_price_7d").mismatches == {
        "stale": 1,
        "transform": 0,
        "ahead": 1,
    }
    for same in ("item_catalog:category", "request_features:hour_of_day"):
        assert res.feature(same).mismatches == {"stale": 0, "transform": 0, "ahead": 0}

    lookups = {v.view: v.to_dict() for v in res.views}
    assert lookups[UA] == {"view": UA, "same": 4, "stale": 1, "ahead": 1, "no_row": 0}
    assert lookups[CAT] == {"view": CAT, "same": 5, "stale": 0, "ahead": 0, "no_row": 1}
    assert res.table_versions == {UA: 3, CAT: 1}


def test_alerts_name_the_feature_and_gauges_cover_every_kind() -> None:
    rows, offline = build()
    res = compare_recomputed(rows, offline, SkewConfig(), REPO)

    breaches = sorted(a.subject for a in res.alerts() if a.severity == "breach")
    assert breaches == ["request_features:price_vs_usual", "user_activity:clicks_24h"]
    (clicks,) = [a for a in res.alerts() if a.severity == "breach" and "clicks" in a.subject]
    assert (clicks.check, clicks.value, clicks.limit) == ("skew", pytest.approx(1 / 6), 0.0)
    assert "r2" in clicks.message
    warned = {(a.subject, "stale" if "stale" in a.message else "ahead") for a in res.alerts()}
    assert ("user_activity:usual_price_7d", "stale") in warned
    assert ("user_activity:usual_price_7d", "ahead") in warned

    # A looser threshold lets the single transform mismatch pass.
    loose = compare_recomputed(rows, offline, SkewConfig(max_transform_skew_rate=0.2), REPO)
    assert [a for a in loose.alerts() if a.severity == "breach"] == []

    gauges = {(g.tags["feature"], g.tags["kind"]): g.value for g in res.gauges()}
    assert len(gauges) == 5 * 3
    assert gauges["user_activity:clicks_24h", "stale"] == pytest.approx(1 / 6)
    assert gauges["item_catalog:category", "transform"] == 0.0
    assert {g.name for g in res.gauges()} == {"mlray_monitor_skew_rate"}
    json.dumps(res.to_dict(), allow_nan=False)


def test_tolerances() -> None:
    assert values_equal(0.1 + 0.2, 0.3, 1e-6, 1e-9)
    assert not values_equal(1.0, 1.001, 1e-6, 1e-9)
    assert values_equal(1.0, 1.001, 1e-2, 0.0)
    assert values_equal(None, float("nan"), 0.0, 0.0)
    assert not values_equal(None, 0.0, 1.0, 1.0)
    assert values_equal(3, 3.0, 0.0, 0.0) and not values_equal("a", "b", 1.0, 1.0)


def test_sample_is_seeded_and_independent_of_read_order() -> None:
    rows = frame([log_row(i, feats(1, 1.0, "x", 1.0), times(T, T)) for i in range(20)])
    cfg = SkewConfig(sample=5, seed=3)
    a = _sample(rows, cfg)["request_id"].tolist()
    b = _sample(rows.iloc[::-1], cfg)["request_id"].tolist()
    assert a == b and len(a) == 5
    assert _sample(rows, SkewConfig(sample=5, seed=4))["request_id"].tolist() != a


def test_degraded_predictions_are_not_audited(tmp_path: Path) -> None:
    settings = load_settings(config_file=None, data_root=str(tmp_path / "data"))
    rows = frame(
        [
            log_row(i, feats(0, 0.0, "unknown", None), times(None, None), degraded=True)
            for i in range(3)
        ]
    )
    res = skew_audit(settings, rows, SkewConfig(), repo=REPO)  # nothing left to join: no Ray
    assert (res.sampled, res.eligible, res.degraded, res.features) == (0, 0, 3, [])
    assert res.alerts() == []


def test_an_empty_window_audits_nothing(tmp_path: Path) -> None:
    settings = load_settings(config_file=None, data_root=str(tmp_path / "data"))
    res = skew_audit(settings, pd.DataFrame(), SkewConfig(), repo=REPO)
    assert (res.sampled, res.summary(), res.alerts(), res.gauges()) == (
        0,
        "no logged predictions to audit",
        [],
        [],
    )


def test_summary_line() -> None:
    rows, offline = build()
    line = compare_recomputed(rows, offline, SkewConfig(), REPO).summary()
    assert line.startswith("6 predictions recomputed; transform skew: 2 features (max 16.7%")
    assert "stale: 3 features" in line and "ahead: 3 features" in line
    first = Recomputed(offline.values[:1], offline.event_us[:1], {})
    same = compare_recomputed(rows.iloc[[0]], first, SkewConfig(), REPO)
    assert same.summary() == "1 prediction recomputed; no transform skew"
