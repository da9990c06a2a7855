"""Where and how mlray connects to Redis: the configured server, or the embedded one."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mlray.config import Settings
from mlray.errors import ConfigError
from mlray.online.embedded import ensure_embedded


@dataclass(frozen=True)
class RedisTarget:
    """Where and how to connect (picklable: Ray tasks open their own connections from it)."""

    url: str
    namespace: str
    timeout_s: float = 0.5
    max_connections: int = 64
    cluster: bool = False
    retries: int = 1
    write_batch: int = 500
    write_timeout_s: float = 30.0

    def for_writes(self) -> RedisTarget:
        """The same target with the (longer) bulk-write timeout: busy servers queue big batches."""
        return dataclasses.replace(self, timeout_s=max(self.timeout_s, self.write_timeout_s))

    @property
    def display_url(self) -> str:
        """The URL without its password."""
        return re.sub(r"//([^@/]*):([^@/]*)@", r"//\1:***@", self.url)


def redis_target(settings: Settings) -> RedisTarget:
    """The configured server, or the embedded one (started if needed)."""
    cfg = settings.redis
    url = cfg.url or ensure_embedded(settings)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"redis.url {url!r} must start with redis://, rediss:// (TLS) or unix://."
        )
    return RedisTarget(
        _with_ca_certs(url, cfg.ssl_ca_certs),
        f"{cfg.key_prefix}:{settings.project}:",
        cfg.timeout_s,
        cfg.max_connections,
        cfg.cluster,
        cfg.retries,
        cfg.write_batch,
        cfg.write_timeout_s,
    )


def _with_ca_certs(url: str, ca_certs: str | None) -> str:
    """``url`` with ``ssl_ca_certs=<ca_certs>`` in its query (redis-py reads TLS options there).

    Raises:
        ConfigError: a CA bundle for a URL that does not use TLS.
    """
    if ca_certs is None:
        return url
    if not url.startswith("rediss://"):
        shown = RedisTarget(url, "").display_url
        raise ConfigError(
            f"redis.ssl_ca_certs is {ca_certs!r}, but redis.url {shown!r} does not use TLS: "
            "use a rediss:// URL, or unset redis.ssl_ca_certs."
        )
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ssl_ca_certs"
    ]
    query.append(("ssl_ca_certs", ca_certs))
    return urlunsplit(parts._replace(query=urlencode(query, safe="/")))
