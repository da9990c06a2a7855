"""The shadow promotion gate both ways, and the alias it moves in a real MLflow registry."""

from __future__ import annotations

import pandas as pd
import pytest

from mlray.config import load_settings
from mlray.monitoring.config import PromotionConfig
from mlray.monitoring.promotion import GateDecision, apply_promotion, promotion_gate

Y = [1, 0, 1, 0, 1, 0]
CHAMPION = [0.6, 0.5, 0.4, 0.45, 0.7, 0.3]  # AUC 7/9: the positive .4 beats only .3
CHALLENGER = [0.65, 0.45, 0.5, 0.4, 0.75, 0.35]  # AUC 1; mean |diff| = .35 / 6
GAIN, DISAGREEMENT = 1 - 7 / 9, 0.35 / 6


def _joined(champion=CHAMPION, challenger=CHALLENGER) -> pd.DataFrame:
    n = len(Y)
    rows = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "request_time": pd.date_range("2026-01-02", periods=n, freq="min", tz="UTC"),
            "model_version": "3",
            "score": champion,
            "shadow_version": "4",
            "shadow_score": challenger,
            "label": Y,
        }
    )
    # Not judged: rows without a shadow score, and an older champion/shadow pair.
    others = pd.DataFrame(
        {
            "request_id": ["x1", "x2", "x3"],
            "request_time": pd.to_datetime(
                ["2026-01-02T01:00Z"] * 2 + ["2026-01-01T00:00Z"], utc=True
            ),
            "model_version": ["3", "3", "2"],
            "score": [0.99, 0.98, 0.9],
            "shadow_version": [None, None, "3"],
            "shadow_score": [None, None, 0.1],
            "label": [0, 0, 1],
        }
    )
    return pd.concat([rows, others], ignore_index=True)


def _cfg(**kw) -> PromotionConfig:
    return PromotionConfig(**{"min_labels": 6, "auc_margin": 0.2, "max_disagreement": 0.06, **kw})


def test_a_better_challenger_is_ready():
    d = promotion_gate(_joined(), _cfg())
    assert d.ready, d.reason
    assert (d.champion_version, d.challenger_version, d.n_labels) == ("3", "4", 6)
    assert d.champion_auc == pytest.approx(7 / 9) and d.challenger_auc == 1.0
    assert d.auc_gain == pytest.approx(GAIN) and d.disagreement == pytest.approx(DISAGREEMENT)
    (alert,) = d.alerts()
    assert (alert.check, alert.severity, alert.subject) == ("promotion", "warn", "v4")
    assert "mlray promote 4" in alert.message and "+0.2222" in alert.message
    gauges = {g.name: g.value for g in d.gauges()}
    assert gauges["mlray_monitor_promotion_ready"] == 1.0
    assert gauges["mlray_monitor_shadow_auc_gain"] == pytest.approx(GAIN)
    assert d.to_dict()["auc_margin"] == 0.2
    # A figure equal to its limit passes.
    assert promotion_gate(_joined(), _cfg(auc_margin=GAIN, max_disagreement=DISAGREEMENT)).ready


def test_a_worse_challenger_is_not():
    d = promotion_gate(_joined(champion=CHALLENGER, challenger=CHAMPION), _cfg())
    assert not d.ready and d.alerts() == []
    assert d.auc_gain == pytest.approx(-GAIN)
    assert d.reason == (
        "challenger v4 AUC 0.7778 - champion v3 AUC 1.0000 = -0.2222, below "
        "promotion.auc_margin 0.2"
    )
    assert {g.name: g.value for g in d.gauges()}["mlray_monitor_promotion_ready"] == 0.0


def test_too_few_labels_or_too_much_disagreement():
    few = promotion_gate(_joined(), _cfg(min_labels=7))
    assert not few.ready
    assert few.reason == "6 labelled requests scored by both, fewer than promotion.min_labels 7"
    far = promotion_gate(_joined(), _cfg(max_disagreement=0.05))
    assert not far.ready
    assert far.reason == (
        "mean |challenger - champion| score 0.0583 above promotion.max_disagreement 0.05"
    )
    both = promotion_gate(_joined(), _cfg(min_labels=7, auc_margin=0.3))
    assert both.reason.count("; ") == 1 and "below promotion.auc_margin 0.3" in both.reason


def test_no_shadow_scores_and_one_class():
    joined = _joined()
    none = promotion_gate(joined.assign(shadow_score=None), _cfg())
    assert not none.ready and none.challenger_version is None and none.gauges() == []
    assert none.reason == "no labelled request in the window was scored by a shadow"
    one = promotion_gate(joined.assign(label=1), _cfg())
    assert not one.ready and "single class" in one.reason and one.challenger_auc is None


@pytest.fixture
def registry(tmp_path):
    from mlray.registry.tracking import registry_client

    settings = load_settings(None, data_root=str(tmp_path))
    client = registry_client(settings)
    client.create_registered_model("ctr_model")
    for _ in range(4):
        client.create_model_version("ctr_model", source=str(tmp_path / "model"))
    client.set_registered_model_alias("ctr_model", "champion", "3")
    return settings, client


def test_apply_promotion_moves_the_champion_alias(registry):
    settings, client = registry
    ready = promotion_gate(_joined(), _cfg())

    def champion() -> str:
        return str(client.get_model_version_by_alias("ctr_model", "champion").version)

    assert apply_promotion(settings, "ctr_model", ready, auto_promote=False) is None
    not_ready = promotion_gate(_joined(), _cfg(min_labels=7))
    assert apply_promotion(settings, "ctr_model", not_ready, auto_promote=True) is None
    assert champion() == "3"
    assert apply_promotion(settings, "ctr_model", ready, auto_promote=True) == "4"
    assert champion() == "4"
    # Judged against v3, but the champion has moved since: nothing moves.
    stale = GateDecision(**{**ready.to_dict(), "challenger_version": "1"})
    assert apply_promotion(settings, "ctr_model", stale, auto_promote=True) is None
    assert champion() == "4"
