"""Staged writes: rows computed, checked and written first, committed after, or dropped.

:class:`~mlray.offline.delta_store.OfflineStore` stages a write (every row
computed by Ray, checked against the view's fields, written to data files)
and then commits it with :meth:`StagedWrite.commit`. Nothing is committed
before that: a failure, values the fields forbid, or an interrupt (Ctrl-C,
raised in the thread that pulls the rows from Ray) drop the write.

Delta's predicate overwrite (``write_deltalake``) commits as soon as its
input stream ends, and it reads that stream on a thread of Delta's runtime,
where Python never raises ``KeyboardInterrupt``. :class:`Feed` therefore
keeps the stream open after the last row until the write is released or
aborted.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import pyarrow as pa

from mlray.errors import MlrayError, SchemaError, find_mlray_error
from mlray.features.feature_view import FeatureView, Field


@dataclass(frozen=True)
class WriteResult:
    view: str
    version: int
    rows: int


class StagedWrite:
    """One view's rows, computed, checked and written to data files, not committed yet."""

    def __init__(
        self,
        view: str,
        rows: int,
        commit: Callable[[], bool],
        version: Callable[[], int],
        *,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self.view, self.rows = view, rows
        self._commit, self._version, self._release = commit, version, release

    def commit(self) -> WriteResult:
        """Commit (atomically); once begun, the commit runs to its end.

        Raises:
            InterruptedAfterCommit: Ctrl-C came while the commit was under way;
                it completed (``.result``), then the interrupt goes on.
        """
        self._release()
        with typed_errors():
            interrupted = self._commit()
            result = WriteResult(self.view, self._version(), self.rows)
        if interrupted:
            raise InterruptedAfterCommit(result)
        return result


class InterruptedAfterCommit(KeyboardInterrupt):
    """A ``KeyboardInterrupt`` that came while a commit was under way, raised once it completed."""

    def __init__(self, result: WriteResult) -> None:
        super().__init__(f"interrupted after committing version {result.version} of {result.view}")
        self.result = result


@contextmanager
def typed_errors() -> Iterator[None]:
    """Re-raise the mlray error that Ray or Delta wrapped (or flattened into its message)."""
    try:
        yield
    except Exception as e:
        err = find_mlray_error(e)
        if err is not None and err is not e:
            raise err from e
        raise


DRAINED = object()  # queued after the last batch


class _Abandoned(MlrayError):
    """Ends the stream of an aborted write, so that Delta commits nothing."""


class Feed:
    """The rows of one ``write_deltalake`` call, which reads them on a thread of its own.

    The calling thread pulls the rows from Ray and :meth:`put` s them; after the
    last one the stream stays open until :meth:`release` (commit) or
    :meth:`abort` (end with an error: Delta commits nothing).
    """

    def __init__(self, schema: pa.Schema, view: str) -> None:
        self.schema, self.view = schema, view
        self._queue: queue.Queue[object] = queue.Queue(maxsize=2)
        self._verdict = threading.Event()
        self._commit = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self, write: Callable[[pa.RecordBatchReader], object]) -> None:
        reader = pa.RecordBatchReader.from_batches(self.schema, self._stream())

        def run() -> None:
            try:
                write(reader)
            except BaseException as e:  # noqa: BLE001 - handed to the calling thread
                self._error = e

        self._thread = threading.Thread(target=run, name=f"mlray-write-{self.view}", daemon=True)
        self._thread.start()

    def _stream(self) -> Iterator[pa.RecordBatch]:
        while (item := self._queue.get()) is not DRAINED:
            yield from cast(pa.Table, item).to_batches()
        self._verdict.wait()
        if not self._commit:
            raise _Abandoned(f"Write to feature view {self.view!r} abandoned; nothing committed.")

    def put(self, item: object) -> None:
        """Queue a table (or :data:`DRAINED`); the writer's error if it has stopped."""
        assert self._thread is not None
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise self._failure() from self._error

    def release(self) -> None:
        self._commit = True
        self._verdict.set()

    def abort(self) -> None:
        """End the stream with an error (queued rows are dropped) and let the writer stop."""
        self._commit = False
        self._verdict.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put_nowait(DRAINED)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def finish(self) -> bool:
        """Wait for the released writer's commit, even through a ``KeyboardInterrupt``.

        Returns:
            Whether a ``KeyboardInterrupt`` came meanwhile.
        """
        assert self._thread is not None
        interrupted = False
        while self._thread.is_alive():
            try:
                self._thread.join()
            except KeyboardInterrupt:
                interrupted = True
        if self._error is not None:
            raise self._failure() from self._error
        return interrupted

    def _failure(self) -> BaseException:
        if self._error is None:
            return RuntimeError(f"The Delta writer of feature view {self.view!r} stopped.")
        return find_mlray_error(self._error) or self._error


def violations(fields: Sequence[Field], table: pa.Table) -> Counter[tuple[str, str]]:
    """Rows of ``table`` breaking each field's declared constraints, by (column, rule)."""
    return Counter(
        {
            (f.name, rule): n
            for f in fields
            for rule, n in f.violations(table.column(f.name)).items()
        }
    )


def refuse_violations(view: FeatureView, bad: Counter[tuple[str, str]]) -> None:
    if bad:
        found = "; ".join(
            f"column {c!r}: {n} row(s) {rule}" for (c, rule), n in sorted(bad.items())
        )
        raise SchemaError(
            f"Rows for feature view {view.name!r} break its declared fields: {found}. Nothing "
            "was committed; fix the transform (or the ingested data), or relax the Field."
        )
