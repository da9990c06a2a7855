"""Serving metrics, exported by Ray to Prometheus and shown in the Ray dashboard.

Outside a Ray worker (unit tests, a plain script) the same calls are no-ops,
so the service code never checks where it runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

LATENCY_MS = [0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 100, 250, 1000]
DIFF = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]


class _NoOp:
    def observe(self, value: float, tags: dict[str, str] | None = None) -> None: ...

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None: ...

    def set(self, value: float, tags: dict[str, str] | None = None) -> None: ...


def _make(kind: str, name: str, description: str, **kwargs: Any) -> Any:
    import ray

    if not ray.is_initialized():
        return _NoOp()
    from ray.util import metrics

    return getattr(metrics, kind)(name, description=description, **kwargs)


class ServingMetrics:
    """The ingress replica's metrics (names start with ``mlray_serve_``)."""

    def __init__(self) -> None:
        self.request_ms = _make(
            "Histogram",
            "mlray_serve_request_latency_ms",
            "Request latency inside the replica, by route.",
            boundaries=LATENCY_MS,
            tag_keys=("route",),
        )
        self.feature_ms = _make(
            "Histogram",
            "mlray_serve_feature_lookup_ms",
            "Online feature lookup (one round trip) per request batch.",
            boundaries=LATENCY_MS,
        )
        self.model_ms = _make(
            "Histogram",
            "mlray_serve_model_ms",
            "Model call per request batch, champion or shadow.",
            boundaries=LATENCY_MS,
            tag_keys=("model",),
        )
        self.missing = _make(
            "Counter",
            "mlray_serve_missing_features",
            "Features served with their default (unknown entity, expired value), by feature.",
            tag_keys=("feature",),
        )
        self.shadow_diff = _make(
            "Histogram",
            "mlray_serve_shadow_abs_diff",
            "|champion score - shadow score| per prediction.",
            boundaries=DIFF,
        )
        self.served = _make("Counter", "mlray_serve_predictions_served", "Predictions answered.")
        self.degraded = _make(
            "Counter", "mlray_serve_degraded", "Predictions served with defaults (store down)."
        )
        self.log_queue = _make(
            "Gauge",
            "mlray_serve_log_queue_rows",
            "Prediction log rows waiting in a buffer, by stage (replica, committer).",
            tag_keys=("stage",),
        )
        self._missing: Counter[str] = Counter()

    def count_missing(self, refs: Iterable[str]) -> None:
        """Count features served with their default; sent to Ray by :meth:`flush`."""
        self._missing.update(refs)

    def flush(self) -> None:
        """Send the counts gathered since the last flush (one call per feature, not per request)."""
        counts, self._missing = self._missing, Counter()
        for ref, n in counts.items():
            self.missing.inc(n, {"feature": ref})


class LoggerMetrics:
    """The committer's metrics."""

    def __init__(self) -> None:
        self.logged = _make(
            "Counter",
            "mlray_serve_predictions_logged",
            "Prediction rows committed to the Delta log.",
        )
        self.dropped = _make(
            "Counter",
            "mlray_serve_log_rows_dropped",
            "Rows dropped because the log could not be written and the buffer was full.",
        )
        self.queue = _make(
            "Gauge",
            "mlray_serve_log_queue_rows",
            "Prediction log rows waiting in a buffer, by stage (replica, committer).",
            tag_keys=("stage",),
        )
