"""Drift on the demo: the generator's --drift-after shows in the served features, the rest not.

The demo click stream with a drift from day 8 (90% of items ~40% dearer,
60% of impressions moved to mobile; categories untouched), features built by
the real pipeline. The reference is what a model trained before the drift
registers (the pipeline's training set, from when every view's lookback has
filled, and the validation stage's reference distributions). Served traffic
is a fixed sample of the impressions of the last day, each with its features
as served at its request time (the point-in-time join the skew audit holds
equal to the online read), written to a prediction log by the serving
log writer and read back by the monitor's reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import deltalake
import numpy as np
import pandas as pd
import pytest

from mlray.config import Settings, load_settings
from mlray.monitoring.config import DriftConfig
from mlray.monitoring.drift import feature_drift, seasonal_features
from mlray.monitoring.served import served_frame
from mlray.validation.psi import Reference

START = datetime(2026, 2, 1, tzinfo=UTC)
DRIFT_DAY, DAYS = 8, 10
DRIFT = START + timedelta(days=DRIFT_DAY)
LAST_DAY = START + timedelta(days=DAYS - 1)
SAMPLE = 1000
CFG = DriftConfig()


@dataclass
class Demo:
    settings: Settings
    reference: Reference  # trained before the drift, from when the lookback filled
    early_reference: Reference  # the same, from the first day (windows partly filled)
    lookback: dict
    refs: list[str]


def training_data(settings: Settings, **labels):
    """The pipeline's training set (default config, ``labels`` overrides) and its config."""
    from mlray.training.config import load_train_config
    from mlray.training.dataset import build_training_set

    cfg = load_train_config(None, labels=labels)
    return cfg, build_training_set(settings, cfg)


def reference_of(cfg, data, end: datetime) -> Reference:
    """The reference distributions a model trained on ``data``'s rows before ``end`` registers."""
    from mlray.offline.labels import TimeSlice
    from mlray.validation.validate import validate_training_set

    rows = data.dataset.map_batches(TimeSlice(cfg.labels.time, None, end), batch_format="pyarrow")
    _, reference = validate_training_set(
        rows.materialize(),
        data.fields,
        label=cfg.labels.label,
        label_time=cfg.labels.time,
        config=cfg.validation,
        categorical=data.categorical,
    )
    return reference


def log_served(settings: Settings, rows: pd.DataFrame, columns: list[str]) -> None:
    """The rows as the serving app logs them: one prediction each, its features as served."""
    from mlray.offline.predictions import predictions_uri
    from mlray.serving.prediction_log import DeltaLogWriter, LogRow

    def value(v):
        return None if isinstance(v, float) and np.isnan(v) else v

    log_rows = [
        LogRow(
            request_id=f"imp-{r['impression_id']}",
            request_time_us=int(pd.Timestamp(r["event_time"]).value // 1000),
            route="/predict",
            model_name="ctr_model",
            entities={"user_id": int(r["user_id"]), "item_id": int(r["item_id"])},
            context={"device": r["device"], "price": float(r["price"])},
            features={c: value(r[c]) for c in columns},
            feature_event_times={},
            missing_features=[],
            score=0.05,
            model_version="1",
            latency_ms=1.0,
            degraded=False,
        )
        for r in rows.to_dict("records")
    ]
    DeltaLogWriter(predictions_uri(settings)).append(log_rows)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, ray_session: None) -> Demo:
    from mlray.demo.generate import generate_clickstream
    from mlray.store import FeatureStore

    root = tmp_path_factory.mktemp("drift") / "data"
    s = load_settings(config_file=None, data_root=str(root), num_buckets=2)
    generate_clickstream(
        s.raw_root,
        users=200,
        items=50,
        days=DAYS,
        seed=11,
        drift_after=DRIFT_DAY,
        start=START,
        progress=False,
    )
    FeatureStore(s).build_features(START, START + timedelta(days=DAYS))
    cfg, data = training_data(s)  # from when every view's lookback has filled
    reference = reference_of(cfg, data, DRIFT)
    cfg_early, early = training_data(s, end=DRIFT.isoformat(), start_after_lookback=False)
    early_reference = reference_of(cfg_early, early, DRIFT)
    rows = data.dataset.to_pandas()
    times = pd.to_datetime(rows["event_time"], utc=True)
    last_day = rows[times >= LAST_DAY].sample(SAMPLE, random_state=0)
    log_served(
        s, pd.concat([rows[(times >= DRIFT) & (times < LAST_DAY)], last_day]), list(data.fields)
    )
    return Demo(s, reference, early_reference, data.lineage["lookback"], data.feature_refs)


def test_the_shifted_features_drift_and_the_category_does_not(demo: Demo):
    window = served_frame(demo.settings, "predictions", LAST_DAY, LAST_DAY + timedelta(days=1))
    history = served_frame(demo.settings, "predictions", DRIFT, LAST_DAY)
    assert len(window) == SAMPLE
    seasonal = seasonal_features(demo.settings, demo.refs)
    assert seasonal == {"request_features__hour_of_day"}
    result = feature_drift(window, demo.reference, CFG, seasonal, history)
    shifted = [
        "request_features:device_mobile",
        "request_features:device_desktop",
        "item_stats:current_price",
        "item_catalog:list_price",
    ]
    print({k: round(v, 3) for k, v in result.psi.items() if v is not None})
    for feature in shifted:
        assert result.psi[feature] > 0.25, feature
        assert result.status[feature] == "act"
    assert result.psi["item_catalog:category"] < 0.1
    breaches = {a.subject for a in result.alerts() if a.severity == "breach"}
    assert set(shifted) <= breaches and "item_catalog:category" not in breaches
    # The hour of day is compared with the same hours of the days before, not with training.
    assert result.baseline["request_features:hour_of_day"] == "same_hours"
    assert result.status["request_features:hour_of_day"] == "ok"


def test_the_hour_of_day_in_a_short_window_does_not_alarm(demo: Demo):
    evening = LAST_DAY + timedelta(hours=17)
    window = served_frame(demo.settings, "predictions", evening, evening + timedelta(hours=6))
    history = served_frame(demo.settings, "predictions", DRIFT, LAST_DAY)
    cfg = DriftConfig(min_rows=100)
    assert len(window) >= cfg.min_rows
    hour = "request_features:hour_of_day"
    plain = feature_drift(window, demo.reference, cfg)
    assert plain.status[hour] == "act"  # six hours of the day vs the whole day of training
    seasonal = seasonal_features(demo.settings, demo.refs)
    without_history = feature_drift(window, demo.reference, cfg, seasonal)
    assert without_history.status[hour] == "seasonal"
    assert hour not in {a.subject for a in without_history.alerts()}
    result = feature_drift(window, demo.reference, cfg, seasonal, history)
    assert result.baseline[hour] == "same_hours" and result.psi[hour] < 0.1
    assert hour not in {a.subject for a in result.alerts()}


def test_training_starts_after_the_lookback_and_the_window_skew_is_gone(demo: Demo):
    impressions = deltalake.DeltaTable(demo.settings.table_uri("raw", "impressions")).to_pandas()
    first = impressions["event_time"].min()
    start = first + timedelta(days=7, hours=1)
    assert demo.lookback["view"] in ("user_activity", "item_stats")
    assert pd.Timestamp(demo.lookback["start"]) == start
    assert demo.lookback["dropped_rows"] == int((impressions["event_time"] < start).sum())
    window = served_frame(demo.settings, "predictions", LAST_DAY, LAST_DAY + timedelta(days=1))
    counts = "user_activity:impressions_7d"
    full = feature_drift(window, demo.reference, CFG).psi[counts]
    partial = feature_drift(window, demo.early_reference, CFG).psi[counts]
    print(f"{counts}: PSI {full:.3f} after the lookback, {partial:.3f} from the first day")
    assert full < 0.1 < partial
