"""Freshness, skew audit and replay on real served traffic.

The serving tests' session data (demo features built up to now and
materialized into their Redis, champion v1 and challenger v2 registered,
Serve up) serves a few dozen demo requests through the real app into a log
table of this module's own; the checks then read that log:

* freshness with the online store's own bookkeeping: no view past its limit;
* the skew audit finds no transform skew on the demo's own traffic;
* a request-time transform changed on the offline side (the audit's
  repository) is caught, as transform skew, naming the feature;
* replaying logged predictions whose features were fresh reproduces the
  logged score; with the changed transform it does not.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from serving_support import deploy
from typer.testing import CliRunner

from mlray.cli import app
from mlray.config import Settings
from mlray.features.repository import FeatureRepository
from mlray.monitoring.config import FreshnessConfig, SkewConfig
from mlray.monitoring.freshness import freshness
from mlray.monitoring.replay import replay
from mlray.monitoring.skew import SkewResult, skew_audit
from mlray.offline.predictions import decode_json_columns, read_predictions

TABLE = "monitored"
UNKNOWN_USER = 10_000  # no such demo user: no row online or offline
N_KNOWN = 40


@dataclass
class Traffic:
    settings: Settings
    log: pd.DataFrame  # the decoded log rows
    unknown_ids: list[str]


@pytest.fixture(scope="module")
def traffic(served) -> Iterator[Traffic]:
    """Known and unknown demo users served through the app, logged, the app shut down."""
    from ray import serve

    from mlray.demo.traffic import demo_bodies, send

    url = deploy(
        served,
        name="monitored",
        log={"table": TABLE, "replica_flush_s": 0.1, "commit_interval_s": 0.5},
    )
    try:
        known = send(url, demo_bodies(N_KNOWN, users=150, items=40, seed=21))
        unknown_body = {"entities": {"user_id": UNKNOWN_USER, "item_id": 3}}
        unknown = send(url, [{**unknown_body, "context": {"device": "tablet", "price": 9.5}}] * 2)
    finally:
        serve.delete("monitored")  # graceful: the replica and the committer flush their rows
    assert known.errors == unknown.errors == 0
    log = decode_json_columns(read_predictions(served.settings, TABLE))
    assert len(log) == N_KNOWN + 2
    yield Traffic(served.settings, log, unknown.request_ids)


@pytest.fixture(scope="module")
def audit(traffic: Traffic) -> SkewResult:
    return skew_audit(traffic.settings, traffic.log, SkewConfig(sample=100))


def test_freshness_of_the_served_views(traffic: Traffic) -> None:
    from mlray.store import FeatureStore

    now = datetime.now(UTC)
    # The catalog changes when an item does (hours apart), not hourly like the activity views.
    cfg = FreshnessConfig(limits_s={"item_catalog": 7 * 86_400.0})
    res = freshness(traffic.settings, traffic.log, cfg, now)

    assert [a for a in res.alerts() if a.severity == "breach"] == []
    fs = FeatureStore(traffic.settings)
    try:
        online = {f.view: f for f in fs.online_freshness(now=now)}
    finally:
        fs.close()
    for v in ("user_activity", "item_stats", "item_catalog"):
        assert res.view(v).newest_event_time == online[v].newest_event_time
        assert res.view(v).status == "ok"
        assert res.view(v).lookups == N_KNOWN + 2
    ua = res.view("user_activity")
    # The unknown user's lookups found no row; so did any other the log lists as missing.
    missing = sum(
        any(m.startswith("user_activity:") for m in ms) for ms in traffic.log["missing_features"]
    )
    assert ua.misses == missing >= 2
    assert ua.served_age_s["p50"] <= ua.served_age_s["max"] < 8 * 86_400  # within the TTL


def test_the_demo_serves_without_transform_skew(traffic: Traffic, audit: SkewResult) -> None:
    assert audit.sampled == N_KNOWN + 2
    assert [a for a in audit.alerts() if a.severity == "breach"] == []
    for f in audit.features:
        assert f.compared == N_KNOWN + 2, f.feature
        assert f.mismatches["transform"] == 0 == f.mismatches["ahead"], f.to_dict()
    for v in audit.views:
        assert v.same + v.stale + v.no_row == N_KNOWN + 2 and v.ahead == 0, v
    # The unknown user has no row on either side: defaults, not skew.
    assert {v.view: v.no_row for v in audit.views}["user_activity"] >= 2
    assert set(audit.table_versions) == {"user_activity", "item_stats", "item_catalog"}


def planted_repo() -> FeatureRepository:
    """The demo's definitions, with the request-time ratio computed 1.5 times too large."""
    from mlray.demo import features as demo

    def skewed(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = dict(demo.request_features_transform(inputs))
        out["price_vs_usual"] = out["price_vs_usual"] * 1.5
        return out

    base = FeatureRepository.from_module("mlray.demo.features")
    changed = dataclasses.replace(demo.request_features, transform=skewed)
    return FeatureRepository(
        base.views.values(), base.services.values(), on_demand=[changed], origin="planted"
    )


def test_a_changed_transform_is_caught_and_named(traffic: Traffic) -> None:
    res = skew_audit(traffic.settings, traffic.log, SkewConfig(sample=100), repo=planted_repo())

    breaches = [a for a in res.alerts() if a.severity == "breach"]
    assert [a.subject for a in breaches] == ["request_features:price_vs_usual"]
    assert breaches[0].check == "skew" and "price_vs_usual" in breaches[0].message
    ratio = res.feature("request_features:price_vs_usual")
    served = [f["request_features__price_vs_usual"] for f in traffic.log["features"]]
    present = [v for v in served if v is not None]
    # Every served ratio is recomputed 1.5 times larger: |diff| = ratio / 2.
    assert ratio.mismatches == {"stale": 0, "transform": len(present), "ahead": 0}
    assert ratio.to_dict()["mean_abs_diff"] == pytest.approx(np.mean(present) / 2)
    others = [f for f in res.features if f.feature != "request_features:price_vs_usual"]
    assert all(f.mismatches["transform"] == 0 for f in others)


def test_replaying_fresh_predictions_gives_the_logged_score(traffic: Traffic) -> None:
    # Known users with a usual price (so the request-time ratio is not null).
    with_ratio = [
        f["request_features__price_vs_usual"] is not None for f in traffic.log["features"]
    ]
    # A request served a value materialized after its time is not fresh (replay says so);
    # look at up to five, stop after two fresh ones.
    ids = traffic.log[with_ratio].sort_values("request_time")["request_id"].tolist()[:5]
    fresh = 0
    for rid in ids:
        if fresh == 2:
            break
        r = replay(traffic.settings, rid, TABLE)
        json.dumps(r.to_dict(), allow_nan=False)
        assert r.model_version == "1" and r.score_on_served == pytest.approx(r.score_logged)
        if all(v.fresh for v in r.views):
            fresh += 1
            assert r.equal, r.to_dict()
            assert abs(r.score_recomputed - r.score_logged) <= 1e-5
    assert fresh >= 1

    # The CLI on an unknown user's prediction: no row on either side, defaults, the same score.
    env = {"MLRAY_DATA_ROOT": traffic.settings.data_root, "MLRAY_CONFIG": None, "COLUMNS": "250"}
    got = CliRunner().invoke(app, ["replay", traffic.unknown_ids[0], "--table", TABLE], env=env)
    assert got.exit_code == 0, got.output
    assert "request_features:price_vs_usual" in got.output and "null" in got.output
    assert got.output.strip().endswith("replay: EQUAL")

    # Recomputed with the changed transform, the ratio and so the score differ.
    r = replay(traffic.settings, ids[0], TABLE, repo=planted_repo())
    unequal = [row.feature for row in r.rows if not row.equal]
    assert not r.equal and unequal == ["request_features:price_vs_usual"]
