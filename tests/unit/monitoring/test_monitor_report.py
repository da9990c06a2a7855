"""The monitor report built from hand-made check results: statuses, alerts, JSON, HTML, gauges."""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlray.errors import ConfigError
from mlray.monitoring.alerts import Gauge
from mlray.monitoring.config import MonitorConfig
from mlray.monitoring.drift import DriftResult
from mlray.monitoring.freshness import FreshnessResult, ViewFigures
from mlray.monitoring.monitor import score_bins, window
from mlray.monitoring.performance import CalibrationBin, Figures, PerformanceResult
from mlray.monitoring.promotion import GateDecision
from mlray.monitoring.report import CheckSection, MonitorReport, metric_key, write_report
from mlray.validation.psi import Distribution

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CAL = [CalibrationBin(0.0, 0.5, 200, 0.1, 0.12), CalibrationBin(0.5, 1.0, 40, 0.7, 0.6)]


def figures(role: str, version: str, day: str | None, n: int, auc: float | None) -> Figures:
    return Figures(role, version, day, n, n // 8, auc, 0.35, CAL, 0.03)


def sections() -> list[CheckSection]:
    drift = DriftResult(
        "feature_drift",
        psi={"user_activity:ctr_7d": 0.31, "item_catalog:category": 0.02, "rf:hour": None},
        status={
            "user_activity:ctr_7d": "act",
            "item_catalog:category": "ok",
            "rf:hour": "seasonal",
        },
        rows=500,
        warn=0.1,
        act=0.25,
        min_rows=200,
    )
    score = DriftResult("score_drift", {"3": 0.12}, {"3": "warn"}, 500, 0.1, 0.25, 200)
    perf = PerformanceResult(
        window=[figures("champion", "3", None, 240, 0.70), figures("shadow", "4", None, 240, 0.74)],
        daily=[
            figures("champion", "3", "2026-03-01", 120, 0.69),
            figures("champion", "3", "2026-03-02", 120, 0.71),
            figures("shadow", "4", "2026-03-02", 240, 0.74),
        ],
        test_auc={"3": 0.80, "4": 0.78},
    )
    gate = GateDecision(False, "240 labelled requests, fewer than 500", "3", "4", 240,
                        0.70, 0.74, 0.04, 0.02, 500, 0.005, 0.15)  # fmt: skip
    fresh = FreshnessResult(
        NOW,
        [
            ViewFigures("item_stats", NOW, 9000.0, 7200.0, 10, 1, {"p50": 60.0}),
            ViewFigures("user_activity", NOW, 600.0, 7200.0, 10, 0, {"p50": 30.0}),
        ],
        rows=10,
        degraded_rows=0,
        max_miss_rate=0.5,
    )
    return [
        CheckSection.of("feature_drift", drift, "top PSI: user_activity:ctr_7d 0.310 (act)"),
        CheckSection.of("score_drift", score, "score PSI v3 0.120 (warn)"),
        CheckSection.of("performance", perf, "v3 champion AUC 0.700"),
        CheckSection.of("promotion", gate, "not ready"),
        CheckSection.of("freshness", fresh, "item_stats lag 2.5 h"),
        CheckSection.failed("skew", RuntimeError("offline table gone")),
    ]


def report(**kw: object) -> MonitorReport:
    r = MonitorReport("ctr_model", "predictions", "2026-03-01T12:00:00+00:00",
                      NOW.isoformat(), NOW.isoformat(), rows=500)  # fmt: skip
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_each_section_takes_its_worst_alert_and_the_report_collects_them() -> None:
    r = report(sections=sections(), retrain={"action": "would_submit"})
    status = {s.name: s.status for s in r.sections}
    assert status == {
        "feature_drift": "breach",
        "score_drift": "warn",
        "performance": "breach",  # champion AUC 0.70 is 0.10 below its test AUC 0.80
        "promotion": "ok",
        "freshness": "breach",  # item_stats 9000 s behind, limit 7200 s
        "skew": "error",
    }
    assert [(a.check, a.subject) for a in r.breaches] == [
        ("feature_drift", "user_activity:ctr_7d"),
        ("performance", "v3 (champion)"),
        ("freshness", "item_stats"),
    ]
    assert r.breached and [s.name for s in r.errors] == ["skew"]
    body = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert body["breached"] is True and len(body["alerts"]) == 4
    assert body["checks"]["feature_drift"]["figures"]["psi"]["rf:hour"] is None
    assert body["checks"]["skew"]["reason"] == "RuntimeError: offline table gone"
    assert body["checks"]["performance"]["alerts"][0]["value"] == pytest.approx(0.10)
    assert body["window"] == {"start": "2026-03-01T12:00:00+00:00", "end": NOW.isoformat()}


def test_report_files_hold_the_json_and_a_page_with_every_plot(tmp_path: Path) -> None:
    bins = {"bins": ["a", "b", "null"], "reference": [0.5, 0.5, 0.0], "served": [0.2, 0.8, 0.0],
            "reference_rows": 100, "served_rows": 500}  # fmt: skip
    r = report(sections=sections(), score_bins=bins, retrain={"action": "none"})
    out = write_report(r, tmp_path / "rep")
    assert r.out_dir == str(out)
    body = json.loads((out / "report.json").read_text())
    assert body["out_dir"] == str(out) and body["score_bins"] == bins
    page = (out / "report.html").read_text()
    images = re.findall(
        r"<h2>([^<]+)</h2><img alt='[^']*' src='data:image/png;base64,([^']+)'", page
    )
    assert [t for t, _ in images] == [
        "PSI per feature vs the training reference",
        "Score distribution: reference vs served",
        "Delayed-label AUC per day and model version",
        "Calibration: mean score vs observed click rate",
        "Feature view lag vs limit",
    ]
    assert all(base64.b64decode(png).startswith(b"\x89PNG") for _, png in images)
    assert "BREACH" in page and "offline table gone" in page and "item_stats" in page


def test_a_report_of_skipped_checks_has_no_plots_and_no_breach(tmp_path: Path) -> None:
    why = "no predictions of model 'ctr_model' in log 'predictions'"
    r = report(rows=0, sections=[CheckSection.skipped(n, why) for n in ("feature_drift", "skew")])
    page = (write_report(r, tmp_path) / "report.html").read_text()
    assert not r.breached and "<img alt" not in page and f"skipped: {html.escape(why)}" in page
    body = json.loads((tmp_path / "report.json").read_text())
    assert body["checks"]["skew"]["status"] == "skipped"


def test_gauges_add_the_runs_own_figures_and_metric_keys_are_mlflow_safe() -> None:
    r = report(sections=sections(), retrain={"action": "submitted", "submissions": 2})
    g = {(x.name, tuple(sorted(x.tags.items()))): x.value for x in r.gauges()}
    assert g[("mlray_monitor_psi", (("feature", "user_activity:ctr_7d"),))] == 0.31
    assert g[("mlray_monitor_breaches", (("check", "feature_drift"), ("model", "ctr_model")))] == 1
    assert g[("mlray_monitor_breaches", (("check", "score_drift"), ("model", "ctr_model")))] == 0
    assert g[("mlray_monitor_retrain_submitted", (("model", "ctr_model"),))] == 1
    assert g[("mlray_monitor_retrains_submitted", (("model", "ctr_model"),))] == 2
    assert g[("mlray_monitor_served_rows", (("model", "ctr_model"),))] == 500
    key = metric_key(Gauge("mlray_monitor_psi", 0.3, {"feature": "user_activity:ctr_7d"}))
    assert key == "psi.user_activity_ctr_7d"


def test_score_bins_put_served_scores_on_the_reference_bins() -> None:
    ref = Distribution("numeric", [0.5, 0.3, 0.2, 0.0], edges=[0.2, 0.5], count=1000)
    bins = score_bins(ref, pd.Series([0.1, 0.3, 0.6, 0.9, np.nan]))
    assert bins == {
        "bins": ["(-inf, 0.2]", "(0.2, 0.5]", "(0.5, inf]", "null"],
        "reference": [0.5, 0.3, 0.2, 0.0],
        "served": [0.2, 0.2, 0.4, 0.2],
        "reference_rows": 1000,
        "served_rows": 5,
    }


def test_the_window_ends_at_now_or_at_the_configured_end() -> None:
    assert window(MonitorConfig(window_hours=6), NOW) == (NOW.replace(hour=6), NOW)
    start, end = window(MonitorConfig(end="2026-01-01T00:00:00Z", window_hours=24), NOW)
    assert (start.isoformat(), end.isoformat()) == (
        "2025-12-31T00:00:00+00:00",
        "2026-01-01T00:00:00+00:00",
    )
    with pytest.raises(ConfigError, match="no time zone"):
        window(MonitorConfig(end="2026-01-01T00:00:00"), NOW)


def test_every_series_the_grafana_dashboard_queries_is_one_the_monitor_exports() -> None:
    from mlray.monitoring.config import SkewConfig
    from mlray.monitoring.skew import FeatureSkew, SkewResult

    skew = SkewResult(1, 1, 0, [FeatureSkew("shop:price", compared=1)], [], [], SkewConfig())
    r = report(
        sections=[*sections()[:-1], CheckSection.of("skew", skew, "")],
        retrain={"action": "none", "submissions": 0},
    )
    exported = {f"ray_{g.name}" for g in r.gauges()}  # Ray's Prometheus exporter adds ray_
    path = Path(__file__).resolve().parents[3] / "cluster" / "grafana" / "mlray_monitoring.json"
    dashboard = json.loads(path.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bray_mlray_monitor_\w+", target["expr"])
    }
    assert queried <= exported, queried - exported
    assert {"ray_mlray_monitor_psi", "ray_mlray_monitor_score_psi", "ray_mlray_monitor_auc",
            "ray_mlray_monitor_view_lag_seconds", "ray_mlray_monitor_skew_rate",
            "ray_mlray_monitor_retrains_submitted"} <= queried  # fmt: skip


def test_summary_rows_end_with_the_promotion_and_the_retrain_in_one_line_each() -> None:
    retrain = {
        "action": "would_submit",
        "entrypoint": "python jobs/train_pipeline.py",
        "address": "http://127.0.0.1:8265",
        "triggers": ["feature_drift:a:x", "feature_drift:a:y", "score_drift:3", "performance:v3"],
    }
    rows = report(sections=sections(), retrain=retrain).summary_rows()
    assert [r["check"] for r in rows] == [*(s.name for s in sections()), "promote", "retrain"]
    assert rows[-2] == {"check": "promote", "status": "-", "figures": "nothing promoted"}
    assert rows[-1] == {
        "check": "retrain",
        "status": "would_submit",
        "figures": "dry run: would submit 'python jobs/train_pipeline.py' to "
        "http://127.0.0.1:8265; 4 breaches: feature_drift:a:x, feature_drift:a:y, "
        "score_drift:3 (+1 more)",
    }
