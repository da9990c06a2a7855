"""One monitor run: every check over a window of served traffic, then the report and the actions.

Reads the window ``[end - window_hours, end)`` of the prediction log once and,
in this order: feature and score drift against the serving version's
registered reference, delayed-label performance and the shadow promotion gate
(when labels have landed), the freshness of every feature view, and the skew
audit (on Ray, started only when the log has rows). A check that cannot run
(no rows, no labels, no reference...) is reported as skipped with the reason;
one that fails unexpectedly is reported as an error, and the others still run.
Then: the promotion gate's verdict is applied (``promotion.auto_promote``), a
breach of a check in ``retrain.on`` submits the training pipeline
(:mod:`mlray.monitoring.trigger`), the figures go out as Ray metrics
(:mod:`mlray.monitoring.ray_metrics`) and the report is written and logged to
MLflow (:mod:`mlray.monitoring.report`). ``dry_run`` promotes and submits nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from mlray.config import Settings, load_settings
from mlray.errors import ConfigError, MlrayError, NotFoundError
from mlray.monitoring import summaries
from mlray.monitoring.config import MonitorConfig
from mlray.monitoring.drift import feature_drift, score_drift, seasonal_features, served_counts
from mlray.monitoring.freshness import freshness
from mlray.monitoring.performance import join_labels, load_labels, performance, registered_test_auc
from mlray.monitoring.promotion import apply_promotion, promotion_gate
from mlray.monitoring.ray_metrics import export_gauges
from mlray.monitoring.report import (
    CheckSection,
    MonitorReport,
    default_out_dir,
    log_to_mlflow,
    write_report,
)
from mlray.monitoring.served import served_frame
from mlray.monitoring.trigger import maybe_retrain
from mlray.validation.psi import Distribution, Reference

log = logging.getLogger(__name__)


def settings_for(cfg: MonitorConfig, settings_file: str | Path | None = None) -> Settings:
    """The settings a monitor config names: ``settings_file`` (or the given one) plus overrides."""
    return load_settings(settings_file or cfg.settings_file, **cfg.settings)


def window(cfg: MonitorConfig, now: datetime) -> tuple[datetime, datetime]:
    """``(end - window_hours, end)``; ``end`` is ``cfg.end`` (ISO 8601 with a zone) or ``now``.

    Raises:
        ConfigError: ``end`` is not ISO 8601 or has no time zone.
    """
    end = now
    if cfg.end:
        try:
            end = datetime.fromisoformat(cfg.end.replace("Z", "+00:00"))
        except ValueError as e:
            raise ConfigError(
                f"Monitor config end {cfg.end!r} is not an ISO-8601 time; write e.g. "
                "2026-01-01T00:00:00Z."
            ) from e
        if end.tzinfo is None:
            raise ConfigError(f"Monitor config end {cfg.end!r} has no time zone; append Z.")
    return end - timedelta(hours=cfg.window_hours), end


def run_monitor(
    cfg: MonitorConfig,
    settings: Settings,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    log_mlflow: bool = True,
) -> MonitorReport:
    """Run every check over the window, act on the results, write and log the report.

    Args:
        cfg: the monitor config (window, thresholds, actions).
        settings: where the log, labels, features, registry and Ray are.
        dry_run: report what would be promoted or submitted; change nothing.
        now: the time of the run (default: now); the window ends here unless ``cfg.end``.
        log_mlflow: also log the report to MLflow (the default).

    Returns:
        The report, written to ``cfg.out_dir`` (default ``<data_root>/reports/monitor/<time>``).

    Raises:
        ConfigError: a bad ``end``, or a remote data root without ``out_dir``.
        BackendUnavailable: the registry cannot be read, or the retrain job could not be
            submitted (the report is written first, with ``retrain.action`` ``failed``).
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ConfigError(f"run_monitor: now {now.isoformat()} has no time zone; pass UTC.")
    start, end = window(cfg, now)
    report = MonitorReport(
        cfg.model_name, cfg.log_table, start.isoformat(), end.isoformat(), now.isoformat(), dry_run
    )
    out_dir = Path(cfg.out_dir) if cfg.out_dir else default_out_dir(settings, report.created_at)
    served, why_empty = _served(settings, cfg, start, end)
    report.rows = len(served)
    ctx = _Context(cfg, settings, report, served)
    ctx.versions()
    report.sections = [
        ctx.run("feature_drift", ctx.feature_drift, why_empty),
        ctx.run("score_drift", ctx.score_drift, why_empty),
        *ctx.labelled(why_empty),
        ctx.run("freshness", lambda: _freshness(settings, served, cfg, now), None),
        ctx.run("skew", ctx.skew, why_empty),
    ]
    report.promoted = ctx.promote(dry_run)
    failure: MlrayError | None = None
    try:
        decision = maybe_retrain(settings, cfg.retrain, report.alerts, dry_run=dry_run, now=now)
        report.retrain = decision.to_dict()
    except MlrayError as e:
        report.retrain, failure = {"action": "failed", "reason": str(e)}, e
    try:
        report.metrics_exported = export_gauges(report.gauges())
    except Exception as e:  # noqa: BLE001 - the metrics are a copy; the report is what counts
        log.warning("Exporting the monitor's Ray metrics failed: %s", e)
    write_report(report, out_dir)
    if log_mlflow:
        log_to_mlflow(settings, report, out_dir)
    if failure is not None:
        raise failure
    return report


def _served(
    settings: Settings, cfg: MonitorConfig, start: datetime, end: datetime
) -> tuple[pd.DataFrame, str | None]:
    """The window's rows of ``cfg.model_name`` and, when there are none, why."""
    try:
        df = served_frame(settings, cfg.log_table, start, end)
    except NotFoundError as e:
        return pd.DataFrame(), str(e)
    if "model_name" in df.columns:
        df = df[df["model_name"] == cfg.model_name].reset_index(drop=True)
    if df.empty:
        return df, (
            f"no predictions of model {cfg.model_name!r} in log {cfg.log_table!r} from "
            f"{start.isoformat()} to {end.isoformat()}"
        )
    return df, None


def _freshness(
    settings: Settings, served: pd.DataFrame, cfg: MonitorConfig, now: datetime
) -> CheckSection:
    result = freshness(settings, served, cfg.freshness, now)
    return CheckSection.of("freshness", result, summaries.freshness(result))


class _Context:
    """What the checks of one run share: the served rows, the versions and their reference."""

    def __init__(
        self, cfg: MonitorConfig, settings: Settings, report: MonitorReport, served: pd.DataFrame
    ) -> None:
        self.cfg, self.settings, self.report, self.served = cfg, settings, report, served
        self.reference: Reference | None = None
        self.feature_refs: list[str] = []
        self.no_reference = "no served rows"
        self.gate: Any = None

    def run(self, name: str, fn: Callable[[], CheckSection], skip: str | None) -> CheckSection:
        """``fn``'s section; skipped when ``skip`` says why, or when it raises an mlray error."""
        if skip is not None:
            return CheckSection.skipped(name, skip)
        try:
            return fn()
        except MlrayError as e:
            return CheckSection.skipped(name, str(e))
        except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
            log.exception("Monitor check %s failed", name)
            return CheckSection.failed(name, e)

    def versions(self) -> None:
        """The champion alias, the versions serving the latest row, the serving one's reference."""
        from mlray.registry.champion import CHAMPION
        from mlray.registry.tracking import registry_client
        from mlray.registry.versions import version_for_alias

        client = registry_client(self.settings)
        champion = version_for_alias(client, self.cfg.model_name, CHAMPION)
        self.report.champion_version = str(champion.version) if champion else None
        if self.served.empty:
            return
        last = self.served.sort_values("request_time", kind="stable").iloc[-1]
        self.report.serving_version = str(last["model_version"])
        shadow = last.get("shadow_version")
        self.report.shadow_version = None if pd.isna(shadow) else str(shadow)
        try:
            self._download(client, self.report.serving_version)
        except MlrayError as e:
            self.no_reference = str(e)

    def _download(self, client: Any, version: str) -> None:
        import tempfile

        from mlray.registry.download import download_version

        root = self.settings.data_root
        cache = Path(root) / "monitor" / "models" if "://" not in root else Path(tempfile.mkdtemp())
        dv = download_version(client, self.cfg.model_name, cache, version=version)
        self.feature_refs = list(dv.spec.feature_refs)
        self.reference = dv.reference
        if dv.reference is None:
            self.no_reference = f"model {self.cfg.model_name!r} v{version} registered no reference"

    def _of_serving_version(self) -> pd.DataFrame:
        v = self.report.serving_version
        return self.served[self.served["model_version"].astype(str) == v]

    def feature_drift(self) -> CheckSection:
        if self.reference is None:
            return CheckSection.skipped("feature_drift", self.no_reference)
        seasonal = seasonal_features(self.settings, self.feature_refs)
        history = None
        if seasonal:  # same hours of day on earlier days: read those days of the log too
            start = datetime.fromisoformat(self.report.start)
            days = timedelta(days=self.cfg.drift.seasonal_baseline_days)
            history, _ = _served(self.settings, self.cfg, start - days, start)
        result = feature_drift(
            self._of_serving_version(), self.reference, self.cfg.drift, seasonal, history
        )
        return CheckSection.of("feature_drift", result, summaries.feature_drift(result))

    def score_drift(self) -> CheckSection:
        if self.reference is None:
            return CheckSection.skipped("score_drift", self.no_reference)
        v = self.report.serving_version
        result = score_drift(self.served, self.reference, self.cfg.drift, model_version=v)
        if self.reference.score is not None:
            self.report.score_bins = score_bins(
                self.reference.score, self._of_serving_version()["score"]
            )
        return CheckSection.of("score_drift", result, summaries.score_drift(result))

    def labelled(self, skip: str | None) -> list[CheckSection]:
        """The performance and promotion sections (both skipped while no label has landed)."""
        try:
            if skip is not None:
                raise _Skip(skip)
            joined = self._joined()
        except _Skip as e:
            return [CheckSection.skipped(n, str(e)) for n in ("performance", "promotion")]
        except NotFoundError as e:
            reason = f"no labels: {e}"
            return [CheckSection.skipped(n, reason) for n in ("performance", "promotion")]
        except MlrayError as e:
            return [CheckSection.skipped(n, str(e)) for n in ("performance", "promotion")]
        return [
            self.run("performance", lambda: self._performance(joined), None),
            self.run("promotion", lambda: self._promotion(joined), None),
        ]

    def _joined(self) -> pd.DataFrame:
        labels = load_labels(self.settings, self.cfg.labels)
        joined = join_labels(self.served, labels, self.cfg.labels)
        if joined.empty:
            raise _Skip(
                f"no labels yet: none of the {len(labels):,} labels in {self.cfg.labels.source!r} "
                f"belongs to the window's {len(self.served):,} predictions"
            )
        return joined

    def _performance(self, joined: pd.DataFrame) -> CheckSection:
        from mlray.registry.tracking import registry_client

        versions = pd.concat([joined["model_version"], joined["shadow_version"]]).dropna()
        test_auc = registered_test_auc(
            registry_client(self.settings), self.cfg.model_name, [str(v) for v in versions]
        )
        result = performance(joined, self.cfg.labels, test_auc, self.cfg.min_auc_drop)
        return CheckSection.of("performance", result, summaries.performance(result))

    def _promotion(self, joined: pd.DataFrame) -> CheckSection:
        self.gate = promotion_gate(joined, self.cfg.promotion)
        return CheckSection.of("promotion", self.gate, summaries.promotion(self.gate))

    def promote(self, dry_run: bool) -> str | None:
        """Apply a ready gate (``auto_promote``, not in a dry run); the section says what."""
        section = self.report.section("promotion")
        gate, auto = self.gate, self.cfg.promotion.auto_promote
        if gate is None or section is None or not gate.ready:
            return None
        if not auto:
            section.summary += "; auto_promote is off: promote by hand"
            return None
        if dry_run:
            section.summary += f"; dry run: would move champion to v{gate.challenger_version}"
            return None
        promoted: str | None = apply_promotion(self.settings, self.cfg.model_name, gate, auto)
        section.summary += (
            f"; promoted v{promoted} to champion"
            if promoted
            else "; not promoted: the champion alias moved meanwhile"
        )
        return promoted

    def skew(self) -> CheckSection:
        from mlray.monitoring.skew import skew_audit
        from mlray.ray_session import ensure_ray

        ensure_ray(self.settings)  # only now: every cheaper check has passed
        result = skew_audit(self.settings, self.served, self.cfg.skew)
        return CheckSection.of("skew", result, summaries.skew(result))


class _Skip(Exception):
    """A labelled check has nothing to judge yet (the message says why)."""


def score_bins(reference: Distribution, scores: pd.Series) -> dict[str, Any]:
    """The served scores' shares on the reference's bins, beside the reference's shares."""
    served = reference.with_counts(served_counts(reference, scores))
    edges = [f"{e:.3g}" for e in reference.edges]
    bounds = ["-inf", *edges, "inf"]
    labels = [f"({a}, {b}]" for a, b in zip(bounds[:-1], bounds[1:], strict=True)] + ["null"]
    return {
        "bins": labels,
        "reference": list(reference.proportions),
        "served": list(served.proportions),
        "reference_rows": reference.count,
        "served_rows": served.count,
    }
