"""The shadow promotion gate: is the challenger the serving shadow scores ready to be champion?

Over the labelled requests both models scored (``shadow_score`` logged), the
challenger is ready when all hold:

* at least ``promotion.min_labels`` such requests;
* its delayed-label AUC minus the champion's is at least ``promotion.auc_margin``;
* the mean ``|shadow_score - score|`` is at most ``promotion.max_disagreement``
  (a challenger that scores very differently is reviewed by a person, whatever its AUC).

When the window holds several champion/shadow pairs (an alias moved), the pair
of the latest labelled request is judged, on its own rows. A ready challenger
is news, not a fault: the gate's alert is a warning. :func:`apply_promotion`
moves the ``champion`` alias to it when ``promotion.auto_promote`` is set;
serving replicas pick the alias up at their next reload.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlray.config import Settings
from mlray.metrics import roc_auc
from mlray.monitoring.alerts import Alert, Gauge
from mlray.monitoring.config import PromotionConfig
from mlray.monitoring.labels import LABEL

log = logging.getLogger(__name__)
_TOL = 1e-12  # figures equal to a limit pass it, whatever the float rounding


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict, the figures it judged and the limits it used (a CheckResult).

    Attributes:
        ready: the challenger may replace the champion.
        reason: which conditions failed, with the figures (or, when ready, why it is).
        champion_version, challenger_version: the pair judged (None: no shadow scores).
        n_labels: labelled requests both scored.
        champion_auc, challenger_auc: their delayed-label AUCs on those requests.
        auc_gain: challenger AUC - champion AUC.
        disagreement: mean |challenger score - champion score|.
    """

    ready: bool
    reason: str
    champion_version: str | None
    challenger_version: str | None
    n_labels: int
    champion_auc: float | None
    challenger_auc: float | None
    auc_gain: float | None
    disagreement: float | None
    min_labels: int
    auc_margin: float
    max_disagreement: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def alerts(self) -> list[Alert]:
        """A warning that the challenger is ready (none when it is not)."""
        if not self.ready:
            return []
        return [
            Alert(
                check="promotion",
                subject=f"v{self.challenger_version}",
                value=float(self.auc_gain or 0.0),
                limit=self.auc_margin,
                severity="warn",
                message=f"Challenger v{self.challenger_version} is ready to replace champion "
                f"v{self.champion_version}: {self.reason}. Promote it with `mlray promote "
                f"{self.challenger_version}`, or set promotion.auto_promote: true.",
            )
        ]

    def gauges(self) -> list[Gauge]:
        """``mlray_monitor_promotion_ready`` (0/1), ``_shadow_auc_gain``, ``_shadow_disagreement``.

        Tagged with the champion and challenger versions.
        """
        if self.challenger_version is None:
            return []
        tags = {"champion": str(self.champion_version), "challenger": self.challenger_version}
        out = [Gauge("mlray_monitor_promotion_ready", float(self.ready), tags)]
        for name, value in (
            ("mlray_monitor_shadow_auc_gain", self.auc_gain),
            ("mlray_monitor_shadow_disagreement", self.disagreement),
        ):
            if value is not None:
                out.append(Gauge(name, float(value), tags))
        return out


def promotion_gate(joined: pd.DataFrame, cfg: PromotionConfig) -> GateDecision:
    """Judge the shadow's challenger on the labelled requests both models scored.

    Args:
        joined: labelled predictions (:func:`mlray.monitoring.labels.join_labels`).
        cfg: the gate's limits.
    """
    limits = (cfg.min_labels, cfg.auc_margin, cfg.max_disagreement)
    cols = ["model_version", "score", "shadow_version", "shadow_score"]
    both = joined.dropna(subset=[c for c in cols if c in joined.columns])
    if "shadow_score" not in joined.columns or both.empty:
        return GateDecision(
            False,
            "no labelled request in the window was scored by a shadow",
            None,
            None,
            0,
            None,
            None,
            None,
            None,
            *limits,
        )
    last = both.sort_values("request_time", kind="stable").iloc[-1]
    champion, challenger = str(last["model_version"]), str(last["shadow_version"])
    rows = both[
        (both["model_version"].astype(str) == champion)
        & (both["shadow_version"].astype(str) == challenger)
    ]
    y = rows[LABEL].to_numpy(np.float64)
    p_champ, p_chall = rows["score"].to_numpy(np.float64), rows["shadow_score"].to_numpy(np.float64)
    auc_champ, auc_chall = _finite(roc_auc(y, p_champ)), _finite(roc_auc(y, p_chall))
    gain = None if auc_champ is None or auc_chall is None else auc_chall - auc_champ
    disagreement = float(np.mean(np.abs(p_chall - p_champ)))
    n = int(y.size)
    failed = []
    if champion == challenger:
        failed.append(f"the shadow is the champion's own version v{champion}")
    if n < cfg.min_labels:
        failed.append(
            f"{n} labelled requests scored by both, fewer than promotion.min_labels "
            f"{cfg.min_labels}"
        )
    gain_text = (
        f"challenger v{challenger} AUC {auc_chall:.4f} - champion v{champion} AUC "
        f"{auc_champ:.4f} = {gain:+.4f}"
        if gain is not None
        else ""
    )
    if gain is None:
        failed.append(f"the {n} labels hold a single class: no AUC to compare")
    elif gain < cfg.auc_margin - _TOL:
        failed.append(f"{gain_text}, below promotion.auc_margin {cfg.auc_margin}")
    if disagreement > cfg.max_disagreement + _TOL:
        failed.append(
            f"mean |challenger - champion| score {disagreement:.4f} above "
            f"promotion.max_disagreement {cfg.max_disagreement}"
        )
    reason = (
        "; ".join(failed)
        if failed
        else f"{gain_text} >= {cfg.auc_margin} over {n} labelled requests, mean disagreement "
        f"{disagreement:.4f} <= {cfg.max_disagreement}"
    )
    return GateDecision(
        not failed,
        reason,
        champion,
        challenger,
        n,
        auc_champ,
        auc_chall,
        gain,
        disagreement,
        *limits,
    )


def apply_promotion(
    settings: Settings, model_name: str, decision: GateDecision, auto_promote: bool
) -> str | None:
    """Move the ``champion`` alias to the challenger when it is ready and ``auto_promote`` is set.

    Nothing moves when the champion alias no longer points at the version the gate judged
    (someone promoted meanwhile): that is logged, and None returned.

    Returns:
        The version promoted, or None.

    Raises:
        NotFoundError: the challenger version does not exist.
        BackendUnavailable: the registry refused the write.
    """
    from mlray.registry.champion import CHAMPION
    from mlray.registry.tracking import registry_client
    from mlray.registry.versions import set_alias, version_for_alias

    if not (decision.ready and auto_promote) or decision.challenger_version is None:
        return None
    client = registry_client(settings)
    current = version_for_alias(client, model_name, CHAMPION)
    if current is not None and str(current.version) != decision.champion_version:
        log.warning(
            "Not promoting %s v%s: the champion is v%s now, not v%s as when it was judged",
            model_name,
            decision.challenger_version,
            current.version,
            decision.champion_version,
        )
        return None
    set_alias(client, model_name, CHAMPION, decision.challenger_version)
    log.info(
        "Promoted %s v%s to %s (was v%s): %s",
        model_name,
        decision.challenger_version,
        CHAMPION,
        decision.champion_version,
        decision.reason,
    )
    return decision.challenger_version


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
