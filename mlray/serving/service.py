"""What one ingress replica does per request, without Serve: features, champion, shadow, log row.

:meth:`PredictionService.predict` is the critical path: one online read for
the whole request (stored and request-time features), one encode, one model
call (in-process, or through the model deployment's dynamic batching).
:meth:`PredictionService.complete` runs after the response is sent: it
scores the shadow on the same feature rows, fills in the log rows and queues
them for the committer. Nothing here imports torch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlray.features.times import to_us
from mlray.runtimes.encoding import encode_frame
from mlray.serving.features import ServingFeatures
from mlray.serving.log_buffer import RowBuffer
from mlray.serving.metrics import ServingMetrics
from mlray.serving.models import ModelSet, ModelSlot
from mlray.serving.prediction_log import LogRow
from mlray.serving.schemas import Prediction

# (feature rows) -> (scores, model version): the model deployment, when the shape has one.
RemoteScorer = Callable[[list[dict[str, Any]]], Awaitable[tuple[np.ndarray, str]]]


@dataclass
class ParsedRequest:
    """One request's entities, context fields and request time (None: now)."""

    entities: dict[str, Any]
    context: dict[str, Any]
    request_time: datetime | None


@dataclass
class Pending:
    """A served batch waiting for its shadow score and log rows.

    See :meth:`PredictionService.complete`.
    """

    route: str
    requests: list[ParsedRequest]
    predictions: list[Prediction]
    feature_rows: list[dict[str, Any]]
    event_us: list[dict[str, int | None]]
    request_us: list[int]
    x: np.ndarray | None
    champion_spec_names: list[str]
    shadow: ModelSlot | None
    latency_ms: list[float]


class PredictionService:
    """The ingress replica's work, testable without Serve.

    Args:
        model_name: the registered model.
        models: the champion and shadow, kept current.
        features: the online features with the store-down policy.
        log: the replica's buffer of log rows.
        metrics: where latencies and counts go.
        remote: the model deployment, when the champion runs there.
    """

    def __init__(
        self,
        model_name: str,
        models: ModelSet,
        features: ServingFeatures,
        log: RowBuffer,
        metrics: ServingMetrics,
        remote: RemoteScorer | None = None,
    ) -> None:
        self.model_name, self.models, self.features, self.log = model_name, models, features, log
        self.metrics, self.remote = metrics, remote
        self.served = 0

    def refs(self) -> list[str]:
        """The refs to read: the champion's, then any more the shadow needs."""
        refs = list(self.models.args.features or self._champion().spec.feature_refs)
        shadow = self.models.shadow
        if shadow is not None:
            refs += [r for r in shadow.spec.feature_refs if r not in refs]
        return refs

    def _champion(self) -> ModelSlot:
        champion = self.models.champion
        if champion is None:
            from mlray.errors import BackendUnavailable

            raise BackendUnavailable(
                f"No champion of model {self.model_name!r} is loaded yet "
                f"({self.models.last_error or 'loading'})."
            )
        return champion

    async def predict(
        self,
        requests: Sequence[ParsedRequest],
        route: str,
        request_ids: Sequence[str],
        t0s: Sequence[float],
    ) -> tuple[list[Prediction], Pending]:
        """Score ``requests`` with the champion; returns the answers and the work left for later.

        ``t0s``: when each request came in (``time.perf_counter``), for its latency.

        Raises:
            BackendUnavailable: the store is down under the ``fail`` policy, or no model is loaded.
            SchemaError: a request lacks a field the features need.
        """
        champion, shadow, refs = self._champion(), self.models.shadow, self.refs()
        now = datetime.now(UTC)
        times = [r.request_time or now for r in requests]
        rows, event_us, missing, degraded = self._read(requests, times, refs)
        started = time.perf_counter()
        if self.remote is not None:
            scores, version = await self.remote(rows)
            x = None
        else:
            x = encode_frame(champion.spec, rows)
            scores, version = champion.predict(x), champion.version
        self.metrics.model_ms.observe((time.perf_counter() - started) * 1e3, {"model": "champion"})
        predictions = [
            Prediction(
                score=float(s),
                model_version=version,
                request_id=rid,
                missing_features=m,
                degraded=d,
            )
            for s, rid, m, d in zip(scores, request_ids, missing, degraded, strict=True)
        ]
        done = time.perf_counter()
        latency = [(done - t0) * 1e3 for t0 in t0s]
        self.served += len(predictions)
        self.metrics.served.inc(len(predictions))
        for ms in latency:
            self.metrics.request_ms.observe(ms, {"route": route})
        pending = Pending(
            route,
            list(requests),
            predictions,
            rows,
            event_us,
            [to_us(t) for t in times],
            x,
            champion.spec.feature_names,
            shadow,
            latency,
        )
        return predictions, pending

    def _read(
        self, requests: Sequence[ParsedRequest], times: list[datetime], refs: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, int | None]], list[list[str]], list[bool]]:
        """One online read per distinct request time (a batch usually has one)."""
        n = len(requests)
        rows: list[dict[str, Any]] = [{}] * n
        event_us: list[dict[str, int | None]] = [{}] * n
        missing: list[list[str]] = [[]] * n
        degraded = [False] * n
        groups: dict[datetime, list[int]] = {}
        for i, t in enumerate(times):
            groups.setdefault(t, []).append(i)
        started = time.perf_counter()
        for t, idx in groups.items():
            entity_rows = [{**requests[i].entities, **requests[i].context} for i in idx]
            got, is_default = self.features.read(entity_rows, refs, t)
            for j, i in enumerate(idx):
                rows[i] = got.rows[j]
                event_us[i] = {v: ts[j] for v, ts in got.event_us.items()}
                missing[i] = got.missing[j]
                degraded[i] = is_default
        self.metrics.feature_ms.observe((time.perf_counter() - started) * 1e3)
        for m in missing:
            if m:
                self.metrics.count_missing(m)
        if any(degraded):
            self.metrics.degraded.inc(sum(degraded))
        return rows, event_us, missing, degraded

    async def complete(self, pending: Pending) -> None:
        """After the response: score the shadow, complete the log rows and queue them.

        A coroutine on purpose: Starlette runs it on the replica's event loop
        (a plain function would go to a worker thread, racing the log buffer).
        """
        shadow_scores: list[float | None] = [None] * len(pending.predictions)
        shadow = pending.shadow
        if shadow is not None:
            started = time.perf_counter()
            x = pending.x
            if x is None or shadow.spec.feature_names != pending.champion_spec_names:
                x = encode_frame(shadow.spec, pending.feature_rows)
            got = shadow.predict(x)
            self.metrics.model_ms.observe(
                (time.perf_counter() - started) * 1e3, {"model": "shadow"}
            )
            scores = [float(s) for s in got]
            for p, s in zip(pending.predictions, scores, strict=True):
                self.metrics.shadow_diff.observe(abs(p.score - s))
            shadow_scores = list(scores)
        now_us = time.time_ns() // 1000
        rows = [
            LogRow(
                request_id=p.request_id,
                request_time_us=t_us,
                route=pending.route,
                model_name=self.model_name,
                entities=req.entities,
                context=req.context,
                features=feats,
                feature_event_times=ev,
                missing_features=p.missing_features,
                score=p.score,
                model_version=p.model_version,
                latency_ms=ms,
                degraded=p.degraded,
                shadow_score=s,
                shadow_version=shadow.version if shadow is not None else None,
                logged_at_us=now_us,
            )
            for p, req, feats, ev, t_us, s, ms in zip(
                pending.predictions,
                pending.requests,
                pending.feature_rows,
                pending.event_us,
                pending.request_us,
                shadow_scores,
                pending.latency_ms,
                strict=True,
            )
        ]
        self.log.add(rows)


def request_ids(header: str | None, n: int) -> list[str]:
    """A response's request ids: the client's ``X-Request-ID`` (``-i`` per batch item), or new."""
    if header:
        return [header] if n == 1 else [f"{header}-{i}" for i in range(n)]
    return [uuid.uuid4().hex for _ in range(n)]
