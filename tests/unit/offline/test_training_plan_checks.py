"""Training-set plans: the output schema known up front, null checks before Ray, one naming rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from mlray.config import load_settings
from mlray.errors import SchemaError
from mlray.features import FeatureRepository
from mlray.offline.plan import plan_training_set
from mlray.offline.training_set import get_training_data
from mlray.online.reader import OnlineFeatures, build_plan

REPO = FeatureRepository.from_module("mlray.demo.features")
T = pa.timestamp("us", tz="UTC")
ASKED = ["item_catalog:category", "request_features:price_vs_usual", "user_activity:ctr_7d"]


def labels(n: int = 3, null_time: int = 0, null_key: int = 0) -> pa.Table:
    times = [datetime(2026, 1, 2, h, tzinfo=UTC) for h in range(n)]
    return pa.table(
        {
            "user_id": pa.array([None] * null_key + list(range(n))[null_key:], pa.int64()),
            "item_id": pa.array(range(n), pa.int32()),
            "event_time": pa.array([None] * null_time + times[null_time:], T),
            "device": ["mobile"] * n,
            "price": [1.0] * n,
        }
    )


def test_the_plan_knows_the_output_schema_and_the_columns_that_may_not_be_null():
    ns = pa.timestamp("ns", tz="Europe/Paris")
    schema = labels().schema.set(2, pa.field("event_time", ns))
    plan = plan_training_set(REPO, ASKED, schema)
    assert plan.not_null == ["event_time", "item_id", "user_id"]
    out = plan.output_schema()
    assert out.names == [
        "user_id",
        "item_id",
        "event_time",
        "device",
        "price",
        "item_catalog__category",
        "user_activity__ctr_7d",
        "request_features__price_vs_usual",
    ]  # joined only as an input, user_activity__usual_price_7d is dropped
    assert out.field("event_time").type == T
    assert out.field("item_catalog__category").type == pa.string()
    assert out.field("request_features__price_vs_usual").type == pa.float64()


@pytest.mark.parametrize(
    "convert",
    [lambda t: t, lambda t: t.to_pandas(integer_object_nulls=True)],
    ids=["arrow", "pandas"],
)
@pytest.mark.parametrize(
    "kwargs,column", [({"null_time": 1}, "event_time"), ({"null_key": 2}, "user_id")]
)
def test_null_label_times_and_keys_are_refused_before_ray(tmp_path, convert, kwargs, column):
    settings = load_settings(config_file=None, data_root=str(tmp_path / "data"))
    with pytest.raises(SchemaError, match=rf"labels column '{column}' has \d null value\(s\)"):
        get_training_data(settings, REPO, convert(labels(4, **kwargs)), ASKED)  # no ray.init


def test_missing_refs_can_be_spelled_like_the_result_columns():
    plan = build_plan(REPO, ["user_activity:ctr_7d", "request_features:hour_of_day"])
    res = OnlineFeatures(plan.features, [(0.1, 3)], {"user_activity": [None]}, 0, plan.missing)
    assert res.features == ["user_activity__ctr_7d", "request_features__hour_of_day"]
    assert res.missing == [["user_activity:ctr_7d", "request_features:hour_of_day"]]
    assert res.missing_columns == [["user_activity__ctr_7d", "request_features__hour_of_day"]]
    assert all(c in res.rows[0] for c in res.missing_columns[0])
