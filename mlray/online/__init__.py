"""The online store: latest feature values per entity in Redis, read in one round trip.

Public names (imported lazily so importing a light module of the package stays cheap):
:class:`OnlineStore` (the protocol), :func:`open_online_store` (the one factory),
:class:`RedisOnlineStore`, :func:`redis_target`, :class:`EmbeddedRedis`,
:class:`OnlineReader`, :class:`OnlineFeatures`, :class:`ViewFreshness`.
Materialization (offline tables into this store) lives above both stores, in
:mod:`mlray.store.materialize`. Most users go through :class:`mlray.store.FeatureStore`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OnlineStore": "protocol",
    "StoredRow": "protocol",
    "ViewState": "protocol",
    "WriteStats": "protocol",
    "open_online_store": "factory",
    "pin_online_store": "factory",
    "RedisOnlineStore": "redis_store",
    "RedisTarget": "redis_target",
    "redis_target": "redis_target",
    "EmbeddedRedis": "embedded",
    "OnlineFeatures": "reader",
    "OnlineReader": "reader",
    "ReadPlan": "reader",
    "build_plan": "reader",
    "ViewFreshness": "freshness",
    "view_freshness": "freshness",
}

__all__ = list(_EXPORTS)  # the lazily exported names


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlray.online' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mlray.online.{module}"), name)
