"""The shadow report's pictures and page: a scatter and a histogram per model pair, as HTML."""

from __future__ import annotations

import html
import math
from typing import Any

from mlray.serving.shadow_report import FIGURES, PairScores, ShadowReport
from mlray.validation.report import png_base64

_PLOT_POINTS = 20_000  # scatter points drawn per pair; the figures use every row


def scatter_png(pair: PairScores, threshold: float) -> str:
    """Shadow against champion score, with the diagonal and both threshold lines, as base64 PNG."""
    from matplotlib.figure import Figure

    step = max(1, pair.champion.size // _PLOT_POINTS)
    c, s = pair.champion[::step], pair.shadow[::step]
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    lo = min(float(c.min()), float(s.min()), threshold, 0.0)
    hi = max(float(c.max()), float(s.max()), threshold, 1e-3)
    ax.scatter(c, s, s=6, alpha=0.4)
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", label="shadow = champion")
    ax.axvline(threshold, color="#cf222e", linestyle=":", label=f"threshold {threshold:g}")
    ax.axhline(threshold, color="#cf222e", linestyle=":")
    ax.set_xlabel(f"champion v{pair.model_version} score")
    ax.set_ylabel(f"shadow v{pair.shadow_version} score")
    ax.set_title(pair.label, fontsize=10)
    ax.legend(loc="upper left")
    return png_base64(fig)


def diff_histogram_png(pair: PairScores) -> str:
    """Histogram of shadow minus champion score, as base64 PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.hist(pair.shadow - pair.champion, bins=50)
    ax.axvline(0.0, color="grey", linestyle="--")
    ax.set_xlabel("shadow score - champion score")
    ax.set_ylabel("rows")
    ax.set_title(pair.label, fontsize=10)
    return png_base64(fig)


def to_html(report: ShadowReport, pairs: list[PairScores]) -> str:
    """A self-contained HTML page: per pair, its figures, the scatter and the differences."""
    window = f"{report.start or 'first row'} to {report.end or 'last row'}"
    parts = [
        f"<html><head><meta charset='utf-8'><title>Shadow report</title>{_STYLE}</head><body>",
        "<h1>Shadow vs champion</h1>",
        f"<p>Log {html.escape(report.table)}; requests from {html.escape(window)}; decision "
        f"threshold {report.threshold:g}; created {html.escape(report.created_at)}.</p>",
    ]
    for figs, pair in zip(report.pairs, pairs, strict=True):
        cells = "".join(f"<tr><td>{k}</td><td>{_fmt(figs[k])}</td></tr>" for k in FIGURES)
        scatter, hist = scatter_png(pair, report.threshold), diff_histogram_png(pair)
        parts += [
            f"<h2>{html.escape(pair.label)}</h2>",
            f"<table><tr><th>figure</th><th>value</th></tr>{cells}</table>",
            f"<img alt='scatter' src='data:image/png;base64,{scatter}'/>",
            f"<img alt='differences' src='data:image/png;base64,{hist}'/>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else html.escape(str(v))


_STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:left}"
    "img{margin:1em 1em 0 0}</style>"
)
