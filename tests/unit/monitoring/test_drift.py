"""Drift of served features and scores: PSI by hand, statuses, alerts, seasonal fields."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlray.config import load_settings
from mlray.errors import DefinitionError
from mlray.features import Entity, FeatureView, Field
from mlray.monitoring.config import DriftConfig
from mlray.monitoring.drift import drift_status, feature_drift, score_drift, seasonal_features
from mlray.monitoring.served import expand_features, feature_columns, served_frame
from mlray.validation.psi import EPS, Distribution, Reference

T0 = datetime(2026, 3, 2, tzinfo=UTC)
CFG = DriftConfig(min_rows=4)


def term(expected: float, actual: float) -> float:
    """One bin's PSI term, shares clipped at EPS as the formula says."""
    e, a = max(expected, EPS), max(actual, EPS)
    return (a - e) * math.log(a / e)


def frame(columns: dict[str, list], hours: list[int] | None = None, day: int = 0) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    hours = hours if hours is not None else [12] * n
    times = [T0 + timedelta(days=day, hours=h, minutes=i % 60) for i, h in enumerate(hours)]
    return pd.DataFrame({"request_time": pd.to_datetime(times, utc=True), **columns})


# -- PSI against hand-computed values ----------------------------------------------------------
def test_numeric_psi_uses_the_reference_edges_with_an_empty_bin_and_nulls_in_their_own_bin():
    # Bins (-inf, 1], (1, 2], (2, inf), null; the reference has no nulls.
    ref = Reference({"v__x": Distribution("numeric", [0.25, 0.25, 0.5, 0.0], [1.0, 2.0])})
    # 1.0 falls in the first bin, 2.0 in the second; nothing above 2 (an empty bin); 2 nulls.
    served = frame({"v__x": [0.5, 1.0, 1.5, 2.0, 1.2, 1.9, None, np.nan]})
    result = feature_drift(served, ref, CFG)
    # served shares: 2/8, 4/8, 0, 2/8
    expected = term(0.25, 0.25) + term(0.25, 0.5) + term(0.5, 0.0) + term(0.0, 0.25)
    assert expected == pytest.approx(
        0.25 * math.log(2) + (EPS - 0.5) * math.log(EPS / 0.5) + (0.25 - EPS) * math.log(0.25 / EPS)
    )
    assert result.psi == {"v:x": pytest.approx(expected, rel=1e-12)}
    assert result.status == {"v:x": "act"} and result.baseline == {"v:x": "reference"}
    assert result.rows == 8


def test_categorical_psi_keys_values_like_the_reference_and_bins_unseen_categories_as_other():
    # Categories "1", "2", then __other__, then null (as validation builds an integer
    # categorical reference, e.g. the hour of day).
    ref = Reference(
        {"r__hour": Distribution("categorical", [0.5, 0.3, 0.1, 0.1], categories=["1", "2"])}
    )
    # 1, 1.0 and "1" are one category; 7 was never seen in training; None and NaN are missing.
    values = [1, 1.0, "1", 2, 7, None, float("nan"), 2]
    served = frame({"r__hour": pd.Series(values, dtype=object)})
    result = feature_drift(served, ref, CFG)
    # served shares: "1" 3/8, "2" 2/8, other 1/8, null 2/8
    expected = (
        (0.375 - 0.5) * math.log(0.375 / 0.5)
        + (0.25 - 0.3) * math.log(0.25 / 0.3)
        + (0.125 - 0.1) * math.log(0.125 / 0.1)
        + (0.25 - 0.1) * math.log(0.25 / 0.1)
    )
    assert result.psi["r:hour"] == pytest.approx(expected, rel=1e-12)
    assert result.status["r:hour"] == drift_status(expected, CFG) == "warn"  # 0.1 <= 0.163 < 0.25


def test_string_categories_and_a_category_the_reference_kept_none_of():
    ref = Reference(
        {"c__cat": Distribution("categorical", [0.6, 0.4, 0.0, 0.0], categories=["a", "b"])}
    )
    served = frame({"c__cat": pd.Series(["a", "a", "b", "zz"], dtype=object)})
    result = feature_drift(served, ref, CFG)
    assert result.psi["c:cat"] == pytest.approx(
        term(0.6, 0.5) + term(0.4, 0.25) + term(0.0, 0.25) + term(0.0, 0.0), rel=1e-12
    )


# -- statuses, alerts and gauges at the thresholds ------------------------------------------
def two_bins(share_low: float, n: int = 10) -> pd.Series:
    k = round(share_low * n)
    return pd.Series([0.0] * k + [1.0] * (n - k))


def test_statuses_alerts_and_gauges_follow_the_thresholds():
    half = Distribution("numeric", [0.5, 0.5, 0.0], [0.5])
    ref = Reference({"v__ok": half, "v__warn": half, "v__act": half})
    served = frame({"v__ok": two_bins(0.6), "v__warn": two_bins(0.7), "v__act": two_bins(0.8)})
    result = feature_drift(served, ref, CFG)
    by_hand = {
        "v:ok": 0.1 * (math.log(1.2) - math.log(0.8)),  # 0.041
        "v:warn": 0.2 * (math.log(1.4) - math.log(0.6)),  # 0.169
        "v:act": 0.3 * (math.log(1.6) - math.log(0.4)),  # 0.416
    }
    assert result.psi == pytest.approx(by_hand, rel=1e-9)
    assert result.status == {"v:ok": "ok", "v:warn": "warn", "v:act": "act"}
    alerts = {a.subject: a for a in result.alerts()}
    assert set(alerts) == {"v:warn", "v:act"}
    act, warn = alerts["v:act"], alerts["v:warn"]
    assert (act.check, act.severity, act.limit) == ("feature_drift", "breach", 0.25)
    assert (warn.check, warn.severity, warn.limit) == ("feature_drift", "warn", 0.1)
    assert "PSI 0.416 of feature v:act over 10 served rows" in act.message
    gauges = {g.tags["feature"]: g for g in result.gauges()}
    assert {g.name for g in gauges.values()} == {"mlray_monitor_psi"}
    assert gauges["v:ok"].value == pytest.approx(by_hand["v:ok"])
    body = json.loads(json.dumps(result.to_dict()))
    assert body["status"]["v:act"] == "act" and body["warn"] == 0.1 and body["act"] == 0.25


def test_the_thresholds_are_inclusive():
    cfg = DriftConfig()
    assert [drift_status(v, cfg) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "ok",
        "ok",
        "warn",
        "warn",
        "act",
        "act",
    ]


def test_too_few_rows_give_no_verdict_and_no_alert():
    ref = Reference({"v__x": Distribution("numeric", [1.0, 0.0, 0.0], [0.5])})
    result = feature_drift(frame({"v__x": [9.0, 9.0, 9.0]}), ref, CFG)  # 3 < min_rows 4
    assert result.psi == {"v:x": None} and result.status == {"v:x": "too_few_rows"}
    assert result.alerts() == [] and result.gauges() == []


def test_a_reference_feature_missing_from_the_log_is_listed_not_compared():
    d = Distribution("numeric", [0.5, 0.5, 0.0], [0.5])
    result = feature_drift(frame({"v__x": two_bins(0.5)}), Reference({"v__x": d, "v__y": d}), CFG)
    assert result.not_served == ["v:y"] and list(result.psi) == ["v:x"]
    assert result.psi["v:x"] == pytest.approx(0.0)


# -- seasonal features --------------------------------------------------------------------------
HOURS = [str(h) for h in range(24)]
HOUR_REF = Reference(
    {"r__hour": Distribution("categorical", [1 / 24] * 24 + [0.0, 0.0], categories=HOURS)}
)


def evening(day: int, share_20: float, n: int = 10) -> pd.DataFrame:
    k = round(share_20 * n)
    hours = [20] * k + [21] * (n - k)
    return frame({"r__hour": pd.Series(hours, dtype="int64")}, hours=hours, day=day)


def test_a_seasonal_feature_without_history_is_reported_and_never_alerts():
    served = evening(day=7, share_20=0.5)
    plain = feature_drift(served, HOUR_REF, CFG)
    assert plain.status["r:hour"] == "act"  # two hours of the day vs all 24: it would alarm
    result = feature_drift(served, HOUR_REF, CFG, seasonal={"r:hour"})
    assert result.status == {"r:hour": "seasonal"} and result.psi == {"r:hour": None}
    assert result.alerts() == [] and result.gauges() == []
    assert feature_drift(served, HOUR_REF, CFG, {"r__hour"}, served.iloc[:0]).status == {
        "r:hour": "seasonal"
    }


def test_a_seasonal_feature_is_compared_with_the_same_hours_on_earlier_days():
    served = evening(day=7, share_20=0.5)
    history = pd.concat(
        [
            evening(day=6, share_20=0.5),
            evening(day=5, share_20=0.5),
            frame({"r__hour": [3] * 10}, hours=[3] * 10, day=6),  # other hours: left out
            evening(day=7 - 8, share_20=1.0),  # more than 7 days before: left out
        ]
    )
    result = feature_drift(served, HOUR_REF, CFG, {"r:hour"}, history)
    assert result.status == {"r:hour": "ok"} and result.psi["r:hour"] == pytest.approx(0.0)
    assert result.baseline == {"r:hour": "same_hours"} and result.baseline_rows == {"r:hour": 20}
    # The same hours, but a different mix on the earlier days: PSI over the reference's bins.
    shifted = feature_drift(served, HOUR_REF, CFG, {"r:hour"}, evening(day=6, share_20=0.8))
    assert shifted.psi["r:hour"] == pytest.approx(term(0.8, 0.5) + term(0.2, 0.5), rel=1e-9)
    assert shifted.status["r:hour"] == "act"
    assert shifted.alerts()[0].message.endswith(
        "vs the same hours of day on earlier days of served traffic (warn at 0.1, act at 0.25; "
        "limit crossed: 0.25). Check the feature's source for a change, or retrain on recent data."
    )


def test_seasonal_features_come_from_the_field_definitions(tmp_path: Path):
    settings = load_settings(config_file=None, data_root=str(tmp_path))  # the demo repository
    refs = ["request_features:hour_of_day", "request_features:device_mobile", "gone:feature"]
    assert seasonal_features(settings, refs) == {"request_features__hour_of_day"}
    assert seasonal_features(settings, ["user_activity__ctr_7d"]) == set()


def test_seasonal_must_be_a_bool():
    with pytest.raises(DefinitionError, match="field 'h' has seasonal='yes'"):
        FeatureView(
            name="v",
            entities=[Entity("u", ("u",))],
            schema=[Field("h", pa.int64(), seasonal="yes")],
        )


# -- score drift --------------------------------------------------------------------------------
def test_score_psi_against_the_registered_score_distribution_per_model_version():
    ref = Reference({}, score=Distribution("numeric", [0.5, 0.5, 0.0], [0.1]))
    served = pd.DataFrame(
        {
            "score": [0.05] * 8 + [0.5] * 2 + [0.9] * 10,
            "model_version": ["3"] * 10 + ["4"] * 10,
        }
    )
    result = score_drift(served, ref, CFG, model_version="3")
    assert result.rows == 10
    assert result.psi == {"3": pytest.approx(term(0.5, 0.8) + term(0.5, 0.2), rel=1e-9)}
    assert result.status == {"3": "act"}
    (alert,) = result.alerts()
    assert (alert.check, alert.subject, alert.severity) == ("score_drift", "3", "breach")
    (gauge,) = result.gauges()
    assert (gauge.name, gauge.tags) == ("mlray_monitor_score_psi", {"model_version": "3"})
    assert list(score_drift(served[served.model_version == "4"], ref, CFG).psi) == ["4"]
    assert list(score_drift(served, ref, CFG).psi) == ["all"]
    none = score_drift(served, Reference({}), CFG)
    assert none.psi == {} and "no score reference" in (none.note or "")


# -- the served frame ---------------------------------------------------------------------------
def log_rows(features: list[dict]) -> pa.Table:
    from mlray.serving.prediction_log import LogRow, to_table

    t = int(T0.timestamp() * 1e6)
    return to_table(
        [
            LogRow(
                f"r{i}", t + i, "/predict", "m", {"user_id": i}, {}, f, {}, [], 0.1, "1", 1.0, False
            )
            for i, f in enumerate(features)
        ]
    )


def test_served_frame_spreads_the_features_into_typed_columns(tmp_path: Path):
    from deltalake import write_deltalake

    from mlray.offline.predictions import predictions_uri

    settings = load_settings(config_file=None, data_root=str(tmp_path))
    features = [
        {"u__n": 3, "i__cat": "books", "r__hour": 20, "u__p": 1.5, "r__d": True},
        {"u__n": 4, "i__cat": None, "r__hour": 21, "u__p": float("nan"), "r__d": False},
        {"u__n": 5, "i__cat": "toys"},
    ]
    write_deltalake(predictions_uri(settings), log_rows(features), partition_by=["day"])
    df = served_frame(settings, "predictions", T0, T0 + timedelta(hours=1))
    assert feature_columns(df) == ["u__n", "i__cat", "r__hour", "u__p", "r__d"]
    assert df["u__n"].dtype == np.float64 and df["u__n"].tolist() == [3.0, 4.0, 5.0]
    assert df["i__cat"].tolist() == ["books", None, "toys"]
    assert df["r__hour"].tolist()[:2] == [20.0, 21.0] and np.isnan(df["r__hour"].iloc[2])
    assert df["u__p"].iloc[0] == 1.5 and df["u__p"].isna().tolist() == [False, True, True]
    assert df["r__d"].tolist()[:2] == [1.0, 0.0]
    assert df["entities"].tolist()[0] == {"user_id": 0} and len(df) == 3
    assert len(served_frame(settings, "predictions", T0 + timedelta(days=1), None)) == 0
    assert feature_columns(expand_features(pd.DataFrame({"score": []}))) == []
