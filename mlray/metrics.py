"""Binary classification metrics shared by training, evaluation and export: AUC and log loss.

Plain NumPy (no scikit-learn, no torch). One contract everywhere: a slice
with a single class has no ROC curve, so its AUC is NaN (a caller that must
have both classes checks for NaN and says so); tied scores count one half,
through average ranks.
"""

from __future__ import annotations

import numpy as np

from mlray.errors import SchemaError

EPS = 1e-7


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative.

    Computed as the Mann-Whitney U statistic over ranks; tied scores get
    their average rank, so a positive-negative tie counts one half.

    Args:
        y: labels; a value above 0.5 (1, True) is a positive.
        p: scores, one per label.

    Returns:
        The AUC in ``[0, 1]``, or NaN when the labels hold a single class (or none).

    Raises:
        SchemaError: ``y`` and ``p`` differ in length.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise SchemaError(f"AUC needs one score per label: {p.size} scores for {y.size} labels.")
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    starts = np.flatnonzero(np.r_[True, sorted_p[1:] != sorted_p[:-1]])
    ends = np.r_[starts[1:], p.size]
    ranks = np.empty(p.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # 1-based average ranks
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy, with probabilities clipped to ``[EPS, 1 - EPS]``.

    Args:
        y: 0/1 labels.
        p: predicted click probabilities, one per label.

    Returns:
        The mean loss in nats, NaN for an empty slice.

    Raises:
        SchemaError: ``y`` and ``p`` differ in length.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.clip(np.asarray(p, dtype=np.float64).ravel(), EPS, 1 - EPS)
    if y.shape != p.shape:
        raise SchemaError(
            f"Log loss needs one score per label: {p.size} scores for {y.size} labels."
        )
    if y.size == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
