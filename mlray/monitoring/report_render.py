"""The monitor report as one self-contained HTML page: checks, alerts, decisions and plots.

The plots are drawn from the report's JSON figures (so a ``report.json`` could
be drawn again): PSI per feature with the warn and act lines (the validation
report's chart), the score distribution reference vs served, AUC per day per
model version, the calibration curve, and each feature view's lag against its
limit. Each is an embedded PNG; a plot without data is left out.
"""

from __future__ import annotations

import html
import json
from typing import Any

from mlray.monitoring.report import CheckSection, MonitorReport
from mlray.validation.report import ValidationReport, png_base64

COLORS = {
    "ok": "#1a7f37",
    "warn": "#9a6700",
    "breach": "#cf222e",
    "skipped": "#57606a",
    "error": "#cf222e",
}


def to_html(report: MonitorReport) -> str:
    """The page: header, checks table, alerts, decisions, then a section per plot."""
    verdict = "BREACH" if report.breached else "OK"
    color = COLORS["breach" if report.breached else "ok"]
    parts = [
        f"<html><head><meta charset='utf-8'><title>Monitor report</title>{_STYLE}</head><body>",
        f"<h1>Monitor {html.escape(report.model_name)}: "
        f"<span style='color:{color}'>{verdict}</span></h1>",
        f"<p>Log {html.escape(report.log_table)}, requests from {html.escape(report.start)} to "
        f"{html.escape(report.end)}: {report.rows:,} rows. Serving v{report.serving_version}, "
        f"shadow v{report.shadow_version}, champion alias v{report.champion_version}. Created "
        f"{html.escape(report.created_at)}{' (dry run)' if report.dry_run else ''}.</p>",
        _checks_table(report.sections),
        _alerts_table(report),
        _decisions(report),
    ]
    for title, png in plots(report):
        parts.append(
            f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
            f"src='data:image/png;base64,{png}'/>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def plots(report: MonitorReport) -> list[tuple[str, str]]:
    """``(title, base64 PNG)`` of every plot the report has data for."""
    out = []
    drift = _figures(report, "feature_drift")
    psi = {k: v for k, v in (drift.get("psi") or {}).items() if v is not None}
    if psi:
        chart = ValidationReport(
            checks=[],
            rows=int(drift.get("rows", 0)),
            psi=psi,
            psi_warn=float(drift["warn"]),
            psi_fail=float(drift["act"]),
        )
        out.append(("PSI per feature vs the training reference", chart.psi_png()))
    if report.score_bins:
        out.append(("Score distribution: reference vs served", score_png(report.score_bins)))
    perf = _figures(report, "performance")
    if any(d.get("auc") is not None for d in perf.get("daily", [])):
        out.append(("Delayed-label AUC per day and model version", auc_png(perf["daily"])))
    if any(b.get("n") for f in perf.get("window", []) for b in f.get("calibration", [])):
        out.append(("Calibration: mean score vs observed click rate", calibration_png(perf)))
    views = _figures(report, "freshness").get("views", [])
    if any(v.get("lag_s") is not None for v in views):
        out.append(("Feature view lag vs limit", freshness_png(views)))
    return out


def score_png(bins: dict[str, Any]) -> str:
    """Bars of the reference's and the served scores' shares on the reference's bins."""
    import numpy as np

    fig, ax = _figure(8, 4)
    x = np.arange(len(bins["bins"]))
    ax.bar(x - 0.2, bins["reference"], 0.4, label=f"reference ({bins['reference_rows']:,} rows)")
    ax.bar(x + 0.2, bins["served"], 0.4, label=f"served ({bins['served_rows']:,} rows)")
    ax.set_xticks(x, bins["bins"], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.legend()
    return png_base64(fig)


def auc_png(daily: list[dict[str, Any]]) -> str:
    """AUC per day, one line per ``(version, role)``, labels counted in the legend."""
    fig, ax = _figure(8, 4)
    series: dict[str, list[tuple[str, float, int]]] = {}
    for d in daily:
        if d.get("auc") is not None:
            key = f"v{d['model_version']} {d['role']}"
            series.setdefault(key, []).append((d["day"], d["auc"], d["n_labels"]))
    for key, points in sorted(series.items()):
        points.sort()
        n = sum(p[2] for p in points)
        ax.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            marker="o",
            label=f"{key} ({n:,} labels)",
        )
    ax.set_ylabel("AUC")
    ax.legend()
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    return png_base64(fig)


def calibration_png(perf: dict[str, Any]) -> str:
    """Observed click rate against mean score per bin, one curve per ``(version, role)``."""
    fig, ax = _figure(5, 5)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for f in perf.get("window", []):
        pts = [
            (b["mean_score"], b["observed_rate"]) for b in f.get("calibration", []) if b.get("n")
        ]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"v{f['model_version']} {f['role']}")
    ax.set_xlabel("mean predicted score")
    ax.set_ylabel("observed click rate")
    ax.legend(loc="upper left")
    return png_base64(fig)


def freshness_png(views: list[dict[str, Any]]) -> str:
    """Each view's lag (hours), coloured past its limit, with the limit marked."""
    shown = [v for v in views if v.get("lag_s") is not None]
    fig, ax = _figure(8, 0.4 * len(shown) + 1.5)
    names = [v["view"] for v in shown]
    lags = [v["lag_s"] / 3600 for v in shown]
    colors = [COLORS["breach"] if v["lag_s"] > v["limit_s"] else COLORS["ok"] for v in shown]
    ax.barh(names, lags, color=colors)
    ax.scatter(
        [v["limit_s"] / 3600 for v in shown], names, marker="|", s=400, color="black", label="limit"
    )
    ax.set_xlabel("hours since the newest materialized event")
    ax.legend(loc="best")
    return png_base64(fig)


def _figure(w: float, h: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    return fig, fig.add_subplot()


def _figures(report: MonitorReport, name: str) -> dict[str, Any]:
    s = report.section(name)
    return s.figures if s is not None else {}


def _checks_table(sections: list[CheckSection]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td style='color:{COLORS[s.status]}'><b>{s.status}"
        f"</b></td><td>{html.escape(s.summary)}</td></tr>"
        for s in sections
    )
    head = _row("th", "check", "status", "summary")
    return f"<h2>Checks</h2><table>{head}{rows}</table>"


def _alerts_table(report: MonitorReport) -> str:
    if not report.alerts:
        return "<h2>Alerts</h2><p>None.</p>"
    rows = "".join(
        f"<tr><td>{a.check}</td><td>{html.escape(a.subject)}</td>"
        f"<td style='color:{COLORS[a.severity]}'>{a.severity}</td><td>{a.value:.4g}</td>"
        f"<td>{a.limit:.4g}</td><td>{html.escape(a.message)}</td></tr>"
        for a in report.alerts
    )
    head = _row("th", "check", "subject", "severity", "value", "limit", "message")
    return f"<h2>Alerts</h2><table>{head}{rows}</table>"


def _row(tag: str, *cells: str) -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def _decisions(report: MonitorReport) -> str:
    retrain = html.escape(json.dumps(report.retrain, indent=1, default=str))
    promoted = f"v{report.promoted}" if report.promoted else "nothing"
    return (
        f"<h2>Decisions</h2><p>Promoted: {promoted}. Retrain: "
        f"<b>{html.escape(str(report.retrain.get('action')))}</b>.</p><pre>{retrain}</pre>"
    )


_STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:left}"
    "img{margin:1em 1em 0 0}pre{font-size:12px;background:#f6f8fa;padding:8px}</style>"
)
