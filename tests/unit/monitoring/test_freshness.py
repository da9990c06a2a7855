"""Freshness on hand-made log rows: lags, served ages and miss rates worked out by hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mlray.config import Settings, load_settings
from mlray.features.times import to_us
from mlray.monitoring.config import FreshnessConfig
from mlray.monitoring.freshness import freshness
from mlray.offline.predictions import decode_json_columns
from mlray.serving.prediction_log import LogRow, to_table

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(config_file=None, data_root=str(tmp_path / "data"))


def row(i: int, at: datetime, events: dict[str, datetime | None], degraded: bool = False) -> LogRow:
    """A logged prediction at ``at`` whose views' values had the given event times."""
    ev = {v: None if t is None else to_us(t) for v, t in events.items()}
    return LogRow(
        request_id=f"r{i}",
        request_time_us=to_us(at),
        route="/predict",
        model_name="ctr_model",
        entities={"user_id": i, "item_id": 1},
        context={"device": "mobile", "price": 10.0},
        features={},
        feature_event_times=ev,
        missing_features=[],
        score=0.5,
        model_version="1",
        latency_ms=1.0,
        degraded=degraded,
    )


def served(rows: list[LogRow]) -> pd.DataFrame:
    """The rows as the monitor reads them back from the log table."""
    return decode_json_columns(to_table(rows))


# user_activity: ages 60 s, 120 s, 300 s and one miss; item_stats: ages 3600 s and 7200 s.
T = NOW - 10 * MIN
ROWS = [
    row(0, T, {"user_activity": T - 1 * MIN, "item_stats": T - 60 * MIN}),
    row(1, T, {"user_activity": T - 2 * MIN, "item_stats": T - 120 * MIN}),
    row(2, T, {"user_activity": T - 5 * MIN}),
    row(3, T, {"user_activity": None}),
    row(4, T, {"user_activity": None, "item_stats": None}, degraded=True),
]
NEWEST = {
    "user_activity": NOW - 30 * MIN,  # lag 1800 s, under the default 2 h
    "item_stats": NOW - 180 * MIN,  # lag 10800 s, over the default 2 h
    "item_catalog": NOW - timedelta(days=1),  # lag 86400 s, under its own 2-day limit
    "request_features": None,  # a request-time view: nothing to materialize, skipped
}
CFG = FreshnessConfig(limits_s={"item_catalog": 2 * 86_400.0}, max_miss_rate=0.2)


def test_lag_ages_and_misses_per_view(settings: Settings) -> None:
    res = freshness(settings, served(ROWS), CFG, NOW, newest=NEWEST)

    assert [v.view for v in res.views] == ["item_catalog", "item_stats", "user_activity"]
    ua, st, cat = res.view("user_activity"), res.view("item_stats"), res.view("item_catalog")
    assert (ua.lag_s, st.lag_s, cat.lag_s) == (1800.0, 10800.0, 86400.0)
    assert (ua.limit_s, st.limit_s, cat.limit_s) == (7200.0, 7200.0, 172800.0)
    assert (ua.status, st.status, cat.status) == ("ok", "stale", "ok")
    # The degraded row is no lookup: 4 lookups of user_activity, one without a row.
    assert (ua.lookups, ua.misses, ua.miss_rate) == (4, 1, 0.25)
    # Ages [60, 120, 300]: median 120; p95 at rank 0.95 * 2 = 1.9: 120 + 0.9 * 180 = 282.
    assert ua.served_age_s == pytest.approx({"p50": 120.0, "p95": 282.0, "max": 300.0})
    # [3600, 7200]: p50 5400, p95 3600 + 0.95 * 3600 = 7020.
    assert st.served_age_s == pytest.approx({"p50": 5400.0, "p95": 7020.0, "max": 7200.0})
    assert (st.lookups, st.misses) == (2, 0)
    assert cat.lookups == 0 and cat.miss_rate is None
    assert cat.served_age_s == {"p50": None, "p95": None, "max": None}
    assert (res.rows, res.degraded_rows) == (5, 1)


def test_a_view_past_its_limit_breaches_and_a_high_miss_rate_warns(settings: Settings) -> None:
    res = freshness(settings, served(ROWS), CFG, NOW, newest=NEWEST)

    alerts = {(a.subject, a.severity): a for a in res.alerts()}
    assert set(alerts) == {("item_stats", "breach"), ("user_activity", "warn")}
    lag = alerts["item_stats", "breach"]
    assert (lag.check, lag.value, lag.limit) == ("freshness", 10800.0, 7200.0)
    assert "item_stats" in lag.message and "3.0 h" in lag.message
    miss = alerts["user_activity", "warn"]
    assert (miss.value, miss.limit) == (0.25, 0.2)

    # Within every limit: no alert.
    relaxed = CFG.model_copy(update={"default_limit_s": 4 * 3600.0, "max_miss_rate": 0.5})
    assert freshness(settings, served(ROWS), relaxed, NOW, newest=NEWEST).alerts() == []


def test_a_served_view_never_materialized_breaches(settings: Settings) -> None:
    # item_catalog was never materialized either, but no traffic read it: no alert.
    newest = {"item_stats": NOW, "item_catalog": None}
    res = freshness(settings, served(ROWS), CFG, NOW, newest=newest)

    ua = res.view("user_activity")
    assert (ua.newest_event_time, ua.lag_s, ua.status) == (None, None, "not_materialized")
    assert res.view("item_catalog").status == "not_materialized"
    (alert,) = [a for a in res.alerts() if a.severity == "breach"]
    assert (alert.subject, alert.value) == ("user_activity", -1.0)
    assert "materialize" in alert.message


def test_gauges_and_json(settings: Settings) -> None:
    res = freshness(settings, served(ROWS), CFG, NOW, newest=NEWEST)

    gauges = {(g.name, tuple(sorted(g.tags.items()))): g.value for g in res.gauges()}
    assert gauges[("mlray_monitor_view_lag_seconds", (("view", "item_stats"),))] == 10800.0
    key = ("mlray_monitor_served_age_seconds", (("quantile", "p95"), ("view", "user_activity")))
    assert gauges[key] == pytest.approx(282.0)
    assert gauges[("mlray_monitor_miss_rate", (("view", "user_activity"),))] == 0.25
    # No traffic read item_catalog: a lag, but no age or miss-rate gauge.
    assert {name for name, tags in gauges if tags == (("view", "item_catalog"),)} == {
        "mlray_monitor_view_lag_seconds"
    }
    assert all(g.name.startswith("mlray_monitor_") for g in res.gauges())

    body = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    (st,) = [v for v in body["views"] if v["view"] == "item_stats"]
    assert st["newest_event_time"] == (NOW - 180 * MIN).isoformat()
    assert st["status"] == "stale"


def test_an_empty_window_still_reports_lags(settings: Settings) -> None:
    res = freshness(settings, served([]), CFG, NOW, newest=NEWEST)

    assert res.rows == 0
    assert res.view("item_stats").lag_s == 10800.0
    assert res.view("user_activity").lookups == 0
    assert [a.subject for a in res.alerts()] == ["item_stats"]


def test_a_naive_now_is_refused(settings: Settings) -> None:
    from mlray.errors import SchemaError

    with pytest.raises(SchemaError, match="no time zone"):
        freshness(settings, served(ROWS), CFG, NOW.replace(tzinfo=None), newest=NEWEST)
