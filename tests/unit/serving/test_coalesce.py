"""Coalescer: concurrent single calls are scored in one round; each caller gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from mlray.errors import SchemaError
from mlray.serving.coalesce import Coalescer, after
from mlray.serving.schemas import Prediction
from mlray.serving.service import ParsedRequest


class Recorder:
    """Scores ``user_id / 100``; a request with ``user_id < 0`` fails its whole call."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.events: list[str] = []
        self.completed: list[list[str]] = []

    async def predict(
        self,
        requests: Sequence[ParsedRequest],
        route: str,
        request_ids: Sequence[str],
        t0s: Sequence[float],
    ) -> tuple[list[Prediction], Any]:
        users = [r.entities["user_id"] for r in requests]
        self.calls.append(users)
        if any(u < 0 for u in users):
            raise SchemaError("entities.user_id must not be negative")
        preds = [
            Prediction(score=u / 100, model_version="1", request_id=rid, missing_features=[])
            for u, rid in zip(users, request_ids, strict=True)
        ]
        return preds, list(request_ids)

    async def complete(self, pending: Any) -> None:
        self.events.append("complete")
        self.completed.append(pending)


def request(user: int) -> ParsedRequest:
    return ParsedRequest({"user_id": user, "item_id": 1}, {}, None)


async def call(c: Coalescer, rec: Recorder, user: int) -> Prediction:
    prediction, done = await c.predict(request(user), f"r{user}", 0.0)
    rec.events.append(f"answer {user}")
    await after(done)
    return prediction


def test_concurrent_calls_are_scored_in_one_round_and_completed_after_the_answers() -> None:
    async def main() -> None:
        rec = Recorder()
        c = Coalescer(rec, "/predict", max_rows=64)
        got = await asyncio.gather(*(call(c, rec, u) for u in range(5)))
        assert [p.score for p in got] == [0.0, 0.01, 0.02, 0.03, 0.04]
        assert [p.request_id for p in got] == ["r0", "r1", "r2", "r3", "r4"]
        assert rec.calls == [[0, 1, 2, 3, 4]]
        assert rec.completed == [["r0", "r1", "r2", "r3", "r4"]]
        assert rec.events == [f"answer {u}" for u in range(5)] + ["complete"]
        assert (c.rounds, c.scored) == (1, 5)

    asyncio.run(main())


def test_a_lone_call_is_scored_at_once_and_a_round_holds_at_most_max_rows() -> None:
    async def main() -> None:
        rec = Recorder()
        c = Coalescer(rec, "/predict", max_rows=2)
        assert (await call(c, rec, 7)).score == 0.07
        await asyncio.gather(*(call(c, rec, u) for u in range(5)))
        assert rec.calls == [[7], [0, 1], [2, 3], [4]]

    asyncio.run(main())


def test_a_failing_round_is_retried_one_by_one_so_only_the_bad_call_fails() -> None:
    async def main() -> None:
        rec = Recorder()
        c = Coalescer(rec, "/predict", max_rows=64)
        got = await asyncio.gather(*(call(c, rec, u) for u in (1, -1, 2)), return_exceptions=True)
        assert isinstance(got[0], Prediction) and got[0].score == 0.01
        assert isinstance(got[1], SchemaError) and "user_id" in str(got[1])
        assert isinstance(got[2], Prediction) and got[2].score == 0.02
        assert rec.calls == [[1, -1, 2], [1], [-1], [2]]
        assert rec.completed == [["r1"], ["r2"]]

    asyncio.run(main())


def test_a_cancelled_caller_is_left_out_of_the_round() -> None:
    async def main() -> None:
        rec = Recorder()
        c = Coalescer(rec, "/predict", max_rows=64)
        gone = asyncio.ensure_future(call(c, rec, 3))
        kept = asyncio.ensure_future(call(c, rec, 4))
        await asyncio.sleep(0)  # both are waiting for the round
        gone.cancel()
        assert (await kept).score == 0.04
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert rec.calls == [[4]]

    asyncio.run(main())
