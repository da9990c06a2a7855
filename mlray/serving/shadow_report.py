"""The shadow report: how far the shadow's scores are from the champion's on served traffic.

Per model pair ``(model_name, model_version, shadow_version)`` of the prediction
log's rows that carry a shadow score and were not degraded: score differences,
rank and linear correlation, the share of decisions that flip at a threshold.
Written as JSON and a self-contained HTML page, and logged to one MLflow run in
``mlray-monitoring``. The log is read with deltalake and pyarrow, no Ray; the
time window and row filters are pushed into the scan (``day`` partitions pruned).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlray.config import Settings
from mlray.errors import ConfigError, NotFoundError

EXPERIMENT = "mlray-monitoring"
PAIR_KEYS = ("model_name", "model_version", "shadow_version")
FIGURES: tuple[str, ...] = (
    "rows",
    "mean_abs_diff",
    "max_abs_diff",
    "spearman",
    "pearson",
    "flip_share",
)
FIGURES += ("champion_mean", "shadow_mean")
_COLUMNS = ["request_time", *PAIR_KEYS, "score", "shadow_score"]


@dataclass
class PairScores:
    """The champion's and the shadow's scores of one model pair, in request order."""

    model_name: str
    model_version: str
    shadow_version: str
    champion: np.ndarray
    shadow: np.ndarray

    def keys(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in PAIR_KEYS}

    @property
    def label(self) -> str:
        return f"{self.model_name} v{self.model_version} vs shadow v{self.shadow_version}"


@dataclass
class ShadowReport:
    """The report's figures, one dict per pair (oldest pair first), JSON-serializable."""

    table: str
    start: str | None
    end: str | None
    threshold: float
    created_at: str
    pairs: list[dict[str, Any]]
    out_dir: str | None = None
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The report with NaN written as None (JSON has no NaN)."""
        body = asdict(self)
        body["pairs"] = [{k: _finite_or_none(v) for k, v in p.items()} for p in self.pairs]
        return body


def read_shadow_rows(
    uri: str,
    storage_options: dict[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pa.Table:
    """The log's rows with a shadow score, not degraded, with ``start <= request_time < end``.

    Args:
        uri: the prediction log table.
        storage_options: deltalake storage options.
        start: first request time (inclusive); None = from the first row.
        end: end of the window (exclusive); None = to the last row.

    Returns:
        The request time, the pair's keys, ``score`` and ``shadow_score``.

    Raises:
        NotFoundError: the table does not exist.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(uri, storage_options=storage_options or None)
    except TableNotFoundError as e:
        raise NotFoundError(
            f"Prediction log {uri} does not exist; serve some traffic with a shadow first "
            "(mlray serve --shadow ...)."
        ) from e
    return dt.to_pyarrow_table(columns=_COLUMNS, filters=_row_filter(start, end))


def _row_filter(start: datetime | None, end: datetime | None) -> pc.Expression:
    expr = pc.field("shadow_score").is_valid() & pc.field("shadow_version").is_valid()
    expr = expr & ~pc.field("degraded")
    t, ts = pc.field("request_time"), pa.timestamp("us", tz="UTC")
    # The day bounds prune partitions; the time bounds are exact.
    if start is not None:
        expr = expr & (pc.field("day") >= _day(start)) & (t >= pa.scalar(start, type=ts))
    if end is not None:
        expr = expr & (pc.field("day") <= _day(end)) & (t < pa.scalar(end, type=ts))
    return expr


def split_pairs(rows: pa.Table) -> list[PairScores]:
    """The rows per model pair, pairs ordered by their last request (oldest first)."""
    last = rows.group_by(list(PAIR_KEYS)).aggregate([("request_time", "max")])
    keys = sorted(
        last.to_pylist(), key=lambda r: (r["request_time_max"], *(r[k] for k in PAIR_KEYS))
    )
    out = []
    for key in keys:
        mask = functools.reduce(pc.and_, [pc.equal(rows[k], key[k]) for k in PAIR_KEYS])
        pair = rows.filter(mask).sort_by("request_time")
        out.append(
            PairScores(
                key["model_name"],
                key["model_version"],
                key["shadow_version"],
                champion=pair["score"].to_numpy().astype(np.float64),
                shadow=pair["shadow_score"].to_numpy().astype(np.float64),
            )
        )
    return out


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing the mean of their ranks: ``[5, 1, 5]`` -> ``[2.5, 1, 2.5]``."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    # Runs of equal values: each gets the mean of the positions it spans.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN with fewer than 2 values or a constant side."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(da @ da) * float(db @ db))
    return float(da @ db) / denom if denom > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (ties get average ranks); NaN as for :func:`pearson`."""
    return pearson(average_ranks(a), average_ranks(b))


def pair_figures(champion: np.ndarray, shadow: np.ndarray, threshold: float) -> dict[str, float]:
    """The figures of one pair.

    Args:
        champion: the champion's scores.
        shadow: the shadow's scores for the same requests.
        threshold: a decision is ``score >= threshold``.

    Returns:
        The :data:`FIGURES`: ``rows``, ``mean_abs_diff``, ``max_abs_diff``, ``spearman``,
        ``pearson``, ``flip_share`` (share of rows whose decision differs), ``champion_mean``
        and ``shadow_mean``; NaN where undefined (no rows, or a constant side).
    """
    c, s = np.asarray(champion, dtype=np.float64), np.asarray(shadow, dtype=np.float64)
    if c.size == 0:
        return {"rows": 0, **dict.fromkeys(FIGURES[1:], float("nan"))}
    diff = np.abs(s - c)
    return {
        "rows": int(c.size),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_diff": float(diff.max()),
        "spearman": spearman(c, s),
        "pearson": pearson(c, s),
        "flip_share": float(np.mean((c >= threshold) != (s >= threshold))),
        "champion_mean": float(c.mean()),
        "shadow_mean": float(s.mean()),
    }


def build_report(
    pairs: list[PairScores],
    table: str,
    threshold: float,
    start: datetime | None = None,
    end: datetime | None = None,
) -> ShadowReport:
    """The figures of every pair as a :class:`ShadowReport` (nothing written yet)."""
    return ShadowReport(
        table=table,
        start=start.isoformat() if start else None,
        end=end.isoformat() if end else None,
        threshold=threshold,
        created_at=datetime.now(UTC).isoformat(),
        pairs=[p.keys() | pair_figures(p.champion, p.shadow, threshold) for p in pairs],
    )


def log_to_mlflow(settings: Settings, report: ShadowReport, out_dir: Path) -> str:
    """One run in :data:`EXPERIMENT`: pair ``i``'s figures as ``shadow.*`` metrics at step ``i``.

    The latest pair is the last step, so the run's headline metrics are its figures;
    tags ``mlray.pair.<i>`` name each pair's versions. Returns the run id.
    """
    from mlray.registry.tracking import connect, log_metrics

    client, experiment_id = connect(settings, EXPERIMENT)
    tags = {f"mlray.pair.{i}": _pair_tag(p) for i, p in enumerate(report.pairs)}
    latest = report.pairs[-1]
    tags |= {f"mlray.{k}": str(latest[k]) for k in PAIR_KEYS} | {"mlray.log_table": report.table}
    run = client.create_run(
        experiment_id, run_name=f"shadow-report-{_stamp(report.created_at)}", tags=tags
    )
    run_id = run.info.run_id
    try:
        client.log_param(run_id, "threshold", report.threshold)
        client.log_param(run_id, "window", f"{report.start or ''}..{report.end or ''}")
        for i, figs in enumerate(report.pairs):
            log_metrics(client, run_id, {f"shadow.{k}": figs[k] for k in FIGURES}, step=i)
        client.log_artifacts(run_id, str(out_dir), "shadow_report")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id


def shadow_report(
    settings: Settings,
    *,
    table: str = "predictions",
    start: datetime | None = None,
    end: datetime | None = None,
    threshold: float = 0.5,
    out: str | Path | None = None,
    log_mlflow: bool = True,
) -> ShadowReport:
    """Read the log, compute the figures, write ``report.json`` and ``report.html``, log to MLflow.

    Args:
        settings: where the log and MLflow are.
        table: the log table under ``<data_root>/predictions/``.
        start: first request time (inclusive); None = all.
        end: last request time (exclusive); None = all.
        threshold: decision threshold for ``flip_share``.
        out: report folder; default ``<data_root>/reports/shadow/<timestamp>/``.
        log_mlflow: also log the run (the default).

    Returns:
        The report, with ``out_dir`` and ``run_id`` filled in.

    Raises:
        NotFoundError: no such table, or no shadow-scored rows in the window.
        ConfigError: ``start`` is not before ``end``, or no ``out`` for a remote data root.
    """
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"--start {start.isoformat()} must be before --end {end.isoformat()}.")
    uri = settings.table_uri("predictions", table)
    rows = read_shadow_rows(uri, settings.storage_options, start, end)
    if rows.num_rows == 0:
        raise NotFoundError(
            f"Prediction log {uri} has no rows with a shadow score (not degraded) in the window; "
            "serve some traffic with a shadow first (mlray serve --shadow ...)."
        )
    pairs = split_pairs(rows)
    report = build_report(pairs, uri, threshold, start, end)
    out_dir = Path(out) if out else _default_out(settings, report.created_at)
    out_dir.mkdir(parents=True, exist_ok=True)
    from mlray.serving.shadow_render import to_html  # it imports this module's types

    (out_dir / "report.html").write_text(to_html(report, pairs))
    report.out_dir = str(out_dir)
    _write_json(report, out_dir)
    if log_mlflow:
        report.run_id = log_to_mlflow(settings, report, out_dir)
        _write_json(report, out_dir)  # again, with the run id
    return report


def _write_json(report: ShadowReport, out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def _stamp(created_at: str) -> str:
    """``2026-01-02T03:04:05.6+00:00`` -> ``20260102T030405Z``."""
    return created_at[:19].replace(":", "").replace("-", "") + "Z"


def _default_out(settings: Settings, created_at: str) -> Path:
    if "://" in settings.data_root:
        raise ConfigError(
            f"The data root {settings.data_root} is remote; pass --out with a local folder."
        )
    return Path(settings.data_root) / "reports" / "shadow" / _stamp(created_at)


def _day(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d")


def _pair_tag(figs: dict[str, Any]) -> str:
    return f"{figs['model_name']}: v{figs['model_version']} vs shadow v{figs['shadow_version']}"


def _finite_or_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v
