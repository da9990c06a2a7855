"""Delayed-label performance: AUC, log loss and calibration against hand-computed values; joins."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from mlray.config import load_settings
from mlray.errors import SchemaError
from mlray.monitoring.config import LabelsConfig
from mlray.monitoring.performance import (
    JOINED_COLUMNS,
    calibration_bins,
    join_labels,
    load_labels,
    performance,
)

D1, D2 = datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 1, 2, 10, tzinfo=UTC)
# r1..r4 on day 1, r5..r8 on day 2; champion v1 scored all, the shadow v2 r1..r6.
Y = [1, 0, 1, 0, 1, 0, 0, 1]
SCORE = [0.9, 0.2, 0.6, 0.6, 0.35, 0.4, 0.1, 0.8]
SHADOW = [0.8, 0.1, 0.7, 0.3, 0.6, 0.5, None, None]


def _served() -> pd.DataFrame:
    times = [D1 + timedelta(minutes=i) for i in range(4)] + [
        D2 + timedelta(minutes=i) for i in range(4)
    ]
    return pd.DataFrame(
        {
            "request_id": [f"r{i + 1}" for i in range(8)],
            "request_time": pd.to_datetime(times, utc=True),
            "entities": [{"user_id": i, "item_id": 1} for i in range(8)],
            "score": SCORE,
            "model_version": "1",
            "shadow_score": SHADOW,
            "shadow_version": ["2"] * 6 + [None, None],
        }
    )


def _joined(**cfg) -> pd.DataFrame:
    served = _served()
    labels = pd.DataFrame(
        {
            "request_id": served["request_id"],
            "clicked": Y,
            "label_time": served["request_time"] + pd.Timedelta(minutes=5),
        }
    )
    return join_labels(served, labels, LabelsConfig(**cfg))


def _ll(pairs: list[tuple[int, float]]) -> float:
    return -sum(math.log(p if y else 1 - p) for y, p in pairs) / len(pairs)


def test_auc_log_loss_and_labels_per_version_and_day():
    res = performance(_joined(), LabelsConfig(calibration_bins=2))
    champ = res.figures("1")
    # Positives .9 .6 .35 .8 vs negatives .2 .6 .4 .1: 4 + 3.5 (one tie) + 2 + 4 of 16 pairs.
    assert champ.auc == pytest.approx(13.5 / 16)
    assert (champ.n_labels, champ.positives) == (8, 4)
    assert champ.log_loss == pytest.approx(_ll(list(zip(Y, SCORE, strict=True))))
    day1, day2 = res.figures("1", day="2026-01-01"), res.figures("1", day="2026-01-02")
    assert day1.auc == pytest.approx(3.5 / 4) and day1.n_labels == 4
    assert day2.auc == pytest.approx(3 / 4) and day2.n_labels == 4
    assert day1.log_loss == pytest.approx(
        -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.4)) / 4
    )
    shadow = res.figures("2", role="shadow")
    assert (shadow.auc, shadow.n_labels) == (1.0, 6)  # r7, r8 had no shadow score
    assert shadow.log_loss == pytest.approx(_ll(list(zip(Y[:6], SHADOW[:6], strict=True))))
    assert res.figures("2", role="shadow", day="2026-01-02").n_labels == 2
    assert [(f.role, f.model_version, f.day) for f in res.daily] == [
        ("champion", "1", "2026-01-01"),
        ("champion", "1", "2026-01-02"),
        ("shadow", "2", "2026-01-01"),
        ("shadow", "2", "2026-01-02"),
    ]
    with pytest.raises(KeyError):
        res.figures("2")  # v2 never served as champion


def test_calibration_bins_and_error():
    champ = performance(_joined(), LabelsConfig(calibration_bins=2)).figures("1")
    low, high = champ.calibration
    # [0, .5): .2 .35 .4 .1 with labels 0 1 0 0; [.5, 1]: .9 .6 .6 .8 with labels 1 1 0 1.
    assert (low.lo, low.hi, low.n) == (0.0, 0.5, 4)
    assert low.mean_score == pytest.approx(0.2625) and low.observed_rate == 0.25
    assert (high.n, high.observed_rate) == (4, 0.75) and high.mean_score == pytest.approx(0.725)
    assert champ.calibration_error == pytest.approx((4 * 0.0125 + 4 * 0.025) / 8)
    edges = calibration_bins(np.array([0, 1, 1, 0]), np.array([0.0, 0.5, 1.0, 0.25]), 4)
    assert [b.n for b in edges] == [1, 1, 1, 1]  # 0 -> first bin, 0.5 -> [.5,.75), 1 -> last
    assert edges[3].mean_score == 1.0 and edges[2].observed_rate == 1.0


def test_a_single_class_has_no_auc():
    joined = _joined()
    joined.loc[joined["day"] == "2026-01-02", "label"] = 0
    day2 = performance(joined, LabelsConfig()).figures("1", day="2026-01-02")
    assert day2.auc is None and day2.positives == 0
    assert day2.log_loss == pytest.approx(-sum(math.log(1 - p) for p in SCORE[4:]) / 4)
    assert performance(joined, LabelsConfig()).to_dict()["daily"][1]["auc"] is None


def test_alerts_and_gauges():
    joined = _joined()
    res = performance(joined, LabelsConfig(min_labels=8), {"1": 0.95, "2": 0.99}, 0.05)
    (alert,) = res.alerts()  # the shadow's AUC 1.0 is above its test AUC
    assert (alert.check, alert.severity, alert.subject) == (
        "performance",
        "breach",
        "v1 (champion)",
    )
    assert alert.value == pytest.approx(0.95 - 13.5 / 16) and alert.limit == 0.05
    assert "0.8438" in alert.message and "0.9500" in alert.message
    assert performance(joined, LabelsConfig(min_labels=8), {"1": 0.88}).alerts() == []
    assert performance(joined, LabelsConfig(min_labels=9), {"1": 0.95}).alerts() == []
    shadow = performance(joined, LabelsConfig(min_labels=6), {"2": 1.2}).alerts()
    assert [(a.subject, a.severity) for a in shadow] == [("v2 (shadow)", "warn")]
    gauges = {(g.name, g.tags["model_version"], g.tags["role"]): g.value for g in res.gauges()}
    assert gauges[("mlray_monitor_auc", "1", "champion")] == pytest.approx(13.5 / 16)
    assert gauges[("mlray_monitor_labels", "2", "shadow")] == 6
    assert ("mlray_monitor_log_loss", "1", "champion") in gauges and len(gauges) == 6


def test_join_by_request_id_takes_the_earliest_label():
    served = _served().iloc[:4]
    t = served["request_time"]
    labels = pd.DataFrame(
        {
            "request_id": ["r1", "r3", "r3", "r9"],
            "clicked": [0, 0, 1, 1],
            "label_time": [t[0], t[2] + pd.Timedelta(10, "s"), t[2] + pd.Timedelta(5, "s"), t[0]],
        }
    )
    joined = join_labels(served, labels, LabelsConfig())
    assert list(joined.columns) == JOINED_COLUMNS
    assert joined["request_id"].tolist() == ["r1", "r3"]
    assert joined["label"].tolist() == [0, 1]
    assert joined["day"].tolist() == ["2026-01-01"] * 2


def test_join_by_entity_and_time_within_the_attribution_window():
    at = pd.Timestamp("2026-01-01T10:00:00Z")
    us = pd.Timedelta(microseconds=1)
    served = pd.DataFrame(
        {
            "request_id": ["A", "B", "C", "D"],
            "request_time": [at, at + pd.Timedelta(minutes=30), at, at],
            "entities": [
                {"user_id": 7, "item_id": 3},
                {"user_id": 7, "item_id": 3},
                {"user_id": 8, "item_id": 3},
                {"user_id": "9", "item_id": 1},  # a string key matches the label's 9
            ],
            "score": [0.1, 0.2, 0.3, 0.4],
            "model_version": "1",
        }
    )
    labels = pd.DataFrame(
        {
            "user_id": [7, 7, 7, 8, 8, 9, 9],
            "item_id": [3, 3, 3, 3, 3, 1, 1],
            "clicked": [1, 0, 1, 1, 1, 0, 1],
            "label_time": [
                at,  # A: at the request itself (included)
                at + pd.Timedelta(minutes=40),  # B: exactly the window's end (included)
                at + pd.Timedelta(minutes=40) + us,  # past B's window
                at - us,  # C: before its request
                at + pd.Timedelta(minutes=10) + us,  # C: past its window
                at + pd.Timedelta(minutes=5),  # D: two labels at once: a click wins
                at + pd.Timedelta(minutes=5),
            ],
        }
    )
    cfg = LabelsConfig(join="entity_time", attribution_window_s=600)
    joined = join_labels(served, labels, cfg)
    got = dict(zip(joined["request_id"], joined["label"], strict=True))
    assert got == {"A": 1, "B": 0, "D": 1}
    assert joined.set_index("request_id").loc["B", "label_time"] == at + pd.Timedelta(minutes=40)
    assert {"user_id", "item_id"} <= set(joined.columns)
    wide = join_labels(served, labels, cfg.model_copy(update={"attribution_window_s": 601}))
    assert sorted(wide["request_id"]) == ["A", "B", "C", "D"]
    with pytest.raises(SchemaError, match="share no entity key"):
        join_labels(served, labels.rename(columns={"user_id": "u", "item_id": "i"}), cfg)


def test_load_labels_from_parquet_delta_and_raw_name(tmp_path):
    settings = load_settings(None, data_root=str(tmp_path / "data"))
    table = pa.table(
        {
            "request_id": ["a", "b", "c"],
            "clicked": pa.array([True, False, None]),
            "label_time": pa.array([0, 1, 2], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, tmp_path / "labels.parquet")
    write_deltalake(settings.table_uri("raw", "served_labels"), table)
    for source in (str(tmp_path / "labels.parquet"), "served_labels"):
        df = load_labels(settings, LabelsConfig(source=source))
        assert df["request_id"].tolist() == ["a", "b"]  # c's label has not landed
        assert df["clicked"].tolist() == [1, 0] and str(df["label_time"].dt.tz) == "UTC"
    with pytest.raises(SchemaError, match="lacks"):
        load_labels(settings, LabelsConfig(source="served_labels", label_column="label"))
    pq.write_table(pa.table({"request_id": ["a"], "clicked": [2]}), tmp_path / "bad.parquet")
    with pytest.raises(SchemaError, match="0/1"):
        load_labels(settings, LabelsConfig(source=str(tmp_path / "bad.parquet")))
