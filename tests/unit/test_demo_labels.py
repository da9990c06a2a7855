"""``mlray demo labels``: the generator's click model applied to logged requests, landing late."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable
from typer.testing import CliRunner

from mlray.cli import app
from mlray.config import load_settings
from mlray.demo.clickmodel import DEVICES, HOUR_US, click_probability, make_world
from mlray.demo.generate import generate_clickstream
from mlray.demo.served_labels import SCHEMA, _demo_window, label_served, write_served_labels
from mlray.errors import ConfigError
from mlray.features.times import to_us
from mlray.metrics import roc_auc
from mlray.offline.predictions import predictions_uri
from mlray.serving.prediction_log import DeltaLogWriter, LogRow

SEED, USERS, ITEMS, N = 3, 60, 25, 3000
START = datetime(2026, 1, 1, 5, tzinfo=UTC)  # not midnight: the model's hours count from here
T0 = START + timedelta(days=2)  # requests over the 2 hours after the data's window


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    settings = load_settings(None, data_root=str(root / "data"))
    generate_clickstream(
        settings.raw_root, users=USERS, items=ITEMS, days=2, seed=SEED, start=START, progress=False
    )
    rnd = np.random.default_rng(0)
    rows = [
        LogRow(
            request_id=f"q{i}",
            request_time_us=to_us(T0) + int(rnd.integers(0, 2 * HOUR_US)),
            route="/predict",
            model_name="ctr_model",
            entities={"user_id": int(rnd.integers(USERS)), "item_id": int(rnd.integers(ITEMS))},
            # Prices from far below to far above users' usual levels: click chances spread out.
            context={"device": DEVICES[i % 3], "price": round(float(np.exp(rnd.uniform(0, 6))), 2)},
            features={},
            feature_event_times={},
            missing_features=[],
            score=0.1,
            model_version="1",
            latency_ms=1.0,
            degraded=False,
        )
        for i in range(N)
    ]
    rows[0].entities["user_id"] = USERS  # an unknown user
    del rows[1].context["price"]  # no price shown
    rows.append(rows[5])  # a request id logged twice is labelled once
    DeltaLogWriter(predictions_uri(settings)).append(rows)
    return settings, root


def _labels(settings, out="served_labels") -> pd.DataFrame:
    return DeltaTable(settings.table_uri("raw", out)).to_pandas().set_index("request_id")


def test_labels_land_late_once_each_and_deterministically(demo):
    settings, _ = demo
    kw = dict(delay_s=(60, 600), seed=SEED, users=USERS)
    mid = T0 + timedelta(hours=1)
    first = label_served(settings, now=mid, **kw)
    assert 0 < first.written < N - 2 and first.skipped == 2
    assert first.written + first.pending + first.skipped == N
    assert label_served(settings, now=mid, **kw).written == 0  # idempotent
    end = T0 + timedelta(hours=3)
    assert write_served_labels(settings, now=end, **kw) == first.pending
    labels = _labels(settings)
    assert DeltaTable(settings.table_uri("raw", "served_labels")).schema().to_arrow().names == (
        SCHEMA.names
    )
    assert len(labels) == N - 2 and labels.index.is_unique
    delay = (labels["label_time"] - labels["request_time"]).dt.total_seconds()
    assert delay.between(60, 600).all() and delay.std() > 100
    assert (labels["label_time"] <= mid).sum() == first.written
    # One run with all labels landed writes exactly the same labels.
    again = label_served(settings, out="once", now=end, overwrite=True, **kw)
    assert again.written == N - 2
    pd.testing.assert_frame_equal(_labels(settings, "once").loc[labels.index], labels)
    other = label_served(settings, out="seed4", now=end, **{**kw, "seed": 4})
    assert other.written == N - 2
    assert (_labels(settings, "seed4").loc[labels.index, "clicked"] != labels["clicked"]).any()


def test_labels_follow_the_generators_click_model(demo):
    settings, _ = demo
    # The generator's window start (its hours count from it) and item count, from its catalog.
    assert _demo_window(settings) == (to_us(START), ITEMS)
    end = T0 + timedelta(hours=3)
    label_served(settings, out="model", now=end, seed=SEED, users=USERS, overwrite=True)
    labels = _labels(settings, "model")
    log = DeltaTable(predictions_uri(settings)).to_pandas().drop_duplicates("request_id")
    log = log.set_index("request_id").loc[labels.index]
    ctx = log["context"].map(json.loads)
    hour = ((log["request_time"] - pd.Timestamp(START)) // pd.Timedelta(hours=1)) % 24
    args = (
        labels["user_id"].to_numpy(),
        labels["item_id"].to_numpy(),
        hour.to_numpy(),
        np.array([DEVICES.index(c["device"]) for c in ctx]),
        np.array([c["price"] for c in ctx]),
    )
    p = click_probability(make_world(USERS, ITEMS, SEED, 1.0), *args)
    y = labels["clicked"].to_numpy()
    # Clicks are Bernoulli(p) given the model: their count is within 4 standard deviations
    # of sum(p) (a true model fails this about once in 16,000 seeds), and they rank by p.
    assert abs(y.sum() - p.sum()) <= 4 * math.sqrt((p * (1 - p)).sum())
    assert 0.1 < p.mean() < 0.9 and roc_auc(y, p) > 0.8
    # Another seed's users and items explain the same clicks worse.
    q = click_probability(make_world(USERS, ITEMS, SEED + 1, 1.0), *args)

    def loglik(prob: np.ndarray) -> float:
        return float(np.sum(np.where(y == 1, np.log(prob), np.log(1 - prob))))

    assert loglik(p) > loglik(q) + 20


def test_bad_arguments_fail_before_any_work(tmp_path):
    settings = load_settings(None, data_root=str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="0 <= min <= max"):
        write_served_labels(settings, delay_s=(10, 5))
    env = {"MLRAY_DATA_ROOT": str(tmp_path / "none"), "COLUMNS": "200"}
    r = CliRunner().invoke(
        app, ["demo", "labels", "--delay-min", "10", "--delay-max", "5"], env=env
    )
    assert r.exit_code == 2 and "0 <= min <= max" in r.output
    r = CliRunner().invoke(app, ["demo", "labels", "--out", "../x"], env=env)
    assert r.exit_code == 2 and "must be a table name" in r.output
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("users", [USERS - 1, 2 * USERS])
def test_the_users_must_be_the_generators(demo, users):
    settings, _ = demo
    with pytest.raises(ConfigError, match=f"--users {users}: pass the --users"):
        write_served_labels(settings, seed=SEED, users=users)


def test_cli_labels_the_log(demo):
    settings, root = demo
    env = {"MLRAY_DATA_ROOT": settings.data_root, "COLUMNS": "200"}
    args = ["--out", "cli", "--seed", str(SEED), "--users", str(USERS), "--delay-max", "600"]
    as_of = (T0 + timedelta(hours=3)).isoformat()
    r = CliRunner().invoke(app, ["demo", "labels", *args, "--as-of", as_of], env=env)
    assert r.exit_code == 0, r.output
    assert f"{N - 2}" in r.output and "next: mlray monitor" in r.output
    assert len(_labels(settings, "cli")) == N - 2
