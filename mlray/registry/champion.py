"""Champion and challenger: does the new model replace the one in production?

The rule is deliberately simple and logged with both scores: with no
champion the new model is promoted; otherwise it must beat the champion on
the *same* test slice by the configured margin (AUC up, or log loss down).
Anything else, including a champion that cannot be scored on this slice,
leaves the champion in place and registers the new model as ``challenger``
(the serving shadow scores it on live traffic).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field

CHAMPION, CHALLENGER = "champion", "challenger"
# A model's metrics on the test slice are named ``test_<metric>`` wherever they appear: the
# MLflow run, the model version's tags and the pipeline's result.
TEST_PREFIX = "test_"


def named_test_metrics(values: dict[str, float]) -> dict[str, float]:
    """Test-slice metrics under their one name: ``{"auc": ...}`` -> ``{"test_auc": ...}``."""
    return {f"{TEST_PREFIX}{k}": v for k, v in values.items()}


class PromotionConfig(BaseModel):
    """The challenger is promoted only if its test metric beats the champion's by ``margin``."""

    model_config = ConfigDict(extra="forbid")

    metric: Literal["auc", "log_loss"] = "auc"
    margin: float = Field(
        0.005,
        description="Required improvement (AUC up, or log loss down, by this much); "
        "below the noise of a small test slice, retrains would flip-flop.",
    )


@dataclass(frozen=True)
class Decision:
    """The outcome of the comparison, and why."""

    promote: bool
    alias: str
    reason: str
    metric: str
    margin: float
    challenger_score: float
    champion_score: float | None = None
    champion_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scored(x: float | None) -> TypeGuard[float]:
    """A metric that was computed: present and not NaN."""
    return not (x is None or (isinstance(x, float) and math.isnan(x)))


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    cfg: PromotionConfig,
    champion_version: str | None = None,
    champion_problem: str | None = None,
) -> Decision:
    """Compare test-slice metrics and say which alias the new model gets.

    Args:
        challenger: the new model's test metrics (``test_auc``, ``test_log_loss``).
        champion: the champion's metrics on the same slice (same names); None when there is
            no champion.
        cfg: the metric and margin.
        champion_version: the champion's version, for the reason text.
        champion_problem: why the champion could not be scored, if it could not.
    """
    metric, margin = cfg.metric, cfg.margin
    key = f"{TEST_PREFIX}{metric}"
    new = challenger.get(key)
    challenger_score = float(new) if _scored(new) else float("nan")

    def decision(
        promote: bool, alias: str, reason: str, champion_score: float | None = None
    ) -> Decision:
        return Decision(
            promote,
            alias,
            reason,
            metric=metric,
            margin=margin,
            challenger_score=challenger_score,
            champion_score=champion_score,
            champion_version=champion_version,
        )

    if not _scored(new):
        return decision(False, CHALLENGER, f"the new model's test {metric} is undefined")
    if champion is None and champion_problem is None:
        return decision(True, CHAMPION, "no champion yet: the first model becomes champion")
    old = None if champion is None else champion.get(key)
    if not _scored(old):
        why = champion_problem or f"its test {metric} is undefined"
        return decision(
            False,
            CHALLENGER,
            f"champion v{champion_version} could not be scored ({why}); "
            "promote by hand if the new model should replace it",
        )
    gain = (new - old) if metric == "auc" else (old - new)
    verb = "beats" if gain >= margin else "does not beat"
    reason = (
        f"test {metric} {new:.4f} vs champion v{champion_version} {old:.4f}: "
        f"{verb} it by the margin {margin} (gain {gain:+.4f})"
    )
    promote = gain >= margin
    return decision(promote, CHAMPION if promote else CHALLENGER, reason, float(old))
