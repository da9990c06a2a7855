"""Request-time features: the training set and the online read run one definition and agree."""

from __future__ import annotations

import math
from datetime import timedelta

import pandas as pd
import pytest
import ray

from mlray.errors import NotFoundError, SchemaError
from mlray.store import FeatureStore

ON_DEMAND = [
    "request_features:hour_of_day",
    "request_features:price_vs_usual",
    "request_features:device_mobile",
    "request_features:device_desktop",
    "request_features:device_tablet",
]


@pytest.fixture(scope="module")
def store(recent_demo):
    settings, summary = recent_demo
    fs = FeatureStore(settings.model_copy(update={"project": "recent_odfv"}))
    fs.materialize(summary.end)
    return fs, summary


def arrow_rows(ts) -> list[dict]:
    """The training set as Python values (nulls None, NaN kept); empty blocks skipped."""
    return [
        r for t in ray.get(list(ts.dataset.to_arrow_refs())) if t.num_rows for r in t.to_pylist()
    ]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def test_training_set_and_online_give_identical_request_features(store):
    fs, summary = store
    # Request times at and after the as-of time: offline the join then sees exactly what was
    # materialized, so both paths get the same stored inputs; the hour of day varies per time.
    contexts = [
        (u, d, p)
        for u, d, p in zip(
            [0, 1, 2, 3, 5, 8, 13, 21, 34, 99_999],
            ["mobile", "desktop", "tablet", "mobile", "desktop"] * 2,
            [3.5, 20.0, 0.0, 120.0, 55.5, 9.99, 1e-3, 40.0, 80.0, 15.0],
            strict=True,
        )
    ]
    features = ["user_activity:usual_price_7d", *ON_DEMAND, "item_stats:ctr_24h"]
    for hours in (0, 5, 13):
        when = summary.end + timedelta(hours=hours)
        labels = pd.DataFrame(
            {
                "user_id": [c[0] for c in contexts],
                "item_id": 1,
                "device": [c[1] for c in contexts],
                "price": [c[2] for c in contexts],
                "event_time": when,
            }
        )
        ts = fs.get_training_data(labels, features)
        assert ts.features == [f.replace(":", "__") for f in features]
        assert "on_demand" in ts.metadata and ts.metadata["feature_schema_hash"]
        offline = sorted(arrow_rows(ts), key=lambda r: r["user_id"])
        rows = [
            {"user_id": u, "item_id": 1, "device": d, "price": p} for u, d, p in sorted(contexts)
        ]
        online = fs.get_online_features(rows, features, request_time=when)
        for o_row, off in zip(online.rows, offline, strict=True):
            for name in ts.features:
                assert _same(o_row[name], off[name]), (hours, o_row, name, off[name])
        assert online.rows[0]["request_features__hour_of_day"] == when.hour
        unknown_user = online.rows[-1]
        assert (
            unknown_user["request_features__price_vs_usual"] is None
        )  # no usual price: null both ways
        assert set(ON_DEMAND) <= set(online.missing[-1])


def test_hidden_inputs_are_not_returned(store):
    fs, summary = store
    res = fs.get_online_features(
        {"user_id": 1, "device": "tablet", "price": 10.0},
        ["request_features:device_tablet"],
        request_time=summary.end,
    )
    assert res.features == ["request_features__device_tablet"] and res.rows == [
        {"request_features__device_tablet": 1}
    ]
    labels = pd.DataFrame(
        {"user_id": [1], "device": ["tablet"], "price": [10.0], "event_time": [summary.end]}
    )
    assert fs.get_training_data(
        labels, ["request_features:device_tablet"]
    ).dataset.schema().names == [
        "user_id",
        "device",
        "price",
        "event_time",
        "request_features__device_tablet",
    ]


def test_request_context_errors_are_typed(store):
    fs, summary = store
    with pytest.raises(SchemaError, match="needs request field 'device'"):
        fs.get_online_features({"user_id": 1, "price": 3.0}, ON_DEMAND)
    with pytest.raises(SchemaError, match="'price' must be double"):
        fs.get_online_features({"user_id": 1, "device": "mobile", "price": "cheap"}, ON_DEMAND)
    with pytest.raises(NotFoundError, match="Did you mean 'request_features:hour_of_day'"):
        fs.get_online_features({"user_id": 1}, ["request_features:hour_of_dya"])
    labels = pd.DataFrame({"user_id": [1], "event_time": [summary.end]})
    with pytest.raises(SchemaError, match="device"):
        fs.get_training_data(labels, ON_DEMAND)
