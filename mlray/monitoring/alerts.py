"""What every monitoring check returns: its figures as JSON, its alerts, and its Ray gauges.

Each check (drift, delayed-label performance, promotion, freshness, skew)
returns a result satisfying :class:`CheckResult`; the monitor
(:mod:`mlray.monitoring.monitor`) gathers them into one report, exports the
gauges as Ray metrics, and acts on the alerts whose ``severity`` is
``breach``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

Check = Literal["feature_drift", "score_drift", "freshness", "skew", "performance", "promotion"]


@dataclass(frozen=True)
class Alert:
    """One threshold crossed.

    Attributes:
        check: which check raised it (also what ``retrain.on`` selects).
        subject: what it is about: a feature ref ``view:feature``, a view, a model version.
        value: the measured figure (PSI, seconds, mismatch rate, AUC drop...).
        limit: the threshold it crossed.
        severity: ``warn`` (reported) or ``breach`` (reported, and acted on when configured).
        message: one line a person can act on: what, how much, against what, what to do.
    """

    check: Check
    subject: str
    value: float
    limit: float
    severity: Literal["warn", "breach"]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Gauge:
    """One figure to export as a Ray metric gauge (``name`` with ``tags``)."""

    name: str
    value: float
    tags: dict[str, str] = field(default_factory=dict)


class CheckResult(Protocol):
    """What each check returns."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (floats, ints, strings, lists, dicts; NaN as None)."""
        ...

    def alerts(self) -> list[Alert]:
        """The thresholds crossed, empty when all is well."""
        ...

    def gauges(self) -> list[Gauge]:
        """The figures to export as Ray metrics."""
        ...
