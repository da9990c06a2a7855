"""Champion/challenger: promote only when the new model beats the champion by the margin."""

from __future__ import annotations

import math

from mlray.registry.champion import CHALLENGER, CHAMPION, PromotionConfig, decide

AUC = PromotionConfig(metric="auc", margin=0.01)


def test_first_model_becomes_champion():
    d = decide({"test_auc": 0.6}, None, AUC)
    assert d.promote and d.alias == CHAMPION and "no champion" in d.reason


def test_beating_by_the_margin_promotes():
    d = decide({"test_auc": 0.80}, {"test_auc": 0.785}, AUC, champion_version="3")
    assert d.promote and d.alias == CHAMPION
    assert d.challenger_score == 0.80 and d.champion_score == 0.785 and d.champion_version == "3"
    assert "beats" in d.reason and "v3" in d.reason


def test_better_but_within_the_margin_is_a_challenger():
    d = decide({"test_auc": 0.79}, {"test_auc": 0.785}, AUC, champion_version="3")
    assert not d.promote and d.alias == CHALLENGER and "does not beat" in d.reason


def test_log_loss_must_go_down():
    cfg = PromotionConfig(metric="log_loss", margin=0.005)
    assert decide({"test_log_loss": 0.20}, {"test_log_loss": 0.21}, cfg, "1").promote
    assert not decide({"test_log_loss": 0.208}, {"test_log_loss": 0.21}, cfg, "1").promote
    assert not decide({"test_log_loss": 0.22}, {"test_log_loss": 0.21}, cfg, "1").promote


def test_undefined_scores_never_promote():
    assert not decide({"test_auc": math.nan}, None, AUC).promote
    d = decide(
        {"test_auc": 0.9}, None, AUC, "2", champion_problem="the test slice lacks features ['x']"
    )
    assert not d.promote and d.alias == CHALLENGER and "lacks features" in d.reason
    assert not decide({"test_auc": 0.9}, {"test_auc": math.nan}, AUC, "2").promote


def test_a_negative_margin_promotes_a_slightly_worse_model():
    assert decide(
        {"test_auc": 0.78}, {"test_auc": 0.785}, PromotionConfig(margin=-0.01), "1"
    ).promote
