"""The online store: latest feature values per entity in Redis, materialized from the offline tables.

Public names (imported lazily so ``import mlray.online.commands`` stays cheap):
:class:`OnlineStore` (the protocol), :class:`RedisOnlineStore`,
:func:`redis_target`, :class:`EmbeddedRedis`, :func:`materialize`,
:class:`MaterializeResult`, :class:`OnlineFeatures`, :class:`ViewFreshness`.
Most users go through :class:`mlray.store.FeatureStore` instead.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OnlineStore": "protocol",
    "StoredRow": "protocol",
    "ViewState": "protocol",
    "WriteStats": "protocol",
    "RedisOnlineStore": "redis_store",
    "RedisTarget": "redis_store",
    "redis_target": "redis_store",
    "EmbeddedRedis": "embedded",
    "materialize": "materialize",
    "MaterializeResult": "materialize",
    "OnlineFeatures": "reader",
    "OnlineReader": "reader",
    "ViewFreshness": "freshness",
}

__all__ = list(_EXPORTS)  # the lazily exported names


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlray.online' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mlray.online.{module}"), name)
