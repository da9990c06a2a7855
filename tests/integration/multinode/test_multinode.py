"""The pipeline's distributed stages on a two-node Ray cluster equal their single-node results.

``cluster_run`` (conftest) runs ``multinode_driver.py`` once: a head and a
worker node on 127.0.0.1, where the PIT join, ``get_training_data``,
materialization, a two-worker Ray Train run and a ``serve deploy`` of the
production config run, each recording the nodes its tasks and actors used.
Each test compares one step with the same step run here, on the test
session's single-node Ray, and checks the work really spread over both nodes.
"""

from __future__ import annotations

from typing import Any

import multinode_steps as steps
import pytest
import redis
from multinode_steps import MULTI, REQUESTS, SINGLE, settings_args
from serving_support import Served

from mlray.config import Settings, load_settings
from mlray.online.embedded import EmbeddedRedis

BOTH = ["node_a", "node_b"]
# The first test waits for the module's fixtures: the served data (when no earlier test made
# it), the single-node references and the cluster run.
pytestmark = pytest.mark.timeout(900)


def step(run: dict[str, Any], name: str) -> Any:
    """The driver's result of one step, or a failure showing the step's traceback there."""
    errors = run.get("errors", {})
    assert name not in errors, f"{name} failed on the cluster:\n{errors[name]}"
    return run[name]


def ran_on_both(run: dict[str, Any], name: str) -> None:
    nodes = run["task_nodes"].get(name, {})
    assert sorted(nodes) == BOTH, f"{name}'s tasks ran on {nodes}, expected both nodes"


@pytest.fixture(scope="module")
def served_settings(served: Served) -> Settings:
    return load_settings(config_file=None, **settings_args(served.settings))


def test_the_cluster_has_two_nodes(cluster_run: dict[str, Any]) -> None:
    assert cluster_run["nodes"] == BOTH


def test_point_in_time_join_across_nodes_equals_single_node(
    cluster_run: dict[str, Any], single_node: dict[str, Any]
) -> None:
    got, want = step(cluster_run, "pit_join"), single_node["pit_join"]
    assert got == want
    assert want["rows"] == 4000 and 0 < want["nulls"] < want["rows"]
    ran_on_both(cluster_run, "pit_join")


def test_get_training_data_across_nodes_equals_single_node(
    cluster_run: dict[str, Any], single_node: dict[str, Any]
) -> None:
    got, want = step(cluster_run, "training_data"), single_node["training_data"]
    assert got == want and want["rows"] > 1000
    ran_on_both(cluster_run, "training_data")


def stored_rows(client: redis.Redis, prefix: str) -> dict[bytes, bytes]:
    """Every feature row (a Redis string) under ``prefix``, keyed without the prefix."""
    rows: dict[bytes, bytes] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        value = client.get(key) if client.type(key) == b"string" else None
        if isinstance(value, bytes):
            rows[key[len(prefix) :]] = value
    return rows


def test_materialization_across_nodes_stores_the_single_node_values(
    cluster_run: dict[str, Any],
    served: Served,
    served_settings: Settings,
    mn_redis: EmbeddedRedis,
) -> None:
    from mlray.store import FeatureStore

    got = step(cluster_run, "materialize")
    # After the cluster's run, so a value expiring by the wall clock meanwhile is gone from both.
    single = steps.online_settings(served_settings, mn_redis.url, SINGLE)
    assert got == steps.materialize_result(single, served.end)
    assert {r["view"] for r in got} == {"user_activity", "item_stats", "item_catalog"}
    assert all(r["written"] == r["entities"] > 0 for r in got)
    client = redis.Redis.from_url(mn_redis.url)
    try:
        multi_rows, single_rows = stored_rows(client, MULTI), stored_rows(client, SINGLE)
    finally:
        client.close()
    assert len(multi_rows) == sum(r["written"] for r in got)
    assert multi_rows == single_rows
    reads = []
    for prefix in (MULTI, SINGLE):
        store = FeatureStore(steps.online_settings(served_settings, mn_redis.url, prefix))
        rows = [{**r["entities"], **r["context"]} for r in REQUESTS]
        got_rows = store.get_online_features(rows, steps.FEATURES, request_time=served.end)
        reads.append((got_rows.rows, got_rows.missing))
        store.close()
    assert reads[0] == reads[1]
    assert reads[0][1] == [[], [], []]  # every feature of every entity found
    ran_on_both(cluster_run, "materialize")


def test_two_worker_training_runs_on_both_nodes_like_on_one(
    cluster_run: dict[str, Any], single_node: dict[str, Any]
) -> None:
    got, want = step(cluster_run, "train"), single_node["train"]
    assert got["worker_nodes"] == BOTH  # one 2-CPU worker fits on each 3-CPU node
    # The data stages are deterministic: the same rows, to the byte.
    assert got["content_hash"] == want["content_hash"] and got["rows"] == want["rows"]
    (g,), (w,) = got["history"], want["history"]
    assert g["world_size"] == w["world_size"] == 2
    assert g["samples"] == w["samples"] == want["rows"]["train"]
    # The same model: rank 0's seeded weights go to both workers, the train slice is shuffled
    # by seed and streamed in order (equal shards), one torch thread each, gradients averaged.
    for k in ("train_loss", "val_loss", "val_auc"):
        assert g[k] == pytest.approx(w[k], rel=1e-6), k
    assert got["test"] == pytest.approx(want["test"], rel=1e-6)
    ran_on_both(cluster_run, "train")


def test_serve_deploy_of_the_production_config_serves_from_both_nodes(
    cluster_run: dict[str, Any],
) -> None:
    got = step(cluster_run, "serve")
    assert got["deploy_rc"] == 0, got.get("deploy_err")
    assert got["health"] == 200
    assert [a["status"] for a in got["answers"]] == [200] * len(REQUESTS)
    assert [a["body"]["request_id"] for a in got["answers"]] == ["mn-0", "mn-1", "mn-2"]
    assert all(a["body"]["model_version"] == "1" for a in got["answers"])
    assert not any(a["body"]["degraded"] for a in got["answers"])
    assert got["model"]["shadow_version"] == "2"
    assert got["model"]["runtime"].startswith("onnxruntime-cpu")
    assert got["ingress_nodes"] == BOTH  # two replicas, at most one per node
    assert len(got["model_nodes"]) == 1 and got["proxy_nodes"] == BOTH


def test_the_adapted_config_keeps_production_apart_from_resources() -> None:
    import yaml

    prod = yaml.safe_load(steps.PRODUCTION.read_text())
    cpu = steps.cpu_production_config(8123, {"data_root": "/d"})
    (p,), (c,) = prod["applications"], cpu["applications"]
    assert c["import_path"] == p["import_path"] and cpu["proxy_location"] == "EveryNode"
    changed = {"model_deployment", "ingress_cpus", "settings", "log"}
    assert {k: v for k, v in c["args"].items() if k not in changed} == {
        k: v for k, v in p["args"].items() if k not in changed
    }
    assert c["args"]["model_deployment"] == {
        **p["args"]["model_deployment"],
        "num_gpus": 0,
        "num_cpus": 0.25,
    }
    assert c["args"]["log"] == {**p["args"]["log"], "table": steps.LOG_TABLE}
    assert cpu["http_options"] == {"host": "127.0.0.1", "port": 8123}
