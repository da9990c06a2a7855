"""Online features for the serving path: the online reader with a policy for a store that is down.

The read is the feature store's own (:class:`mlray.online.reader.OnlineReader`):
the same TTL rule, defaults and request-time transforms as training sets.
When the store fails, the configured policy applies at once, without waiting
on the store again for ``store_retry_s`` (a breaker): ``fail`` raises
:class:`~mlray.errors.BackendUnavailable` (the ingress answers 503) and
``degraded`` serves every stored feature's default, flagged. After the
pause the next request tries the store again, so serving recovers by itself
when the store is back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from mlray.errors import BackendUnavailable
from mlray.features.feature_view import FeatureView
from mlray.features.repository import FeatureRepository
from mlray.online.protocol import OnlineStore, StoredRow, ViewState, WriteStats
from mlray.online.reader import OnlineFeatures, OnlineReader


class _NoRows:
    """An online store with nothing in it: every read finds no row (the defaults are served)."""

    def read(
        self, requests: Sequence[tuple[FeatureView, Sequence[Sequence[object]]]]
    ) -> list[list[StoredRow | None]]:
        return [[None] * len(keys) for _, keys in requests]

    def write(self, view: FeatureView, rows: Any, now_us: int) -> WriteStats:
        raise BackendUnavailable("The degraded-mode store is read-only.")

    def get_state(self, view: str) -> ViewState:
        return ViewState()

    def update_state(self, view: str, state: ViewState) -> None:
        raise BackendUnavailable("The degraded-mode store is read-only.")

    def close(self) -> None:
        pass


class ServingFeatures:
    """Reads features for scoring, applying the store-down policy.

    Args:
        store: the online store (from :func:`mlray.online.open_online_store`).
        repo: the feature definitions.
        project: the project (a metrics tag).
        policy: ``fail`` or ``degraded``.
        retry_s: after a failure, how long requests skip the store.
    """

    def __init__(
        self,
        store: OnlineStore,
        repo: FeatureRepository,
        project: str,
        policy: Literal["fail", "degraded"],
        retry_s: float,
    ) -> None:
        self.store, self.policy, self.retry_s = store, policy, retry_s
        self.reader = OnlineReader(store, repo, project)
        self.defaults = OnlineReader(_NoRows(), repo, project)
        self.down_until = 0.0
        self.last_error: str | None = None

    def read(
        self,
        rows: Sequence[Mapping[str, Any]],
        refs: Sequence[str],
        request_time: datetime | None,
    ) -> tuple[OnlineFeatures, bool]:
        """Features of ``rows`` as of ``request_time``, and whether they are defaults (degraded).

        Raises:
            BackendUnavailable: the store is down and the policy is ``fail``.
            SchemaError: a row lacks a key or request field the features need.
        """
        if time.monotonic() >= self.down_until:
            try:
                return self.reader.read(rows, refs, request_time), False
            except BackendUnavailable as e:
                self.down_until = time.monotonic() + self.retry_s
                self.last_error = e.message
        if self.policy == "fail":
            raise BackendUnavailable(
                f"The online store is unavailable ({self.last_error}); retrying in at most "
                f"{self.retry_s:g} s."
            )
        return self.defaults.read(rows, refs, request_time), True

    @property
    def healthy(self) -> bool:
        """False while the store is in its failure pause."""
        return time.monotonic() >= self.down_until

    def close(self) -> None:
        self.store.close()
