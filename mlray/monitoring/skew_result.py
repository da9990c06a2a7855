"""The skew audit's figures: per feature and per view, with their alerts and Ray gauges.

What :func:`mlray.monitoring.skew.skew_audit` returns (a :class:`CheckResult`);
the kinds of mismatch (``stale``, ``transform``, ``ahead``) are described there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlray.monitoring.alerts import Alert, Gauge
from mlray.monitoring.config import SkewConfig

KINDS = ("stale", "transform", "ahead")
MAX_EXAMPLES = 5


@dataclass
class FeatureSkew:
    """One feature's comparison over the sample.

    Attributes:
        feature: ``view:feature``.
        compared: sampled predictions that served it.
        mismatches: per kind (:data:`KINDS`), how many differed.
        diffs: ``|served - recomputed|`` of the numeric mismatches.
        examples: a few mismatches (request id, kind, both values, both event times).
    """

    feature: str
    compared: int = 0
    mismatches: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    diffs: list[float] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, kind: str | None = None) -> float:
        """Mismatch rate of one kind (None: of every kind)."""
        n = sum(self.mismatches.values()) if kind is None else self.mismatches[kind]
        return n / self.compared if self.compared else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "compared": self.compared,
            "mismatches": dict(self.mismatches),
            "mismatch_rate": self.rate(),
            "rates": {k: self.rate(k) for k in KINDS},
            "mean_abs_diff": float(np.mean(self.diffs)) if self.diffs else None,
            "max_abs_diff": float(np.max(self.diffs)) if self.diffs else None,
            "examples": self.examples,
        }


@dataclass
class ViewLookups:
    """One stored view's served event times against the offline join's, over the sample.

    ``same``: the same row; ``stale``/``ahead``: an older/newer row served;
    ``no_row``: no row on either side (unknown entity or past the TTL: defaults).
    """

    view: str
    same: int = 0
    stale: int = 0
    ahead: int = 0
    no_row: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "same": self.same,
            "stale": self.stale,
            "ahead": self.ahead,
            "no_row": self.no_row,
        }


@dataclass
class SkewResult:
    """The audit's figures (a :class:`~mlray.monitoring.alerts.CheckResult`).

    Attributes:
        sampled: logged predictions recomputed.
        eligible: non-degraded predictions in the window (the sample's population).
        degraded: predictions skipped because they were served defaults (store down).
        features: per served feature, in log order.
        views: per stored view, its lookups' event times compared.
        not_audited: logged feature columns no definition has any more.
        cfg: the thresholds.
        table_versions: per stored view, the offline table version recomputed from.
    """

    sampled: int
    eligible: int
    degraded: int
    features: list[FeatureSkew]
    views: list[ViewLookups]
    not_audited: list[str]
    cfg: SkewConfig
    table_versions: dict[str, int] = field(default_factory=dict)

    def feature(self, ref: str) -> FeatureSkew:
        """The figures of feature ``view:feature`` (KeyError when it was not audited)."""
        for f in self.features:
            if f.feature == ref:
                return f
        raise KeyError(ref)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "eligible": self.eligible,
            "degraded": self.degraded,
            "seed": self.cfg.seed,
            "tolerance": {"rel": self.cfg.rel_tolerance, "abs": self.cfg.abs_tolerance},
            "features": [f.to_dict() for f in self.features],
            "views": [v.to_dict() for v in self.views],
            "not_audited": list(self.not_audited),
            "table_versions": dict(self.table_versions),
        }

    def summary(self) -> str:
        """One line: ``200 predictions recomputed: no transform skew; stale: 2 features (max
        4.0%, user_activity:clicks_24h)``."""
        if not self.sampled:
            return "no logged predictions to audit"
        n = self.sampled
        parts = [f"{n} prediction{'' if n == 1 else 's'} recomputed"]
        for kind, label in (
            ("transform", "transform skew"),
            ("stale", "stale"),
            ("ahead", "ahead"),
        ):
            hit = sorted((f.rate(kind), f.feature) for f in self.features if f.mismatches[kind])
            if hit:
                rate, name = hit[-1]
                parts.append(f"{label}: {len(hit)} features (max {rate:.1%}, {name})")
            elif kind == "transform":
                parts.append("no transform skew")
        return "; ".join(parts)

    def alerts(self) -> list[Alert]:
        out = []
        cfg = self.cfg
        for f in self.features:
            rate = f.rate("transform")
            if rate > cfg.max_transform_skew_rate:
                out.append(
                    Alert(
                        "skew",
                        f.feature,
                        rate,
                        cfg.max_transform_skew_rate,
                        "breach",
                        f"Transform skew on {f.feature}: {f.mismatches['transform']} of "
                        f"{f.compared} sampled predictions were served a value that differs from "
                        "the offline recomputation at the same event time "
                        f"(max |diff| {_fmt(f.to_dict()['max_abs_diff'])}); serving and training "
                        "compute it differently. `mlray replay REQUEST_ID` shows one "
                        f"(e.g. {_example(f, 'transform')}).",
                    )
                )
            stale = f.rate("stale")
            if stale > cfg.max_stale_rate:
                out.append(
                    Alert(
                        "skew",
                        f.feature,
                        stale,
                        cfg.max_stale_rate,
                        "warn",
                        f"{f.feature} was served from stale materialization in {stale:.1%} of "
                        f"{f.compared} sampled predictions (an older row than the offline store "
                        "had at request time); materialize more often.",
                    )
                )
            if f.mismatches["ahead"]:
                out.append(
                    Alert(
                        "skew",
                        f.feature,
                        f.rate("ahead"),
                        0.0,
                        "warn",
                        f"{f.feature} was served a row newer than the request in "
                        f"{f.mismatches['ahead']} sampled predictions (e.g. "
                        f"{_example(f, 'ahead')}): requests sent with a past request_time, or "
                        "the offline table was rewritten since.",
                    )
                )
        return out

    def gauges(self) -> list[Gauge]:
        return [
            Gauge("mlray_monitor_skew_rate", f.rate(k), {"feature": f.feature, "kind": k})
            for f in self.features
            for k in KINDS
        ]


def _example(f: FeatureSkew, kind: str) -> str:
    for e in f.examples:
        if e["kind"] == kind:
            return f"request {e['request_id']}: served {e['served']!r}, offline {e['recomputed']!r}"
    return "see the report's examples"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"
