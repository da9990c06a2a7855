"""Evaluation on the test slice: AUC, log loss, calibration, and the two plots MLflow keeps.

AUC and log loss come from :mod:`mlray.metrics` (shared with the export
stage's INT8 gate); the calibration metrics here are plain NumPy too. They
are what the training loop, the champion comparison and the tests all use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray.data

from mlray.errors import ValidationFailed
from mlray.metrics import log_loss, roc_auc
from mlray.runtimes.encoding import encode_frame, label_array
from mlray.runtimes.model_spec import ModelSpec


def calibration_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability table over equal-count score bins.

    Args:
        y: 0/1 labels.
        p: scores.
        bins: how many bins (fewer when there are fewer rows).

    Returns:
        Per bin, lowest scores first: ``mean_score``, ``click_rate`` and ``rows``.
    """
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="mergesort")
    out = []
    for chunk in np.array_split(order, min(bins, p.size)):
        if chunk.size:
            out.append(
                {
                    "mean_score": float(p[chunk].mean()),
                    "click_rate": float(y[chunk].mean()),
                    "rows": int(chunk.size),
                }
            )
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |observed rate - mean score| over the reliability bins.

    Args:
        y: 0/1 labels.
        p: scores.
        bins: reliability bins (see :func:`calibration_bins`).

    Returns:
        The ECE, 0.0 for an empty slice.
    """
    table = calibration_bins(y, p, bins)
    total = sum(b["rows"] for b in table)
    return (
        float(sum(b["rows"] * abs(b["click_rate"] - b["mean_score"]) for b in table) / total)
        if total
        else 0.0
    )


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The test-slice metrics every model version records.

    Args:
        y: 0/1 labels.
        p: scores.

    Returns:
        ``auc`` (NaN with one class), ``log_loss``, ``ece``, ``rows``, ``click_rate``,
        ``mean_score``.
    """
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    return {
        "auc": roc_auc(y, p),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p),
        "rows": float(y.size),
        "click_rate": float(y.mean()) if y.size else float("nan"),
        "mean_score": float(p.mean()) if p.size else float("nan"),
    }


def reliability_plot(
    y: np.ndarray, p: np.ndarray, path: str | Path, title: str = "Reliability"
) -> Path:
    """Observed click rate against mean score per bin, with the diagonal; written as PNG."""
    from matplotlib.figure import Figure

    table = calibration_bins(y, p, 10)
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    top = max([b["mean_score"] for b in table] + [b["click_rate"] for b in table] + [0.01]) * 1.1
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(
        [b["mean_score"] for b in table],
        [b["click_rate"] for b in table],
        marker="o",
        label="model",
    )
    ax.set_xlabel("mean predicted click probability")
    ax.set_ylabel("observed click rate")
    ax.set_title(f"{title} (ECE {expected_calibration_error(y, p):.4f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)


def score_histogram(y: np.ndarray, p: np.ndarray, path: str | Path, title: str = "Scores") -> Path:
    """Histograms of the scores of clicked and not-clicked impressions; written as PNG."""
    from matplotlib.figure import Figure

    y, p = np.asarray(y), np.asarray(p)
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    # A list: matplotlib's stubs type bins as a Sequence[float], which an ndarray is not.
    bins = np.linspace(0, max(float(p.max()) if p.size else 1.0, 1e-3), 40).tolist()
    ax.hist(p[y < 0.5], bins=bins, alpha=0.6, density=True, label="not clicked")
    ax.hist(p[y >= 0.5], bins=bins, alpha=0.6, density=True, label="clicked")
    ax.set_xlabel("predicted click probability")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return Path(path)


def _score_batch(
    batch: pa.Table, spec: dict[str, Any], state: dict[str, Any]
) -> dict[str, np.ndarray]:
    import torch

    from mlray.training.model import build_model

    model_spec = ModelSpec.from_dict(spec)
    model = build_model(model_spec, state)
    with torch.no_grad():
        p = model(torch.from_numpy(encode_frame(model_spec, batch))).numpy()
    return {
        "p": p.astype(np.float32),
        "y": label_array(batch.column(model_spec.label), model_spec.label),
    }


def score_dataset(
    ds: ray.data.Dataset, spec: ModelSpec | dict[str, Any], state: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a model over a raw, feature-named dataset, scored where the blocks live.

    The rows are encoded with the model's own spec
    (:func:`~mlray.runtimes.encoding.encode_frame`), so a champion trained
    with other vocabularies is scored correctly on the same rows.

    Args:
        ds: the rows, with the model's feature columns and label.
        spec: the model's spec (or its :meth:`~mlray.runtimes.model_spec.ModelSpec.to_dict`).
        state: the model's ``state_dict``.

    Returns:
        ``(labels, scores)`` as NumPy arrays.

    Raises:
        ValidationFailed: the dataset lacks a feature the model reads.
    """
    model_spec = spec if isinstance(spec, ModelSpec) else ModelSpec.from_dict(dict(spec))
    missing = [c for c in model_spec.feature_names if c not in ds.schema().names]
    if missing:
        raise ValidationFailed(
            f"The test slice lacks features {missing} that the model reads; "
            "it cannot be scored on this data."
        )
    scored = ds.map_batches(
        # Ray types fn as a one-argument callable; fn_kwargs supplies spec and state.
        _score_batch,  # type: ignore[arg-type]
        fn_kwargs={"spec": model_spec.to_dict(), "state": state},
        batch_format="pyarrow",
        batch_size=None,
    ).materialize()
    table = pa.concat_tables(ray.get(list(scored.to_arrow_refs())))
    return table.column("y").to_numpy(), table.column("p").to_numpy()
