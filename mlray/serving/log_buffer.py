"""Buffers between a served prediction and its Delta commit: one in each replica, one committer.

:class:`RowBuffer` collects rows and hands them on in batches, on size or on
time, whichever comes first, from a background task of the event loop it
runs in. A failed hand-off keeps the rows (up to ``max_rows``; beyond, the
oldest are dropped and counted) and retries at the next flush, so a
committer that is briefly unreachable loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mlray.serving.prediction_log import LogRow

log = logging.getLogger(__name__)
Sink = Callable[[list[LogRow]], Awaitable[Any]]


class RowBuffer:
    """Rows waiting to be handed to ``sink`` in batches.

    Args:
        sink: coroutine taking a batch (a handle call to the committer, or a Delta append).
        batch_rows: hand off as soon as this many rows wait.
        interval_s: hand off at least this often while rows wait.
        max_rows: rows kept while the sink fails; beyond, the oldest are dropped.
        name: for logs and metrics.
        on_depth: called with the number of waiting rows after each flush (a gauge).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        batch_rows: int,
        interval_s: float,
        max_rows: int,
        name: str,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.sink, self.batch_rows, self.interval_s = sink, batch_rows, interval_s
        self.max_rows, self.name, self.on_depth = max_rows, name, on_depth
        self.rows: list[LogRow] = []
        self.handed_off = 0
        self.dropped = 0
        self.failures = 0
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[int]] = set()
        self._closed = False

    def start(self) -> None:
        """Start the periodic flush on the running event loop (idempotent)."""
        if self._task is None and not self._closed:
            self._lock = asyncio.Lock()
            self._task = asyncio.get_running_loop().create_task(self._every_interval())

    def add(self, rows: Sequence[LogRow]) -> None:
        """Queue rows; a full batch is handed off right away (in the background)."""
        self.start()
        self.rows.extend(rows)  # the depth gauge is set at each flush, not per request
        if len(self.rows) >= self.batch_rows:
            self._flush_soon()

    def _flush_soon(self) -> asyncio.Task[int]:
        """A flush in a task of its own, tracked so that :meth:`close` can wait for it."""
        task = asyncio.get_running_loop().create_task(self.flush())
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    async def flush(self) -> int:
        """Hand off everything waiting now; returns the rows handed off (0 on failure)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self.rows:
                return 0
            batch, self.rows = self.rows, []
            try:
                await self.sink(batch)
            except asyncio.CancelledError:  # close() gave up waiting: the rows stay for its flush
                self.rows = batch + self.rows
                raise
            except Exception as e:  # noqa: BLE001 - keep the rows and retry at the next flush
                self.failures += 1
                self.rows = batch + self.rows
                over = len(self.rows) - self.max_rows
                if over > 0:
                    del self.rows[:over]
                    self.dropped += over
                log.warning("%s: handing off %d rows failed (%s); kept", self.name, len(batch), e)
                self._depth()
                return 0
            self.handed_off += len(batch)
            self._depth()
            return len(batch)

    async def close(self, grace_s: float = 5.0) -> int:
        """Stop the periodic flush and hand off what is left; returns the rows still held.

        A hand-off already under way gets ``grace_s`` to finish (its sink may be
        gone: a committer deleted first never answers); then it is cancelled, its
        rows go back to the buffer, and the last flush hands everything to the
        sink set now.
        """
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._inflight:
            _, stuck = await asyncio.wait(set(self._inflight), timeout=grace_s)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        await self.flush()
        return len(self.rows)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                # Shielded: cancelling this loop (close) must not cancel a hand-off midway.
                await asyncio.shield(self._flush_soon())
            except Exception:  # noqa: BLE001 - the loop must survive anything a flush raises
                log.exception("%s: periodic flush failed", self.name)

    def _depth(self) -> None:
        if self.on_depth is not None:
            self.on_depth(len(self.rows))

    def stats(self) -> dict[str, int]:
        return {
            "pending": len(self.rows),
            "handed_off": self.handed_off,
            "dropped": self.dropped,
            "failures": self.failures,
        }
