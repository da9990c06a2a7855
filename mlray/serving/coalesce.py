"""Single predictions that arrive together are scored together.

Under load, ``/predict`` calls pile up while the replica's event loop is busy
with the one before. :class:`Coalescer` gathers the calls waiting when the
loop gets to them into one :meth:`PredictionService.predict`: one online
read, one request-time transform, one encode and one model call for all of
them, and after the responses one shadow call and one set of log rows. It
never waits for company: a call on an idle replica is scored at once, alone,
so batching costs nothing at low load and keeps the queue short at high load
(the per-request cost falls as the queue grows). This is ``@serve.batch``
with a zero wait, without its timer and with the completion kept.

A round whose call fails (a backend down under the ``fail`` policy, a row
lacking a field) is retried one request at a time, so each caller gets its
own answer or its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from mlray.serving.schemas import Prediction
from mlray.serving.service import ParsedRequest


class Scorer(Protocol):
    """What the coalescer calls: :class:`mlray.serving.service.PredictionService`'s two steps."""

    async def predict(
        self,
        requests: Sequence[ParsedRequest],
        route: str,
        request_ids: Sequence[str],
        t0s: Sequence[float],
    ) -> tuple[list[Prediction], Any]: ...

    async def complete(self, pending: Any) -> None: ...


@dataclass
class _Call:
    request: ParsedRequest
    request_id: str
    t0: float
    answer: asyncio.Future[tuple[Prediction, asyncio.Future[None]]]


class Coalescer:
    """Scores concurrent single requests in rounds of at most ``max_rows``.

    Args:
        service: the replica's prediction service.
        route: the route the calls came in on (metrics and log rows).
        max_rows: the most requests scored in one round.
    """

    def __init__(self, service: Scorer, route: str, max_rows: int) -> None:
        self.service, self.route, self.max_rows = service, route, max_rows
        self._waiting: list[_Call] = []
        self._scheduled = False
        self._tasks: set[asyncio.Future[Any]] = set()
        self.rounds = 0
        self.scored = 0

    async def predict(
        self, request: ParsedRequest, request_id: str, t0: float
    ) -> tuple[Prediction, asyncio.Future[None]]:
        """Score one request; returns its answer and the completion of its round.

        The completion (shadow score, log rows) runs after the answers are handed
        back; await it after the response is sent so the request counts as
        ongoing until its log row is queued.
        """
        loop = asyncio.get_running_loop()
        call = _Call(request, request_id, t0, loop.create_future())
        self._waiting.append(call)
        if not self._scheduled:
            self._scheduled = True
            self._spawn(self._round())
        return await call.answer

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _round(self) -> None:
        """Take every waiting call; items arriving meanwhile start the next round."""
        self._scheduled = False
        calls, self._waiting = self._waiting, []
        for start in range(0, len(calls), self.max_rows):
            await self._score([c for c in calls[start : start + self.max_rows] if _live(c)])

    async def _score(self, calls: list[_Call]) -> None:
        if not calls:
            return
        try:
            predictions, pending = await self.service.predict(
                [c.request for c in calls],
                self.route,
                [c.request_id for c in calls],
                [c.t0 for c in calls],
            )
        except Exception as e:  # noqa: BLE001 - handed to the caller(s), as a lone call would be
            if len(calls) == 1:
                _settle(calls[0], error=e)
            else:
                for c in calls:
                    await self._score([c])
            return
        self.rounds += 1
        self.scored += len(calls)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for c, p in zip(calls, predictions, strict=True):
            _settle(c, answer=(p, done))
        # Scheduled after the callers resume, so their responses go out first.
        self._spawn(self._complete(pending, done))

    async def _complete(self, pending: Any, done: asyncio.Future[None]) -> None:
        try:
            await self.service.complete(pending)
        except Exception as e:  # noqa: BLE001 - raised to whoever awaits the round's completion
            done.set_exception(e)
        else:
            done.set_result(None)


def _live(call: _Call) -> bool:
    """Whether the caller still waits (a client that went away cancels its call)."""
    return not call.answer.done()


def _settle(
    call: _Call,
    *,
    answer: tuple[Prediction, asyncio.Future[None]] | None = None,
    error: BaseException | None = None,
) -> None:
    if call.answer.done():
        return
    if error is not None:
        call.answer.set_exception(error)
    else:
        call.answer.set_result(answer)  # type: ignore[arg-type]


async def after(completion: asyncio.Future[None]) -> None:
    """Wait for a round's completion (shielded: one caller's cancel must not cancel the round's)."""
    await asyncio.shield(completion)
