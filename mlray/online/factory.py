"""The one way to open the configured online store.

Everything that talks to the online store (the feature store, materialization,
serving) opens it here, from the settings' ``redis`` section, whose ``type``
names the backend.
"""

from __future__ import annotations

from collections.abc import Callable

from mlray.config import ONLINE_STORE_TYPES, Settings
from mlray.errors import ConfigError
from mlray.online.protocol import OnlineStore


def open_online_store(settings: Settings, *, bulk_writes: bool = False) -> OnlineStore:
    """Connect to the configured online store (starting the embedded server if it is the one).

    Args:
        settings: the settings; ``settings.redis.type`` picks the backend.
        bulk_writes: use the longer write timeout (materialization's writers).

    Raises:
        ConfigError: an unknown backend type or an invalid URL.
        BackendUnavailable: the server cannot be reached.
    """
    opener = _OPENERS.get(settings.redis.type)
    if opener is None:
        choices = ", ".join(repr(t) for t in ONLINE_STORE_TYPES)
        raise ConfigError(
            f"Unknown online store type {settings.redis.type!r} in redis.type; "
            f"choose one of: {choices}."
        )
    return opener(settings, bulk_writes)


def pin_online_store(settings: Settings) -> Settings:
    """The settings with the online store's location resolved, for Ray tasks that open their own.

    With no ``redis.url`` the embedded server is started here, once, and its
    URL written into the copy: a task then connects to that server instead of
    starting (and, at its exit, stopping) one of its own.
    """
    if settings.redis.url is not None:
        return settings
    from mlray.online.embedded import ensure_embedded

    redis = settings.redis.model_copy(update={"url": ensure_embedded(settings)})
    return settings.model_copy(update={"redis": redis})


def _open_redis(settings: Settings, bulk_writes: bool) -> OnlineStore:
    from mlray.online.redis_store import RedisOnlineStore
    from mlray.online.redis_target import redis_target

    target = redis_target(settings)
    return RedisOnlineStore(target.for_writes() if bulk_writes else target)


_OPENERS: dict[str, Callable[[Settings, bool], OnlineStore]] = {"redis": _open_redis}
