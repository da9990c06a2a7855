"""The monitor's report: every check's figures and alerts, the decisions taken, as JSON and HTML.

:class:`MonitorReport` gathers one :class:`CheckSection` per check (its
status, a one-line summary, its figures, its alerts, or why it was skipped)
and the decisions of the run (promotion, retrain). :func:`write_report`
writes ``report.json`` and a self-contained ``report.html`` (plots embedded,
:mod:`mlray.monitoring.report_render`); :func:`log_to_mlflow` logs both, with
the figures as metrics, to one run in the ``mlray-monitoring`` experiment (as
the shadow report does) and, as artifacts, onto the run of the model version
that served the traffic.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mlray.config import Settings
from mlray.errors import ConfigError
from mlray.monitoring.alerts import Alert, CheckResult, Gauge

EXPERIMENT = "mlray-monitoring"
Status = Literal["ok", "warn", "breach", "skipped", "error"]
# The checks in report order.
CHECKS = ("feature_drift", "score_drift", "performance", "promotion", "freshness", "skew")


@dataclass
class CheckSection:
    """One check's outcome in the report.

    Attributes:
        name: the check (one of :data:`CHECKS`).
        status: ``ok``, ``warn`` (an alert of severity warn), ``breach``, ``skipped``
            (it could not run: no rows, no labels...; ``reason`` says why) or ``error``
            (it failed: ``reason`` holds the error).
        summary: one line of its key figures.
        figures: the result's ``to_dict()``.
        alerts: the result's alerts.
        reason: why it was skipped or failed.
        result: the result object itself (for the plots; not serialized).
    """

    name: str
    status: Status
    summary: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    reason: str | None = None
    result: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, name: str, result: CheckResult, summary: str) -> CheckSection:
        """The section of a check that ran: its status is its worst alert's severity."""
        alerts = list(result.alerts())
        severities = {a.severity for a in alerts}
        status: Status = "breach" if "breach" in severities else "warn" if alerts else "ok"
        return cls(name, status, summary, result.to_dict(), alerts, None, result)

    @classmethod
    def skipped(cls, name: str, reason: str) -> CheckSection:
        return cls(name, "skipped", f"skipped: {reason}", reason=reason)

    @classmethod
    def failed(cls, name: str, error: BaseException) -> CheckSection:
        reason = f"{type(error).__name__}: {error}"
        return cls(name, "error", f"error: {reason}", reason=reason)

    def gauges(self) -> list[Gauge]:
        return list(self.result.gauges()) if self.result is not None else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "summary": self.summary,
            "reason": self.reason,
            "alerts": [a.to_dict() for a in self.alerts],
            "figures": self.figures,
        }


@dataclass
class MonitorReport:
    """All one monitor run found and did (JSON-ready through :meth:`to_dict`).

    Attributes:
        model_name, log_table: what was watched.
        start, end: the window of served traffic, ``start <= request_time < end`` (ISO 8601).
        created_at: when the run started (ISO 8601, UTC).
        dry_run: nothing was promoted or submitted.
        rows: served rows in the window.
        serving_version: the model version that served the latest row (its reference
            distributions are the drift baseline); shadow_version likewise for the shadow.
        champion_version: the version holding the ``champion`` alias when the run started.
        sections: one per check, in :data:`CHECKS` order.
        score_bins: the score distribution, reference vs served, on the reference's bins.
        promoted: the version the promotion gate moved the champion alias to, if any.
        retrain: the retrain decision (:class:`~mlray.monitoring.trigger.RetrainDecision`).
        metrics_exported: Ray metric series set (0 when Ray was not running).
        out_dir, run_id, model_run_id: where the report went (folder, MLflow runs).
    """

    model_name: str
    log_table: str
    start: str
    end: str
    created_at: str
    dry_run: bool = False
    rows: int = 0
    serving_version: str | None = None
    shadow_version: str | None = None
    champion_version: str | None = None
    sections: list[CheckSection] = field(default_factory=list)
    score_bins: dict[str, Any] | None = None
    promoted: str | None = None
    retrain: dict[str, Any] = field(default_factory=dict)
    metrics_exported: int = 0
    out_dir: str | None = None
    run_id: str | None = None
    model_run_id: str | None = None

    def section(self, name: str) -> CheckSection | None:
        return next((s for s in self.sections if s.name == name), None)

    @property
    def alerts(self) -> list[Alert]:
        return [a for s in self.sections for a in s.alerts]

    @property
    def breaches(self) -> list[Alert]:
        return [a for a in self.alerts if a.severity == "breach"]

    @property
    def breached(self) -> bool:
        return bool(self.breaches)

    @property
    def errors(self) -> list[CheckSection]:
        return [s for s in self.sections if s.status == "error"]

    def summary_rows(self) -> list[dict[str, str]]:
        """One row per check (status and key figures), then the promotion and retrain decisions."""
        rows = [{"check": s.name, "status": s.status, "figures": s.summary} for s in self.sections]
        promoted = f"v{self.promoted} is champion now" if self.promoted else "nothing promoted"
        status = "done" if self.promoted else "-"
        rows.append({"check": "promote", "status": status, "figures": promoted})
        action = str(self.retrain.get("action", "-"))
        rows.append({"check": "retrain", "status": action, "figures": retrain_line(self.retrain)})
        return rows

    def gauges(self) -> list[Gauge]:
        """Every check's gauges plus the run's own (breaches per check, rows, retrains)."""
        out = [g for s in self.sections for g in s.gauges()]
        model = {"model": self.model_name}
        out.append(Gauge("mlray_monitor_served_rows", float(self.rows), model))
        for s in self.sections:
            n = sum(a.severity == "breach" for a in s.alerts)
            out.append(Gauge("mlray_monitor_breaches", float(n), model | {"check": s.name}))
        submitted = self.retrain.get("action") == "submitted"
        out.append(Gauge("mlray_monitor_retrain_submitted", float(submitted), model))
        total = self.retrain.get("submissions")
        if total is not None:
            out.append(Gauge("mlray_monitor_retrains_submitted", float(total), model))
        stamp = datetime.fromisoformat(self.created_at).timestamp()
        out.append(Gauge("mlray_monitor_last_run_timestamp_seconds", stamp, model))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN and infinities as None)."""
        body = {
            "model_name": self.model_name,
            "log_table": self.log_table,
            "window": {"start": self.start, "end": self.end},
            "created_at": self.created_at,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "serving_version": self.serving_version,
            "shadow_version": self.shadow_version,
            "champion_version": self.champion_version,
            "breached": self.breached,
            "checks": {s.name: s.to_dict() for s in self.sections},
            "alerts": [a.to_dict() for a in self.alerts],
            "score_bins": self.score_bins,
            "promoted": self.promoted,
            "retrain": self.retrain,
            "metrics_exported": self.metrics_exported,
            "out_dir": self.out_dir,
            "run_id": self.run_id,
            "model_run_id": self.model_run_id,
        }
        return _json_ready(body)


def retrain_line(retrain: dict[str, Any]) -> str:
    """The retrain decision in one line: what was (or would be) submitted where, and why."""
    action, job = retrain.get("action"), retrain.get("job_id")
    triggers = list(retrain.get("triggers") or [])
    why = f"{len(triggers)} breaches: " + ", ".join(triggers[:3])
    why += f" (+{len(triggers) - 3} more)" if len(triggers) > 3 else ""
    address = retrain.get("address") or "(no cluster: set retrain.address)"
    where = f"{retrain.get('entrypoint')!r} to {address}"
    if action == "would_submit":
        return f"dry run: would submit {where}; {why}"
    if action == "submitted":
        return f"submitted job {job}: {where}; {why}"
    if action == "cooldown":
        return f"job {job} of {retrain.get('last_submitted_at')} is within the cooldown; {why}"
    if action == "disabled":
        return f"retrain.enabled is off; {why}"
    return str(retrain.get("reason", ""))


def default_out_dir(settings: Settings, created_at: str) -> Path:
    """``<data_root>/reports/monitor/<YYYYMMDDTHHMMSSZ>``.

    Raises:
        ConfigError: the data root is remote (pass ``out_dir``/``--out``).
    """
    if "://" in settings.data_root:
        raise ConfigError(
            f"The data root {settings.data_root} is remote; set out_dir in the monitor config "
            "(or --out) to a local folder for the report."
        )
    return Path(settings.data_root) / "reports" / "monitor" / stamp(created_at)


def stamp(created_at: str) -> str:
    """``2026-01-02T03:04:05.6+00:00`` -> ``20260102T030405Z``."""
    t = datetime.fromisoformat(created_at).astimezone(UTC)
    return t.strftime("%Y%m%dT%H%M%SZ")


def write_report(report: MonitorReport, out_dir: Path) -> Path:
    """Write ``report.json`` and ``report.html`` into ``out_dir`` (created); return the folder."""
    from mlray.monitoring.report_render import to_html

    out_dir.mkdir(parents=True, exist_ok=True)
    report.out_dir = str(out_dir)
    (out_dir / "report.html").write_text(to_html(report))
    write_json(report, out_dir)
    return out_dir


def write_json(report: MonitorReport, out_dir: Path) -> None:
    (out_dir / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def metric_key(gauge: Gauge) -> str:
    """An MLflow metric key for a gauge: ``feature_psi.user_activity_ctr_7d`` (prefix dropped)."""
    name = gauge.name.removeprefix("mlray_monitor_")
    parts = [name, *(str(gauge.tags[k]) for k in sorted(gauge.tags) if k != "model")]
    return ".".join(re.sub(r"[^\w\-. /]", "_", p) for p in parts)


def log_to_mlflow(settings: Settings, report: MonitorReport, out_dir: Path) -> str:
    """One run in :data:`EXPERIMENT` with the figures as metrics and the report as artifacts;
    the report also goes onto the serving version's run (``monitor/<time>``) when it has one.

    Returns:
        The monitoring run's id (``report.run_id``; ``report.model_run_id`` is set too).

    Raises:
        BackendUnavailable: the tracking store cannot be reached.
    """
    from mlray.registry.tracking import connect, log_metrics

    client, experiment_id = connect(settings, EXPERIMENT)
    tags = {
        "mlray.kind": "monitor",
        "mlray.model_name": report.model_name,
        "mlray.model_version": str(report.serving_version),
        "mlray.shadow_version": str(report.shadow_version),
        "mlray.log_table": report.log_table,
        "mlray.breached": str(report.breached).lower(),
        "mlray.retrain": str(report.retrain.get("action")),
    }
    run = client.create_run(
        experiment_id, run_name=f"monitor-{stamp(report.created_at)}", tags=tags
    )
    run_id = run.info.run_id
    report.run_id = run_id
    report.model_run_id = _model_run_id(client, report)
    write_json(report, out_dir)  # with both run ids
    try:
        client.log_param(run_id, "window", f"{report.start}..{report.end}")
        client.log_param(run_id, "dry_run", report.dry_run)
        log_metrics(client, run_id, {metric_key(g): g.value for g in report.gauges()})
        client.log_artifacts(run_id, str(out_dir), "monitor_report")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    if report.model_run_id:
        client.log_artifacts(
            report.model_run_id, str(out_dir), f"monitor/{stamp(report.created_at)}"
        )
    return run_id


def _model_run_id(client: Any, report: MonitorReport) -> str | None:
    if report.serving_version is None:
        return None
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(report.model_name, report.serving_version)
    except MlflowException:
        return None
    return str(mv.run_id) if mv.run_id else None


def _json_ready(v: Any) -> Any:
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {str(k): _json_ready(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_ready(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return _json_ready(v.item())
    return v
