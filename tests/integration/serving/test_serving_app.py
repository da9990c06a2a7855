"""The serving app over real HTTP: scores equal the offline path's, bad input is a 4xx.

Every row is logged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import deltalake
import numpy as np
import pytest
import requests
from serving_support import MODEL, Served, deploy

from mlray.registry.download import download_version
from mlray.registry.tracking import registry_client
from mlray.runtimes import load_runtime
from mlray.runtimes.encoding import encode_frame
from mlray.store import FeatureStore

KNOWN = {"entities": {"user_id": 3, "item_id": 7}, "context": {"device": "mobile", "price": 19.9}}


@pytest.fixture(scope="module")
def app(served: Served) -> Iterator[str]:
    from ray import serve

    url = deploy(served, log={"replica_flush_s": 0.1, "commit_interval_s": 0.5})
    yield url
    serve.delete("mlray")


def post(url: str, path: str, body: object, **kw: object) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, timeout=10, **kw)  # type: ignore[arg-type]


def test_a_prediction_equals_the_champion_on_the_feature_stores_online_read(
    app: str, served: Served, tmp_path
) -> None:
    got = post(app, "/predict", KNOWN, headers={"X-Request-ID": "abc-1"}).json()
    assert got["request_id"] == "abc-1" and got["model_version"] == "1"
    assert got["missing_features"] == [] and got["degraded"] is False
    champion = download_version(registry_client(served.settings), MODEL, tmp_path, alias="champion")
    fs = FeatureStore(served.settings)
    row = {**KNOWN["entities"], **KNOWN["context"]}
    online = fs.get_online_features(row, champion.spec.feature_refs)
    fs.close()
    expected = load_runtime(champion.path).predict(encode_frame(champion.spec, online.rows))
    assert got["score"] == pytest.approx(float(expected[0]), abs=1e-6)


def test_an_unknown_entity_is_served_with_defaults_and_listed(app: str) -> None:
    body = {"entities": {"user_id": 10**12, "item_id": 7}, "context": KNOWN["context"]}
    got = post(app, "/predict", body).json()
    assert 0 < got["score"] < 1
    assert got["missing_features"] and all(
        f.startswith(("user_activity:", "request_features:")) for f in got["missing_features"]
    )


def test_a_batch_answers_in_order_each_with_its_own_id(app: str) -> None:
    reqs = [
        {"entities": {"user_id": u, "item_id": 7}, "context": KNOWN["context"]} for u in (3, 4, 5)
    ]
    batch = post(app, "/predict/batch", {"requests": reqs}).json()["predictions"]
    singles = [post(app, "/predict", r).json() for r in reqs]
    assert [p["score"] for p in batch] == pytest.approx([p["score"] for p in singles], abs=1e-6)
    assert len({p["request_id"] for p in batch}) == 3


def test_the_batch_limit_is_advertised_and_answered_413(app: str) -> None:
    schema = requests.get(f"{app}/openapi.json", timeout=5).json()
    batch = schema["components"]["schemas"]["BatchRequest"]["properties"]["requests"]
    assert batch["maxItems"] == 256
    r = post(app, "/predict/batch", {"requests": [KNOWN] * 257})
    assert r.status_code == 413 and "at most 256" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"entities": {"user_id": "x", "item_id": 7}, "context": KNOWN["context"]}, "user_id"),
        ({"entities": {"item_id": 7}, "context": KNOWN["context"]}, "user_id"),
        ({"entities": KNOWN["entities"], "context": {**KNOWN["context"], "colour": 1}}, "colour"),
        ({"entities": KNOWN["entities"], "context": {"device": "mobile"}}, "price"),
        ({"entities": {"user_id": 2**70, "item_id": 7}, "context": KNOWN["context"]}, "user_id"),
        (
            {**KNOWN, "context": {**KNOWN["context"], "request_time": "2026-01-01T00:00"}},
            "request_time",
        ),
    ],
)
def test_bad_fields_are_422_naming_the_field(app: str, body: dict, where: str) -> None:
    r = post(app, "/predict", body)
    assert r.status_code == 422
    assert where in json.dumps(r.json()["detail"])


def test_malformed_json_is_422_and_an_oversized_body_413(app: str) -> None:
    r = requests.post(
        f"{app}/predict",
        data=b'{"entities": ',
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert r.status_code == 422
    r = requests.post(
        f"{app}/predict",
        data=b"x" * 2_000_000,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert r.status_code == 413


def test_health_and_model_routes(app: str) -> None:
    health = requests.get(f"{app}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "features": "ok", "model": "ok", "logger": "ok"}
    info = requests.get(f"{app}/model", timeout=5).json()
    assert info["model_version"] == "1" and info["shadow_version"] == "2"
    assert info["runtime"].startswith("onnxruntime-cpu")


def test_every_prediction_is_one_log_row_after_shutdown(served: Served) -> None:
    from ray import serve

    url = deploy(served, name="logged", log={"replica_flush_s": 5, "commit_interval_s": 30})
    ids = [post(url, "/predict", KNOWN).json()["request_id"] for _ in range(7)]
    reqs = [KNOWN] * 5
    ids += [
        p["request_id"]
        for p in post(url, "/predict/batch", {"requests": reqs}).json()["predictions"]
    ]
    serve.delete("logged")  # graceful: the replica and the committer flush what they hold
    table = deltalake.DeltaTable(served.settings.table_uri("predictions", "predictions"))
    logged = table.to_pyarrow_table().to_pandas()
    mine = logged[logged["request_id"].isin(ids)]
    assert sorted(mine["request_id"]) == sorted(ids) and len(mine) == 12
    assert set(mine["route"]) == {"/predict", "/predict/batch"}
    assert (mine["model_version"] == "1").all() and (mine["shadow_version"] == "2").all()
    assert mine["shadow_score"].between(0, 1).all() and not mine["degraded"].any()
    first = mine.iloc[0]
    assert json.loads(first["entities"]) == KNOWN["entities"]
    assert json.loads(first["context"]) == KNOWN["context"]
    features = json.loads(first["features"])
    assert "user_activity__ctr_7d" in features and np.isfinite(features["user_activity__ctr_7d"])
