"""Read and training plans, results, request-time features on both paths, CLI parsing (no Ray)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from mlray.cli_support import parse_entity
from mlray.demo import features as demo
from mlray.errors import ConfigError, DefinitionError, NotFoundError, SchemaError
from mlray.features import FeatureRepository, FeatureService, Field, OnDemandFeatureView
from mlray.offline.plan import plan_training_set
from mlray.offline.training_set import ApplyOnDemand
from mlray.online.reader import OnlineFeatures, OnlineReader, build_plan
from mlray.online.redis_target import RedisTarget

REPO = FeatureRepository.from_module("mlray.demo.features")
WHEN = datetime(2026, 5, 1, 21, 30, tzinfo=UTC)


def test_plan_groups_reads_by_view_and_keeps_the_requested_order():
    plan = build_plan(
        REPO, ["item_stats:ctr_24h", "user_activity:ctr_7d", "item_stats:current_price"]
    )
    assert [v.view.name for v in plan.views] == ["item_stats", "user_activity"]
    assert plan.features == [
        "item_stats__ctr_24h",
        "user_activity__ctr_7d",
        "item_stats__current_price",
    ]
    assert plan.order((1, 2, 3)) == (
        1,
        3,
        2,
    )  # read order (view by view) back to the requested order
    service = build_plan(REPO, "ctr_model_v1")
    assert service.order is None and len(service.features) == 14 and len(service.views) == 3


def test_on_demand_sources_are_read_but_not_returned_unless_asked():
    plan = build_plan(REPO, ["request_features:hour_of_day"])
    assert [v.names for v in plan.views] == [("user_activity__usual_price_7d",)]
    assert plan.features == ["request_features__hour_of_day"] and plan.order((12.0, 21)) == (21,)
    both = build_plan(REPO, ["user_activity:usual_price_7d", "request_features:price_vs_usual"])
    assert both.order is None and both.features == [
        "user_activity__usual_price_7d",
        "request_features__price_vs_usual",
    ]


def test_unknown_names_list_close_valid_ones_of_both_kinds():
    with pytest.raises(NotFoundError, match="Did you mean 'request_features:hour_of_day'"):
        REPO.resolve(["request_features:hour_of_dya"])
    with pytest.raises(NotFoundError, match=r"user_activity:ctr_7d.*request_features"):
        REPO.resolve(["user_activity:ctr7d"])
    with pytest.raises(NotFoundError, match="feature service 'nope'"):
        build_plan(REPO, "nope")


def stored_views_with(*on_demand: OnDemandFeatureView, services=()) -> FeatureRepository:
    return FeatureRepository(REPO.views.values(), services, on_demand=on_demand, origin="tests")


def test_on_demand_definitions_are_checked():
    with pytest.raises(DefinitionError, match="already used"):
        stored_views_with(
            OnDemandFeatureView("item_stats", [], [], [Field("x", pa.int64())], lambda i: i)
        )
    with pytest.raises(NotFoundError, match="user_activity:nope"):
        stored_views_with(
            OnDemandFeatureView(
                "odd", [], ["user_activity:nope"], [Field("x", pa.int64())], lambda i: i
            )
        )
    with pytest.raises(NotFoundError, match="request_features:hour_of_day"):
        stored_views_with(
            demo.request_features,
            OnDemandFeatureView(
                "odd", [], ["request_features:hour_of_day"], [Field("x", pa.int64())], lambda i: i
            ),
        )
    with pytest.raises(DefinitionError, match="must look like 'view:feature'"):
        OnDemandFeatureView("odd", [], ["usual_price"], [Field("x", pa.int64())], lambda i: i)
    with pytest.raises(DefinitionError, match="shadow 'request_time'"):
        OnDemandFeatureView(
            "odd", [Field("request_time", pa.int64())], [], [Field("x", pa.int64())], lambda i: i
        )


def context_columns():
    return {
        "request_time": pa.array([WHEN, WHEN.replace(hour=3)], pa.timestamp("us", tz="UTC")),
        "device": pa.array(["tablet", None]),
        "price": pa.array([30.0, 5.0]),
        "user_activity__usual_price_7d": pa.array([20.0, None]),
    }


def test_the_demo_request_features():
    out = {k: v.to_pylist() for k, v in demo.request_features.compute(context_columns()).items()}
    assert out == {
        "hour_of_day": [21, 3],
        "price_vs_usual": [1.5, None],
        "device_mobile": [0, 0],
        "device_desktop": [0, 0],
        "device_tablet": [1, 0],
    }


def test_offline_and_online_paths_give_identical_outputs():
    features = [
        "request_features:price_vs_usual",
        "request_features:hour_of_day",
        "request_features:device_tablet",
    ]
    cols = context_columns()
    labels = pa.table(
        {
            "user_id": [1, 2],
            "event_time": cols["request_time"],
            "device": cols["device"],
            "price": cols["price"],
        }
    )
    training = plan_training_set(REPO, features, labels.schema)
    assert [j.view.name for j in training.joins] == ["user_activity"]
    assert training.hidden == ("user_activity__usual_price_7d",)
    joined = labels.append_column(
        "user_activity__usual_price_7d", cols["user_activity__usual_price_7d"]
    )
    offline = ApplyOnDemand(training)(joined)
    reader = OnlineReader(store=None, repo=REPO, project="t")  # the store is not reached below
    plan = reader.plan(features)
    for i, when in enumerate((WHEN, WHEN.replace(hour=3))):
        request = [
            {
                "user_id": i + 1,
                "device": labels["device"][i].as_py(),
                "price": labels["price"][i].as_py(),
            }
        ]
        stored = [(joined["user_activity__usual_price_7d"][i].as_py(),)]
        online = plan.order(
            reader._on_demand(plan, request, stored, int(when.timestamp() * 1e6))[0]
        )
        assert online == tuple(offline.column(f.replace(":", "__"))[i].as_py() for f in features)
    assert offline.column_names == [
        "user_id",
        "event_time",
        "device",
        "price",
        *[f.replace(":", "__") for f in features],
    ]


def test_training_plan_checks_the_labels_before_any_work():
    schema = pa.schema(
        [("user_id", pa.int64()), ("item_id", pa.int64()), ("event_time", pa.timestamp("us"))]
    )
    with pytest.raises(SchemaError, match="without a time zone"):
        plan_training_set(REPO, ["user_activity:ctr_7d"], schema)
    aware = schema.set(2, pa.field("event_time", pa.timestamp("ms", tz="Europe/Paris")))
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['device'\]"):
        plan_training_set(
            REPO, ["request_features:device_mobile"], aware.append(pa.field("price", pa.float64()))
        )
    with pytest.raises(SchemaError, match="item_id.*string"):
        plan_training_set(
            REPO, ["item_stats:ctr_24h"], aware.set(1, pa.field("item_id", pa.string()))
        )
    with pytest.raises(SchemaError, match="full_feature_names=True"):
        plan_training_set(
            REPO, ["user_activity:ctr_24h", "item_stats:ctr_24h"], aware, full_feature_names=False
        )
    plan = plan_training_set(REPO, "ctr_model_v1", aware, include_feature_times=True)
    assert [j.view.name for j in plan.joins] == ["user_activity", "item_stats", "item_catalog"]
    assert plan.joins[0].event_time_as == "user_activity__event_time"
    assert plan.fields["item_catalog__category"].dtype == pa.string()
    assert plan.feature_schema_hash == REPO.schema_hash(
        ["user_activity", "item_stats", "item_catalog"]
    )


def test_services_may_list_request_time_features():
    svc = FeatureService("with_context", ("user_activity:ctr_7d", "request_features:hour_of_day"))
    repo = stored_views_with(demo.request_features, services=[svc])
    assert [str(r) for r in repo.resolve("with_context")] == list(svc.features)
    assert repo.field("request_features:hour_of_day").le == 23
    assert repo.field("user_activity:ctr_7d").dtype == pa.float64()
    assert build_plan(repo, "with_context").features == [
        "user_activity__ctr_7d",
        "request_features__hour_of_day",
    ]
    with pytest.raises(NotFoundError, match="hour_of_dya"):
        repo.field("request_features:hour_of_dya")
    bad = FeatureService("bad", ("request_features:nope",))
    with pytest.raises(NotFoundError, match="request_features:nope"):
        stored_views_with(demo.request_features, services=[bad])


def test_broken_transforms_and_inputs_are_typed_errors():
    def make(fn):
        return OnDemandFeatureView(
            "odd", [Field("price", pa.float64())], [], [Field("x", pa.float64())], fn
        )

    cols = {
        "request_time": pa.array([WHEN], pa.timestamp("us", tz="UTC")),
        "price": pa.array([1.0]),
    }
    with pytest.raises(DefinitionError, match="returned no 'x'"):
        make(lambda i: {}).compute(cols)
    with pytest.raises(DefinitionError, match=r"shape \(2,\)"):
        make(lambda i: {"x": np.zeros(2)}).compute(cols)
    with pytest.raises(DefinitionError, match="raised ZeroDivisionError"):
        make(lambda i: {"x": 1 / 0}).compute(cols)
    with pytest.raises(SchemaError, match="needs input 'price'"):
        make(lambda i: {"x": i["price"]}).compute({"request_time": cols["request_time"]})
    with pytest.raises(SchemaError, match="cannot be cast"):
        make(lambda i: {"x": i["price"]}).compute({**cols, "price": pa.array(["cheap"])})


def test_results_as_rows_columns_and_missing():
    plan = build_plan(REPO, ["user_activity:ctr_7d", "item_stats:ctr_24h"])
    res = OnlineFeatures(
        plan.features,
        [(0.1, 0.2), (0.3, None)],
        {"user_activity": [5_000_000, 1_000_000], "item_stats": [5_000_000, None]},
        6_000_000,
        plan.missing,
    )
    assert res.rows == [
        {"user_activity__ctr_7d": 0.1, "item_stats__ctr_24h": 0.2},
        {"user_activity__ctr_7d": 0.3, "item_stats__ctr_24h": None},
    ]
    assert res.to_dict() == {
        "user_activity__ctr_7d": [0.1, 0.3],
        "item_stats__ctr_24h": [0.2, None],
    }
    assert res.missing == [[], ["item_stats:ctr_24h"]]
    assert res.ages_s() == {"user_activity": [1.0, 5.0], "item_stats": [1.0, None]}
    assert res.event_times["item_stats"][0] == datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)
    empty = OnlineFeatures(
        plan.features, [], {"user_activity": [], "item_stats": []}, 0, plan.missing
    )
    assert (
        empty.to_dict() == {"user_activity__ctr_7d": [], "item_stats__ctr_24h": []}
        and empty.missing == []
    )


def test_cli_entity_parsing():
    assert parse_entity(["user_id=7", "device=mobile", "price=12.5", "code=007x"]) == {
        "user_id": 7,
        "device": "mobile",
        "price": 12.5,
        "code": "007x",
    }
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_entity(["user_id"])


def test_target_hides_the_password_and_takes_a_longer_write_timeout():
    t = RedisTarget(
        "rediss://user:s3cret@host:6380/0", "mlray:demo:", timeout_s=0.5, write_timeout_s=20
    )
    assert t.display_url == "rediss://user:***@host:6380/0" and t.for_writes().timeout_s == 20


def test_key_prefix_may_not_hold_a_hash_tag():
    from mlray.config import load_settings

    with pytest.raises(ConfigError, match="key_prefix"):
        load_settings(config_file=None, redis={"key_prefix": "a{b}"})
