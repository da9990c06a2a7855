"""mlray.metrics: AUC and log loss against hand-computed values and the pairwise definition."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlray.errors import SchemaError
from mlray.metrics import EPS, log_loss, roc_auc


def pairwise_auc(y, p) -> float:
    pos = [s for s, t in zip(p, y, strict=True) if t]
    neg = [s for s, t in zip(p, y, strict=True) if not t]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_by_hand():
    # Pairs (positive, negative): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, 0.1), (0.8, 0.4) wins.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0


def test_a_tie_between_a_positive_and_a_negative_counts_one_half():
    # Positives 0.5, 0.9; negatives 0.5, 0.2: 0.5 (the tie) + 1 + 1 + 1 over 4 pairs.
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == 0.875
    assert roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5
    # Ties among positives only change nothing: 3 positives at 0.7 all beat the negative.
    assert roc_auc([1, 1, 1, 0], [0.7, 0.7, 0.7, 0.1]) == 1.0


def test_a_single_class_slice_has_no_auc():
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))
    assert math.isnan(roc_auc([0, 0, 0], [0.2, 0.3, 0.1]))
    assert math.isnan(roc_auc([], []))


def test_labels_may_be_booleans_or_integers_and_lengths_must_agree():
    p = [0.1, 0.4, 0.35, 0.8]
    for y in ([False, False, True, True], np.array([0, 0, 1, 1], np.int8), [0.0, 0.0, 1.0, 1.0]):
        assert roc_auc(y, p) == 0.75
    with pytest.raises(SchemaError, match="one score per label"):
        roc_auc([0, 1], [0.2])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.1, 0.2, 0.5, 0.7, 0.9])),
        min_size=2,
        max_size=40,
    )
)
def test_auc_equals_the_pairwise_definition_with_ties(pairs):
    y = np.array([a for a, _ in pairs], float)
    p = np.array([b for _, b in pairs])
    if y.min() == y.max():
        assert np.isnan(roc_auc(y, p))
    else:
        assert roc_auc(y, p) == pytest.approx(pairwise_auc(y, p))


def test_log_loss_by_hand():
    # -(ln 0.8 + ln(1 - 0.4)) / 2
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(0.3669845875, abs=1e-9)
    assert log_loss([1, 0, 0, 1], [0.9, 0.1, 0.2, 0.6]) == pytest.approx(
        -np.mean(np.log([0.9, 0.9, 0.8, 0.6]))
    )


def test_log_loss_clips_certain_mistakes_and_is_nan_when_empty():
    assert log_loss([0], [1.0]) == pytest.approx(-math.log(EPS), rel=1e-6)
    assert math.isfinite(log_loss([1], [0.0]))
    assert math.isnan(log_loss([], []))
    with pytest.raises(SchemaError, match="one score per label"):
        log_loss([0, 1], [0.2])
