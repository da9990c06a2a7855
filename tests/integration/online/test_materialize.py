"""Materialization on real Ray, Delta and Redis.

Online equals offline, no going back, idempotent, incremental.
"""

from __future__ import annotations

import math
import time
import urllib.request
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest
import ray
import redis
from online_helpers import TS, dump, make_view, repo_of

from mlray.online.redis_target import redis_target
from mlray.store import FeatureStore

SERVICE = "ctr_model_v1"


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def offline_rows(ts, keys) -> list[dict]:
    """The training set as Python values (nulls None, NaN kept), sorted by ``keys``.

    Empty blocks are skipped.
    """
    rows = [
        r for t in ray.get(list(ts.dataset.to_arrow_refs())) if t.num_rows for r in t.to_pylist()
    ]
    return sorted(rows, key=lambda r: tuple(r[k] for k in keys))


@pytest.fixture(scope="module")
def materialized(recent_demo):
    settings, summary = recent_demo
    fs = FeatureStore(settings)
    results = {r.view: r for r in fs.materialize(summary.end)}
    return fs, summary, results


def test_online_equals_offline_point_in_time_join(materialized):
    fs, summary, results = materialized
    users, items = 130, 45  # a few ids past the demo's (120 users, 40 items): missing both ways
    labels = pd.DataFrame(
        {
            "user_id": [i % users for i in range(users)],
            "item_id": [i % items for i in range(users)],
            "event_time": summary.end,
        }
    )
    offline = offline_rows(
        fs.get_training_data(labels, SERVICE, include_feature_times=True), ["user_id", "item_id"]
    )
    rows = [{"user_id": r["user_id"], "item_id": r["item_id"]} for r in offline]
    online = fs.get_online_features(rows, SERVICE, request_time=summary.end)
    assert online.features == [f.replace(":", "__") for f in fs.repo.services[SERVICE].features]
    found = 0
    for k, row in enumerate(online.rows):
        for name in online.features:
            assert same(row[name], offline[k][name]), (rows[k], name, row[name], offline[k][name])
        for view in ("user_activity", "item_stats", "item_catalog"):
            got = online.event_times[view][k]
            assert got == offline[k][f"{view}__event_time"], (rows[k], view)
            found += got is not None
    assert found > 0.8 * 3 * len(rows)
    assert results["user_activity"].entities == results["user_activity"].written > 100
    unknown_item = next(k for k, r in enumerate(rows) if r["item_id"] >= 40)
    assert "item_stats:ctr_24h" in online.missing[unknown_item]
    assert (
        online.rows[unknown_item]["item_catalog__category"] == "unknown"
    )  # the declared default, as offline


def test_rerun_and_backfill_leave_the_store_unchanged(materialized):
    fs, summary, _ = materialized
    target = redis_target(fs.settings)
    client = redis.Redis.from_url(target.url)
    before = dump(client, target.namespace)
    again = {r.view: r for r in fs.materialize(summary.end)}
    assert dump(client, target.namespace) == before  # idempotent
    assert again["user_activity"].written == 0
    assert again["user_activity"].unchanged == again["user_activity"].entities
    backfill = {r.view: r for r in fs.materialize(summary.end - timedelta(days=2))}
    assert backfill["user_activity"].written == 0 and backfill["user_activity"].older > 0
    assert dump(client, target.namespace) == before  # never backwards
    state = fs.online.get_state("user_activity")
    assert state.watermark_us == int(summary.end.timestamp() * 1e6)


def test_incremental_equals_full(recent_demo, redis_url):
    settings, summary = recent_demo
    inc = FeatureStore(settings.model_copy(update={"project": "recent_inc"}))
    mid = summary.end - timedelta(days=1)
    first = {r.view: r for r in inc.materialize_incremental(mid)}
    assert first["user_activity"].since is None and first["user_activity"].entities > 0
    second = {r.view: r for r in inc.materialize_incremental(summary.end)}
    assert second["user_activity"].since == mid
    assert 0 < second["user_activity"].entities <= first["user_activity"].entities
    assert {r.view: r.entities for r in inc.materialize_incremental(summary.end)} == {
        "user_activity": 0,
        "item_stats": 0,
        "item_catalog": 0,
    }  # nothing new past the watermark
    full = FeatureStore(settings.model_copy(update={"project": "recent_full"}))
    full.materialize(summary.end)
    client = redis.Redis.from_url(redis_url)
    ns_inc, ns_full = redis_target(inc.settings).namespace, redis_target(full.settings).namespace
    assert dump(client, ns_inc, strip=True) == dump(client, ns_full, strip=True)


def test_a_correction_wins_online_as_offline(online_settings):
    view = make_view("scores", ttl=timedelta(days=30))
    fs = FeatureStore(online_settings, repo_of(view))
    t = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=5)

    def ingest(rows):
        fs.ingest(
            view,
            pa.table(
                {
                    "user_id": pa.array([r[0] for r in rows], pa.int64()),
                    "event_time": pa.array([r[1] for r in rows], TS),
                    "available_time": pa.array([r[2] for r in rows], TS),
                    "score": [r[3] for r in rows],
                    "count": [1] * len(rows),
                    "label": ["x"] * len(rows),
                }
            ),
        )

    ingest([(1, t, t + pd.Timedelta(minutes=1), 1.0), (2, t, t, 5.0)])
    end = t + pd.Timedelta(hours=2)
    fs.materialize(end.to_pydatetime())
    ingest([(1, t, t + pd.Timedelta(minutes=30), 2.0)])  # same event time, later availability
    res = fs.materialize(end.to_pydatetime())[0]
    assert (res.entities, res.written, res.unchanged) == (2, 1, 1)
    online = fs.get_online_features(
        [{"user_id": 1}, {"user_id": 2}], ["scores:score"], request_time=end
    )
    labels = pd.DataFrame({"user_id": [1, 2], "event_time": end})
    offline = offline_rows(fs.get_training_data(labels, ["scores:score"]), ["user_id"])
    assert (
        [r["scores__score"] for r in online.rows]
        == [r["scores__score"] for r in offline]
        == [2.0, 5.0]
    )
    # Backfilling an older window picks older rows, which the store refuses: it never goes back.
    ingest([(1, t - pd.Timedelta(hours=1), t - pd.Timedelta(hours=1), 9.0)])
    back = fs.materialize((t - pd.Timedelta(minutes=30)).to_pydatetime())[0]
    assert (back.entities, back.written, back.older) == (1, 0, 1)
    assert (
        fs.get_online_features({"user_id": 1}, ["scores:score"], request_time=end).rows[0][
            "scores__score"
        ]
        == 2.0
    )


def test_freshness_is_reported(materialized):
    fs, summary, _ = materialized
    fresh = {f.view: f for f in fs.online_freshness(now=summary.end)}
    ua = fresh["user_activity"]
    assert ua.newest_event_time is not None and ua.newest_event_time < summary.end
    assert ua.lag_s == pytest.approx((summary.end - ua.newest_event_time).total_seconds())
    assert ua.watermark == summary.end and ua.last_applied >= 0
    res = fs.get_online_features(
        {"user_id": 1, "item_id": 1}, ["user_activity:ctr_7d"], request_time=summary.end
    )
    assert res.ages_s()["user_activity"][0] == pytest.approx(
        (summary.end - res.event_times["user_activity"][0]).total_seconds()
    )


def test_freshness_metrics_reach_the_prometheus_endpoint(materialized):
    fs, _, _ = materialized
    fs.online_freshness()  # sets the lag gauge
    fs.get_online_features(
        {"user_id": 1, "item_id": 1}, ["user_activity:ctr_7d", "item_stats:ctr_24h"]
    )
    port = ray._private.worker.global_worker.node.metrics_export_port
    wanted = {"ray_mlray_online_lag_seconds", "ray_mlray_online_value_age_seconds_count"}
    seen: set[str] = set()
    deadline = time.monotonic() + 40  # Ray exports every few seconds
    while seen != wanted and time.monotonic() < deadline:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        seen = {
            name
            for name in wanted
            for line in body.splitlines()
            if line.startswith(name + "{") and 'view="user_activity"' in line
        }
        time.sleep(1)
    assert seen == wanted
