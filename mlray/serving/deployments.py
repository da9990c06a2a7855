"""The Serve deployments of the serving application, wired by :func:`mlray.serving.app.build_app`.

* :class:`Ingress`: FastAPI routes; reads features and, in the ``inprocess``
  shape, runs the champion in the same replica (no handle hop on the
  critical path); scores the shadow after each response; buffers log rows.
* :class:`ModelDeployment`: the champion behind ``@serve.batch`` dynamic
  batching, with ``num_gpus``, for the ``model_deployment`` shape.
* :class:`PredictionLogger`: the one committer of the prediction log.

Each polls the registry's aliases every ``reload_interval_s`` and reloads on
a new ``user_config`` (``reconfigure``): ``mlray promote`` moves an alias and
the replicas swap models without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from mlray.config import Settings
from mlray.registry.tracking import registry_client
from mlray.serving.config import LogConfig, ServeArgs
from mlray.serving.heap import freeze_startup_heap
from mlray.serving.log_buffer import RowBuffer
from mlray.serving.prediction_log import DeltaLogWriter, LogRow

log = logging.getLogger(__name__)


def _cache_dir(settings: Settings) -> Path:
    return Path(settings.table_uri("serving", "models"))


def log_uri(settings: Settings, cfg: LogConfig) -> str:
    """The prediction log table."""
    return settings.table_uri("predictions", cfg.table)


async def _keep_current(models: Any, on_change: Any = None) -> None:
    """Poll the aliases while the replica lives; reload off the event loop."""
    while True:
        await asyncio.sleep(max(0.05, min(1.0, models.args.reload_interval_s)))
        if models.due():
            changed = await asyncio.to_thread(models.refresh)
            if changed:
                log.info("Now serving: %s", ", ".join(changed))
                if on_change is not None:
                    on_change(changed)


@serve.deployment(max_ongoing_requests=64, health_check_period_s=5)
@serve.ingress()
class Ingress:
    """HTTP ingress: features, champion (in-process or via the model deployment), shadow, log."""

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async constructor
        self,
        args: ServeArgs,
        settings: Settings,
        logger: Any,
        model: Any = None,
    ) -> None:
        from mlray.features.repository import FeatureRepository
        from mlray.online import open_online_store
        from mlray.serving.features import ServingFeatures
        from mlray.serving.metrics import ServingMetrics
        from mlray.serving.models import ModelSet
        from mlray.serving.schemas import request_models
        from mlray.serving.service import PredictionService

        self.args, self.settings, self.logger, self.model = args, settings, logger, model
        repo = FeatureRepository.from_module(settings.feature_repo)
        self.models = ModelSet(registry_client(settings), args, _cache_dir(settings))
        await asyncio.to_thread(self.models.refresh)
        self.features = ServingFeatures(
            open_online_store(settings), repo, settings.project, args.store_down, args.store_retry_s
        )
        self.metrics = ServingMetrics()
        self.logger_ok = True
        self.buffer = RowBuffer(
            self._hand_off,
            batch_rows=args.log.replica_batch_rows,
            interval_s=args.log.replica_flush_s,
            max_rows=args.log.max_buffer_rows,
            name="ingress log buffer",
            on_depth=lambda n: self.metrics.log_queue.set(n, {"stage": "replica"}),
        )
        self.buffer.start()
        remote = self._remote_score if model is not None else None
        self.service = PredictionService(
            args.model_name, self.models, self.features, self.buffer, self.metrics, remote
        )
        self.single, self.batch = request_models(repo, self.service.refs(), args.max_batch)
        self.models.accept = self._accepts
        self._accepted_refs = set(self.service.refs())
        self._poller = asyncio.get_running_loop().create_task(_keep_current(self.models))
        self._metrics_task = asyncio.get_running_loop().create_task(self._flush_metrics())
        freeze_startup_heap()

    async def _flush_metrics(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.metrics.flush()

    def _accepts(self, spec: Any) -> str | None:
        """A new version must read features the request schema can feed (else keep the old one)."""
        extra = sorted(set(spec.feature_refs) - self._accepted_refs)
        if extra and self.args.features is None:
            return (
                f"it reads {extra}, which this deployment's request schema was not built for; "
                "redeploy the application to serve it"
            )
        return None

    def __serve_build_asgi_app__(self) -> Any:
        from mlray.serving.http import build_http_app

        return build_http_app(
            self.service,
            self.single,
            self.batch,
            max_batch=self.args.max_batch,
            max_body_bytes=self.args.max_body_bytes,
            health=self._health,
        )

    async def _hand_off(self, rows: list[LogRow]) -> None:
        try:
            await self.logger.log.remote(rows)
        except Exception:
            self.logger_ok = False
            raise
        self.logger_ok = True

    async def _remote_score(self, rows: list[dict[str, Any]]) -> tuple[np.ndarray, str]:
        return await self.model.predict.remote(rows)

    def _health(self) -> Any:
        from mlray.serving.schemas import Health

        features = "ok" if self.features.healthy else f"down: {self.features.last_error}"
        model = "ok" if self.models.champion is not None else f"none: {self.models.last_error}"
        logger = "ok" if self.logger_ok else "unreachable"
        ready = self.features.healthy and self.models.champion is not None and self.logger_ok
        return Health(
            status="ok" if ready else "unavailable", features=features, model=model, logger=logger
        )

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """A new ``user_config`` (e.g. ``{reload: <anything new>}``) checks the aliases now."""
        if getattr(self, "models", None) is not None:
            await asyncio.to_thread(self.models.refresh)

    async def __del__(self) -> None:
        """Graceful shutdown or redeploy: commit every buffered row before the replica goes.

        The committer may be shutting down too (its replica no longer takes calls),
        so the last rows go straight to the table: one more commit per replica.
        """
        self._poller.cancel()
        self._metrics_task.cancel()
        self.metrics.flush()
        writer = DeltaLogWriter(
            log_uri(self.settings, self.args.log), self.settings.storage_options
        )

        async def direct(rows: list[LogRow]) -> None:
            await asyncio.to_thread(writer.append, rows)

        self.buffer.sink = direct
        await self.buffer.close()
        self.features.close()


@serve.deployment(max_ongoing_requests=256)
class ModelDeployment:
    """The champion behind dynamic batching: feature rows in, scores and the version out."""

    def __init__(self, args: ServeArgs, settings: Settings) -> None:
        from mlray.serving.models import ModelSet

        self.args = args.model_copy(update={"shadow": None})
        self.models = ModelSet(registry_client(settings), self.args, _cache_dir(settings))
        self.models.refresh()
        cfg = args.model_deployment
        # serve.batch's wrapper has these setters; Ray's annotation returns a plain Callable.
        self.predict.set_max_batch_size(cfg.max_batch_size)  # type: ignore[attr-defined]
        self.predict.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)  # type: ignore[attr-defined]
        self._poller: asyncio.Task[None] | None = None

    @serve.batch(
        max_batch_size=64,
        batch_wait_timeout_s=0.002,
        batch_size_fn=lambda calls: sum(len(rows) for rows in calls),
    )
    async def predict(self, calls: list[list[dict[str, Any]]]) -> list[tuple[np.ndarray, str]]:
        from mlray.runtimes.encoding import encode_frame

        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(_keep_current(self.models))
        slot = self.models.champion
        assert slot is not None  # refresh() raised in __init__ otherwise
        rows = [r for call in calls for r in call]
        scores = slot.predict(encode_frame(slot.spec, rows))
        out, start = [], 0
        for call in calls:
            out.append((scores[start : start + len(call)], slot.version))
            start += len(call)
        return out

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        if getattr(self, "models", None) is not None:
            await asyncio.to_thread(self.models.refresh)

    def describe(self) -> dict[str, Any]:
        return self.models.describe()


@serve.deployment(num_replicas=1, max_ongoing_requests=1000)
class PredictionLogger:
    """The one committer: appends prediction rows to the Delta log in batches (size or time)."""

    def __init__(self, settings: Settings, cfg: LogConfig) -> None:
        from mlray.serving.metrics import LoggerMetrics

        self.writer = DeltaLogWriter(log_uri(settings, cfg), settings.storage_options)
        self.metrics = LoggerMetrics()
        self.received = 0
        self.closing = False
        self.buffer = RowBuffer(
            self._commit,
            batch_rows=cfg.commit_rows,
            interval_s=cfg.commit_interval_s,
            max_rows=cfg.max_buffer_rows,
            name="prediction log committer",
            on_depth=lambda n: self.metrics.queue.set(n, {"stage": "committer"}),
        )
        freeze_startup_heap()

    async def _commit(self, rows: list[LogRow]) -> None:
        await asyncio.to_thread(self.writer.append, rows)
        self.metrics.logged.inc(len(rows))

    async def log(self, rows: list[LogRow]) -> int:
        """Queue rows for the next commit; returns how many are waiting."""
        self.received += len(rows)
        if self.closing:  # shutting down: nothing may wait in a buffer that is already flushed
            await self._commit(rows)
            return 0
        dropped = self.buffer.dropped
        self.buffer.add(rows)
        if self.buffer.dropped > dropped:
            self.metrics.dropped.inc(self.buffer.dropped - dropped)
        return len(self.buffer.rows)

    async def flush(self) -> int:
        """Commit what is waiting now; returns the rows committed."""
        return await self.buffer.flush()

    def stats(self) -> dict[str, int]:
        """Rows received, committed, waiting and dropped since the replica started."""
        s = self.buffer.stats()
        return {
            "received": self.received,
            "logged": s["handed_off"],
            "pending": s["pending"],
            "dropped": s["dropped"],
            "failed_commits": s["failures"],
        }

    async def __del__(self) -> None:
        self.closing = True
        await self.buffer.close()
