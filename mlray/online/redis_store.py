"""The Redis online store (redis-py, hiredis): pooled connections, one-trip reads, scripted writes.

Layout: :mod:`mlray.online.codec` (one small string per view and entity).
Writes go through one Lua script per batch of entities (EVALSHA,
``write_batch`` keys per call, a few calls per round trip) that keeps, per
key, the row with the greatest ``(event_time, available_time)``: a backfill
never overwrites newer values, a correction (same event time, later
availability) does, and an identical rewrite changes nothing, so
materializing twice gives the same contents. The same ``SET`` sets the
expiry to ``event_time + ttl`` (``PXAT``; ``SET ... GET`` and ``PXAT`` need
Redis 6.2+ or Valkey; Redis drops a key once its clock passes that
millisecond); reads also check the TTL to the microsecond.

Reads send one ``MGET`` of every key of the request and parse one reply. On
a Redis Cluster keys are grouped by hash slot (the entity's hash tag, so all
views of one entity share one) into one ``MGET`` per slot, pipelined, and
each script call carries keys of one slot only.

Every call is bounded by ``redis.timeout_s``; failures surface as
:class:`~mlray.errors.BackendUnavailable` naming the server (password hidden).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
import numpy as np
import pyarrow as pa
import redis
import redis.cluster
from redis.backoff import NoBackoff
from redis.retry import Retry

from mlray.errors import BackendUnavailable, ConfigError, MlrayError, SchemaError
from mlray.features.feature_view import AVAILABLE_TIME, EVENT_TIME, FeatureView
from mlray.features.times import epoch_us
from mlray.online.codec import KeyEncoder, ViewCodec
from mlray.online.embedded import client_name
from mlray.online.protocol import StoredRow, ViewState, WriteStats
from mlray.online.redis_scripts import STATE_LUA, WRITE_LUA
from mlray.online.redis_target import RedisTarget

_STATE_FIELDS = ("newest", "watermark", "materialized_at", "version", "last_applied")
_PIPELINE_DEPTH = 4  # script calls per round trip while writing


class _ViewIO:
    """Per-view key encoder and codec, built once per store."""

    def __init__(self, namespace: str, view: FeatureView) -> None:
        self.keys = KeyEncoder(namespace, view)
        self.codec = ViewCodec(view)
        self.ttl_us = view.ttl_us


class RedisOnlineStore:
    """The :class:`~mlray.online.protocol.OnlineStore` on Redis or Redis Cluster.

    Args:
        target: connection parameters (see :func:`redis_target`).
    """

    def __init__(self, target: RedisTarget) -> None:
        self.target = target
        self._views: dict[str, tuple[FeatureView, _ViewIO]] = {}
        common: dict[str, Any] = {
            "socket_timeout": target.timeout_s,
            "socket_connect_timeout": target.timeout_s,
            "client_name": client_name(),
        }
        try:
            if target.cluster:
                self._client: Any = redis.cluster.RedisCluster.from_url(
                    target.url, max_connections=target.max_connections, **common
                )
                self._pool = None
            else:
                self._pool = redis.BlockingConnectionPool.from_url(
                    target.url,
                    max_connections=target.max_connections,
                    timeout=target.timeout_s,
                    retry=Retry(NoBackoff(), target.retries),
                    **common,
                )
                self._client = redis.Redis(connection_pool=self._pool)
        except (redis.RedisError, redis.cluster.RedisClusterException) as e:
            raise self._unavailable(e) from e
        except ValueError as e:
            raise ConfigError(
                f"redis.url {target.display_url!r} is not a valid Redis URL: {e}"
            ) from e
        self._write_sha: str | None = None

    # -- errors -----------------------------------------------------------------
    def _unavailable(self, e: BaseException) -> MlrayError:
        t = self.target
        if isinstance(
            e, (redis.AuthenticationError, redis.exceptions.AuthorizationError)
        ) or "NOAUTH" in str(e):
            return ConfigError(
                f"Redis at {t.display_url} refused the credentials: {e}. Put the user and "
                "password in redis.url (redis://USER:PASSWORD@HOST:PORT) or MLRAY_REDIS_URL."
            )
        if isinstance(e, redis.TimeoutError):
            return BackendUnavailable(
                f"Redis at {t.display_url} did not answer within redis.timeout_s="
                f"{t.timeout_s} s: {e}. Check the server's load or raise the timeout."
            )
        if t.url.startswith("unix://"):
            return BackendUnavailable(
                f"Redis at {t.display_url} is unreachable: {e}. That is a local socket (the "
                "embedded server is only reachable on its own machine and runs while a process "
                "uses it); on a multi-node Ray cluster set redis.url / MLRAY_REDIS_URL."
            )
        return BackendUnavailable(
            f"Redis at {t.display_url} is unreachable: {e}. Check redis.url / "
            "MLRAY_REDIS_URL, or unset it to use the embedded server."
        )

    def _view(self, view: FeatureView) -> _ViewIO:
        got = self._views.get(view.name)
        if got is None or got[0] is not view:
            got = (view, _ViewIO(self.target.namespace, view))
            self._views[view.name] = got
        return got[1]

    # -- transport ----------------------------------------------------------------
    def _roundtrip(self, cmds: Sequence[Sequence[object]]) -> list[Any]:
        """Send ``cmds`` in one pipeline and return their replies (error replies raise)."""
        if self.target.cluster:
            return self._cluster_roundtrip(cmds)
        # hiredis's stub types ``cmd`` as a 1-tuple (Tuple[X] rather than Tuple[X, ...]).
        packed = [hiredis.pack_command(tuple(c)) for c in cmds]  # type: ignore[arg-type]
        return self._exchange(b"".join(packed), len(cmds))

    def _exchange(self, payload: bytes, n_replies: int) -> list[Any]:
        """One write of pre-packed commands, then their replies (a single-node server)."""
        pool = self._pool
        assert pool is not None
        for attempt in range(self.target.retries + 1):
            try:
                conn = pool.get_connection()
            except redis.RedisError as e:
                raise self._unavailable(e) from e
            try:
                conn.send_packed_command([payload], check_health=False)
                read = conn.read_response
                return [read() for _ in range(n_replies)]
            except redis.TimeoutError as e:
                conn.disconnect()
                raise self._unavailable(e) from e
            except redis.ConnectionError as e:  # a dropped pooled connection: reconnect once
                conn.disconnect()
                # A dropped connection mostly means the server restarted: every idle pooled
                # connection is stale too, and each would fail one more request.
                pool.disconnect(inuse_connections=False)
                if attempt == self.target.retries or isinstance(e, redis.AuthenticationError):
                    raise self._unavailable(e) from e
            except BaseException:
                conn.disconnect()  # unread replies would poison the next user of this connection
                raise
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")

    def _cluster_roundtrip(self, cmds: Sequence[Sequence[object]]) -> list[Any]:
        try:
            pipe = self._client.pipeline()
            for c in cmds:
                pipe.execute_command(*c)
            return pipe.execute()
        except (
            redis.ConnectionError,
            redis.TimeoutError,
            redis.cluster.RedisClusterException,
            redis.exceptions.ClusterDownError,
        ) as e:
            raise self._unavailable(e) from e

    def ping(self) -> None:
        """Raise :class:`BackendUnavailable` unless the server answers."""
        self._roundtrip([("PING",)])

    # -- reads ------------------------------------------------------------------
    def read(
        self, requests: Sequence[tuple[FeatureView, Sequence[Sequence[object]]]]
    ) -> list[list[StoredRow | None]]:
        """Stored rows per (view, entity keys), in one round trip.

        Raises:
            SchemaError: a join key value has the wrong type.
            BackendUnavailable: Redis is down or slower than the timeout.
        """
        ios = [self._view(view) for view, _ in requests]
        keys: list[str] = []
        for io, (_, ks) in zip(ios, requests, strict=True):
            enc = io.keys
            if enc.single_int:
                p = enc.prefix
                keys.extend([f"{p}{{{k[0]}}}" if type(k[0]) is int else enc.key(k) for k in ks])
            else:
                keys.extend([enc.key(k) for k in ks])
        if not keys:
            return [[] for _ in requests]
        try:
            values = (
                self._cluster_mget(keys)
                if self.target.cluster
                else self._roundtrip([("MGET", *keys)])[0]
            )
        except redis.ResponseError as e:
            raise SchemaError(
                f"A key under {self.target.namespace!r} does not hold an mlray row ({e}); another "
                "application writes there. Give mlray its own redis.key_prefix."
            ) from e
        out: list[list[StoredRow | None]] = []
        pos = 0
        for io, (_, ks) in zip(ios, requests, strict=True):
            out.append(io.codec.decode_many(values[pos : pos + len(ks)]))
            pos += len(ks)
        return out

    def _cluster_mget(self, keys: list[str]) -> list[bytes | None]:
        """One MGET per hash slot (a multi-key command must stay in one slot), pipelined."""
        from redis.crc import key_slot

        by_slot: dict[int, list[int]] = {}
        for i, k in enumerate(keys):
            by_slot.setdefault(key_slot(k.encode()), []).append(i)
        groups = list(by_slot.values())
        replies = self._cluster_roundtrip([("MGET", *[keys[i] for i in idx]) for idx in groups])
        out: list[bytes | None] = [None] * len(keys)
        for idx, vals in zip(groups, replies, strict=True):
            for i, v in zip(idx, vals, strict=True):
                out[i] = v
        return out

    # -- writes -------------------------------------------------------------------
    def write(self, view: FeatureView, rows: pa.Table, now_us: int) -> WriteStats:
        """Conditionally upsert the latest rows of ``view`` (see the module docstring).

        Rows whose TTL has passed at ``now_us`` are not sent (Redis would drop them at once).
        """
        io = self._view(view)
        n_in = rows.num_rows
        et = _micros(rows.column(EVENT_TIME))
        at = _micros(rows.column(AVAILABLE_TIME))
        if io.ttl_us is not None and n_in:
            keep = et + io.ttl_us > now_us
            if not keep.all():
                rows, et, at = rows.filter(pa.array(keep)), et[keep], at[keep]
        n = rows.num_rows
        script_ttl = 0 if io.ttl_us is None else io.ttl_us  # the script's "no expiry" is 0
        applied, same = self._write_rows(
            io.keys.keys_of(rows), io.codec.encode(rows, et, at), script_ttl
        )
        return WriteStats(
            n, applied, same, n - applied - same, n_in - n, int(et.max()) if n else None
        )

    def _write_rows(self, keys: list[bytes], values: list[bytes], ttl_us: int) -> tuple[int, int]:
        """(rows written, rows already stored identically)."""
        if not keys:
            return 0, 0
        size = self.target.write_batch
        batches = (
            _slot_batches(keys, size)
            if self.target.cluster
            else [range(s, min(s + size, len(keys))) for s in range(0, len(keys), size)]
        )
        applied = same = 0
        for s in range(0, len(batches), _PIPELINE_DEPTH):
            cmds = []
            for idx in batches[s : s + _PIPELINE_DEPTH]:
                if isinstance(idx, range):
                    cmds.append(
                        (
                            "EVALSHA",
                            self._sha(),
                            len(idx),
                            *keys[idx.start : idx.stop],
                            ttl_us,
                            *values[idx.start : idx.stop],
                        )
                    )
                else:
                    cmds.append(
                        (
                            "EVALSHA",
                            self._sha(),
                            len(idx),
                            *[keys[i] for i in idx],
                            ttl_us,
                            *[values[i] for i in idx],
                        )
                    )
            for a, b in self._run_scripts(cmds):
                applied, same = applied + a, same + b
        return applied, same

    def _sha(self) -> str:
        if self._write_sha is None:
            self._write_sha = self._load_script(WRITE_LUA)
        return self._write_sha

    def _load_script(self, body: str) -> str:
        try:
            return self._client.script_load(body)
        except (redis.RedisError, redis.cluster.RedisClusterException) as e:
            raise self._unavailable(e) from e

    def _run_scripts(self, cmds: list[tuple]) -> list[list[int]]:
        try:
            return self._roundtrip(cmds)
        except (
            redis.exceptions.NoScriptError
        ):  # the server restarted or flushed its script cache: load and redo
            self._write_sha = None
            sha = self._sha()
            return self._roundtrip([(c[0], sha, *c[2:]) for c in cmds])
        except redis.ResponseError as e:
            if "syntax error" in str(e).lower():
                raise ConfigError(
                    f"Redis at {self.target.display_url} rejected SET ... PXAT/GET ({e}): the "
                    "online store needs Redis 6.2 or later (or Valkey)."
                ) from e
            raise SchemaError(
                f"The conditional write failed under {self.target.namespace!r}: {e}. A key there "
                "holds something else than an mlray row; use a separate redis.key_prefix."
            ) from e

    # -- per-view state -------------------------------------------------------------
    def _state_key(self, view: str) -> str:
        return f"{self.target.namespace}@meta:{view}"

    def get_state(self, view: str) -> ViewState:
        """The view's bookkeeping hash (empty if never materialized)."""
        (reply,) = self._roundtrip([("HMGET", self._state_key(view), *_STATE_FIELDS)])
        vals = [None if v is None else int(v) for v in reply]
        return ViewState(vals[0], vals[1], vals[2], vals[3], vals[4] or 0)

    def update_state(self, view: str, state: ViewState) -> None:
        """Merge ``state``: newest event time and watermark only move forward."""
        args = [
            "" if v is None else str(v)
            for v in (
                state.newest_event_us,
                state.watermark_us,
                state.materialized_at_us,
                state.table_version,
                state.last_applied,
            )
        ]
        sha = self._load_script(STATE_LUA)
        self._roundtrip([("EVALSHA", sha, 1, self._state_key(view), *args)])

    def close(self) -> None:
        """Close every pooled connection."""
        if self._pool is not None:
            self._pool.disconnect()
        else:
            self._client.close()


def _micros(col: pa.ChunkedArray) -> np.ndarray:
    return epoch_us(col).to_numpy(zero_copy_only=False)


def _slot_batches(keys: list[bytes], size: int) -> list[list[int]]:
    """Row indices grouped by cluster hash slot, then cut to ``size``.

    A script may touch the keys of one slot only.
    """
    from redis.crc import key_slot

    by_slot: dict[int, list[int]] = {}
    for i, k in enumerate(keys):
        by_slot.setdefault(key_slot(k), []).append(i)
    return [idx[s : s + size] for idx in by_slot.values() for s in range(0, len(idx), size)]
