"""The monitor's figures as Ray metrics, shown in the Ray dashboard's metrics view (Prometheus).

Each check's :class:`~mlray.monitoring.alerts.Gauge` becomes a
``ray.util.metrics.Gauge`` of the same name; Ray's exporter prefixes ``ray_``,
so ``mlray_monitor_feature_psi`` is scraped as ``ray_mlray_monitor_feature_psi``
(the panels of ``cluster/grafana/mlray_monitoring.json`` query those names).

The gauges live in one small detached actor (``mlray_monitor_metrics`` in
namespace ``mlray``, no CPU), not in the monitor's own process: a process sets
a gauge and Ray reports it every few seconds, so a ``mlray monitor`` that exits
right after would mostly never be scraped. The actor keeps the last value of
every series until the next run overwrites it. Nothing is exported when Ray is
not initialized (``mlray monitor`` starts Ray only for the skew audit).
"""

from __future__ import annotations

import math
from typing import Any

from mlray.monitoring.alerts import Gauge

ACTOR_NAME = "mlray_monitor_metrics"
NAMESPACE = "mlray"
PROMETHEUS_PREFIX = "ray_"  # what Ray's Prometheus exporter puts before every metric name


class GaugeHolder:
    """Holds one ``ray.util.metrics.Gauge`` per name (tag keys fixed by its first use)."""

    def __init__(self) -> None:
        self._gauges: dict[str, tuple[Any, tuple[str, ...]]] = {}
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def set(self, rows: list[tuple[str, float, dict[str, str]]]) -> int:
        """Set each ``(name, value, tags)``; returns how many were set."""
        from ray.util.metrics import Gauge as RayGauge

        for name, value, tags in rows:
            if name not in self._gauges:
                keys = tuple(sorted(tags))
                gauge = RayGauge(name, description=f"mlray monitor: {name}", tag_keys=keys)
                self._gauges[name] = (gauge, keys)
            gauge, keys = self._gauges[name]
            # A series with other tag keys than the first one: the missing ones are empty.
            fitted = {k: str(tags.get(k, "")) for k in keys}
            gauge.set(value, tags=fitted)
            self._values[(name, tuple(sorted(fitted.items())))] = value
        return len(rows)

    def snapshot(self) -> dict[str, float]:
        """Every series' last value, keyed ``name{k=v,...}`` (what Prometheus would show)."""
        return {series_key(n, dict(t)): v for (n, t), v in self._values.items()}


def series_key(name: str, tags: dict[str, str]) -> str:
    """``name{a=x,b=y}`` with the tags sorted; ``name`` without tags."""
    inner = ",".join(f"{k}={tags[k]}" for k in sorted(tags))
    return f"{name}{{{inner}}}" if inner else name


def holder() -> Any:
    """The detached gauge actor's handle, created on first use (Ray must be initialized)."""
    import ray

    return (
        ray.remote(num_cpus=0)(GaugeHolder)
        .options(name=ACTOR_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True)
        .remote()
    )


def export_gauges(gauges: list[Gauge]) -> int:
    """Set every finite gauge on the cluster's gauge actor.

    Returns:
        How many series were set; 0 when Ray is not initialized (nothing to export to).
    """
    import ray

    rows = [
        (g.name, float(g.value), {k: str(v) for k, v in g.tags.items()})
        for g in gauges
        if g.value is not None and math.isfinite(g.value)
    ]
    if not rows or not ray.is_initialized():
        return 0
    return int(ray.get(holder().set.remote(rows), timeout=60))


def exported() -> dict[str, float]:
    """The series the gauge actor holds (empty when Ray is not initialized or none were set)."""
    import ray

    if not ray.is_initialized():
        return {}
    try:
        actor = ray.get_actor(ACTOR_NAME, namespace=NAMESPACE)
    except ValueError:
        return {}
    return dict(ray.get(actor.snapshot.remote(), timeout=60))
