"""The validation report: which checks ran, which failed, PSI per feature, as data and as HTML.

The HTML page is self-contained (the PSI chart is an embedded PNG), so it
can be opened straight from the MLflow UI's artifact view.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlray.errors import ValidationFailed

Status = Literal["pass", "warn", "fail"]
_COLORS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}


@dataclass
class CheckResult:
    """One check: its name, outcome and a sentence saying what was found."""

    name: str
    status: Status
    detail: str


@dataclass
class ValidationReport:
    """All that validation found, JSON-serializable (it travels in :class:`ValidationFailed`)."""

    checks: list[CheckResult]
    rows: int
    psi: dict[str, float] = field(default_factory=dict)
    null_rates: dict[str, float] = field(default_factory=dict)
    failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: list[dict[str, str]] = field(default_factory=list)
    reference: str | None = None
    psi_warn: float = 0.1
    psi_fail: float = 0.25

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "warn"]

    def summary(self) -> str:
        """One line: the failed checks (or that all passed), with their details."""
        if not self.failed:
            return (
                f"all {len(self.checks)} checks passed ({len(self.warnings)} warnings) "
                f"on {self.rows:,} rows"
            )
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failed)

    def raise_if_failed(self) -> None:
        """Raise :class:`ValidationFailed` (carrying this report as a dict) when a check failed."""
        if self.failed:
            names = ", ".join(c.name for c in self.failed)
            raise ValidationFailed(
                f"Training data validation failed ({names}): {self.summary()}. Nothing was "
                "trained or registered; the champion is unchanged.",
                self.to_dict(),
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> ValidationReport:
        body = dict(body)
        body["checks"] = [CheckResult(**c) for c in body.get("checks", [])]
        return cls(**body)

    def to_html(self) -> str:
        """A self-contained HTML page: verdict, checks table, PSI chart and table, schema."""
        verdict = "PASSED" if self.passed else "FAILED"
        reference = html.escape(self.reference or "none (first run)")
        color = _COLORS["pass" if self.passed else "fail"]
        rows = "".join(
            f"<tr><td>{html.escape(c.name)}</td><td style='color:{_COLORS[c.status]}'><b>{c.status}"
            f"</b></td><td>{html.escape(c.detail)}</td></tr>"
            for c in self.checks
        )
        parts = [
            "<html><head><meta charset='utf-8'><title>Training data validation</title>"
            f"{_STYLE}</head><body>",
            f"<h1>Training data validation: <span style='color:{color}'>{verdict}</span></h1>",
            (
                f"<p>{self.rows:,} rows; {len(self.checks)} checks, {len(self.failed)} failed, "
                f"{len(self.warnings)} warnings. Reference: {reference}.</p>"
            ),
            "<h2>Checks</h2><table><tr><th>check</th><th>status</th><th>detail</th></tr>"
            f"{rows}</table>",
        ]
        if self.psi:
            parts.append(
                "<h2>Distribution shift (PSI)</h2>"
                f"<img alt='PSI per feature' src='data:image/png;base64,{self.psi_png()}'/>"
            )
            parts.append(
                "<table><tr><th>feature</th><th>PSI</th><th>null rate</th></tr>"
                + "".join(
                    f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td>"
                    f"<td>{self.null_rates.get(k, 0):.2%}</td></tr>"
                    for k, v in sorted(self.psi.items(), key=lambda kv: -kv[1])
                )
                + "</table>"
            )
        else:
            parts.append(
                "<h2>Distribution shift (PSI)</h2>"
                "<p>No reference distributions: nothing to compare.</p>"
            )
        if self.schema:
            parts.append(
                "<h2>Schema</h2><table><tr><th>column</th><th>type</th><th>nullable</th><th>checks</th></tr>"
                + "".join(
                    f"<tr><td>{html.escape(r['column'])}</td><td>{html.escape(r['type'])}</td>"
                    f"<td>{r['nullable']}</td><td>{html.escape(r['checks'])}</td></tr>"
                    for r in self.schema
                )
                + "</table>"
            )
        parts.append("</body></html>")
        return "\n".join(parts)

    def psi_png(self) -> str:
        """The PSI bar chart (thresholds drawn) as base64 PNG."""
        from matplotlib.figure import Figure

        names = sorted(self.psi, key=lambda k: self.psi[k])
        values = [self.psi[k] for k in names]
        colors = [
            _COLORS["fail"]
            if v > self.psi_fail
            else _COLORS["warn"]
            if v > self.psi_warn
            else _COLORS["pass"]
            for v in values
        ]
        fig = Figure(figsize=(8, 0.3 * len(names) + 1.2))
        ax = fig.add_subplot()
        ax.barh(names, values, color=colors)
        ax.axvline(
            self.psi_warn, color=_COLORS["warn"], linestyle="--", label=f"warn {self.psi_warn}"
        )
        ax.axvline(
            self.psi_fail, color=_COLORS["fail"], linestyle="--", label=f"fail {self.psi_fail}"
        )
        ax.set_xlabel("PSI vs reference")
        ax.legend(loc="lower right")
        ax.tick_params(axis="y", labelsize=7)
        return png_base64(fig)


def png_base64(fig: Any) -> str:
    """A matplotlib figure as base64 PNG (90 dpi, tight layout), for a self-contained HTML page."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


_STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:left}</style>"
)
