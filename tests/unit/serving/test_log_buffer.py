"""RowBuffer: hand-off on size, on time and on close; a failing sink loses only the overflow."""

from __future__ import annotations

import asyncio

from mlray.serving.log_buffer import RowBuffer
from mlray.serving.prediction_log import LogRow

LONG = 60.0  # an interval that never elapses within a test


def rows(*ids: int) -> list[LogRow]:
    return [
        LogRow(
            request_id=str(i),
            request_time_us=0,
            route="/predict",
            model_name="m",
            entities={},
            context={},
            features={},
            feature_event_times={},
            missing_features=[],
            score=0.5,
            model_version="1",
            latency_ms=1.0,
            degraded=False,
        )
        for i in ids
    ]


def ids(batch: list[LogRow]) -> list[int]:
    return [int(r.request_id) for r in batch]


class Sink:
    """Records each batch; fails while ``failing`` is above zero (one failure per call)."""

    def __init__(self, failing: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.failing = failing

    async def __call__(self, batch: list[LogRow]) -> None:
        if self.failing:
            self.failing -= 1
            raise ConnectionError("committer unreachable")
        self.batches.append(ids(batch))


def buffer(sink: Sink, *, batch_rows: int = 100, interval_s: float = LONG, **kw) -> RowBuffer:
    return RowBuffer(sink, batch_rows=batch_rows, interval_s=interval_s, name="test", **kw)


async def settle() -> None:
    """Let the tasks the buffer started run."""
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_full_batch_is_handed_off_at_once() -> None:
    async def main() -> None:
        sink = Sink()
        buf = buffer(sink, batch_rows=3, max_rows=1_000)
        buf.add(rows(0, 1))
        await settle()
        assert sink.batches == [] and len(buf.rows) == 2
        buf.add(rows(2))
        await settle()
        assert sink.batches == [[0, 1, 2]]
        assert buf.stats() == {"pending": 0, "handed_off": 3, "dropped": 0, "failures": 0}
        await buf.close()

    asyncio.run(main())


def test_waiting_rows_are_handed_off_after_the_interval() -> None:
    async def main() -> None:
        sink = Sink()
        buf = buffer(sink, interval_s=0.01, max_rows=1_000)
        buf.add(rows(0))
        await settle()
        assert sink.batches == []
        await asyncio.sleep(0.1)
        assert sink.batches == [[0]] and buf.handed_off == 1
        await buf.close()

    asyncio.run(main())


def test_a_failed_hand_off_keeps_the_rows_in_order_for_the_next_flush() -> None:
    async def main() -> None:
        sink = Sink(failing=1)
        depths: list[int] = []
        buf = buffer(sink, max_rows=1_000, on_depth=depths.append)
        buf.add(rows(0, 1))
        assert await buf.flush() == 0
        assert buf.rows and ids(buf.rows) == [0, 1] and buf.failures == 1
        buf.add(rows(2))
        assert await buf.flush() == 3
        assert sink.batches == [[0, 1, 2]]
        assert buf.stats() == {"pending": 0, "handed_off": 3, "dropped": 0, "failures": 1}
        assert depths == [2, 0]  # after each flush: 2 kept, then none
        await buf.close()

    asyncio.run(main())


def test_the_periodic_flush_retries_after_a_failure() -> None:
    async def main() -> None:
        sink = Sink(failing=2)
        buf = buffer(sink, interval_s=0.01, max_rows=1_000)
        buf.add(rows(0, 1))
        await asyncio.sleep(0.2)
        assert sink.batches == [[0, 1]] and buf.failures == 2 and buf.rows == []
        await buf.close()

    asyncio.run(main())


def test_beyond_max_rows_the_oldest_are_dropped_and_counted() -> None:
    async def main() -> None:
        sink = Sink(failing=2)
        buf = buffer(sink, max_rows=3)
        buf.add(rows(0, 1, 2, 3, 4))
        assert await buf.flush() == 0
        assert ids(buf.rows) == [2, 3, 4] and buf.dropped == 2
        buf.add(rows(5, 6))
        assert await buf.flush() == 0
        assert ids(buf.rows) == [4, 5, 6] and buf.dropped == 4
        assert await buf.flush() == 3
        assert sink.batches == [[4, 5, 6]]
        assert buf.stats() == {"pending": 0, "handed_off": 3, "dropped": 4, "failures": 2}

    asyncio.run(main())


def test_close_hands_off_what_is_left_and_stops() -> None:
    async def main() -> None:
        sink = Sink()
        buf = buffer(sink, max_rows=1_000)
        buf.add(rows(0, 1))
        assert await buf.close() == 0
        assert sink.batches == [[0, 1]] and buf._task is None
        buf.start()  # closed: no periodic flush comes back
        assert buf._task is None

    asyncio.run(main())


def test_close_reports_the_rows_it_could_not_hand_off() -> None:
    async def main() -> None:
        sink = Sink(failing=1)
        buf = buffer(sink, max_rows=1_000)
        buf.add(rows(0, 1, 2))
        assert await buf.close() == 3
        assert sink.batches == [] and ids(buf.rows) == [0, 1, 2]

    asyncio.run(main())


def test_an_empty_flush_does_not_call_the_sink() -> None:
    async def main() -> None:
        sink = Sink(failing=1)
        buf = buffer(sink, max_rows=1_000)
        assert await buf.flush() == 0
        assert sink.failing == 1 and buf.failures == 0

    asyncio.run(main())


class Gone:
    """A committer that was deleted first: a hand-off to it never answers."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, batch: list[LogRow]) -> None:
        self.calls += 1
        await asyncio.Event().wait()


def test_close_gives_a_stuck_hand_off_its_grace_then_the_new_sink_gets_every_row_once() -> None:
    async def main() -> None:
        gone = Gone()
        buf = buffer(gone, batch_rows=2, max_rows=1_000)  # type: ignore[arg-type]
        buf.add(rows(0, 1))  # a full batch: its hand-off starts and hangs
        await settle()
        buf.add(rows(2))
        assert gone.calls == 1
        direct = Sink()
        buf.sink = direct
        assert await buf.close(grace_s=0.05) == 0
        assert direct.batches == [[0, 1, 2]]
        assert buf.stats() == {"pending": 0, "handed_off": 3, "dropped": 0, "failures": 0}

    asyncio.run(main())


def test_close_waits_for_a_hand_off_that_answers_within_the_grace() -> None:
    async def main() -> None:
        sink = Sink()
        slow_done = asyncio.Event()

        async def slow(batch: list[LogRow]) -> None:
            await asyncio.sleep(0.05)
            await sink(batch)
            slow_done.set()

        buf = buffer(slow, batch_rows=2, max_rows=1_000)  # type: ignore[arg-type]
        buf.add(rows(0, 1))
        await settle()
        buf.add(rows(2))
        buf.sink = sink
        assert await buf.close(grace_s=5.0) == 0
        assert slow_done.is_set() and sink.batches == [[0, 1], [2]]  # no row twice

    asyncio.run(main())
