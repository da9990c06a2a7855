"""The local dashboard port: Ray's usual one when free, another free one when something holds it."""

from __future__ import annotations

import socket

from mlray.ray_session import dashboard_port


def test_dashboard_port_is_the_preferred_one_when_free_else_another_free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert dashboard_port(free) == free
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free))
        holder.listen()
        other = dashboard_port(free)
        assert other != free
        with socket.socket() as check:
            check.bind(("127.0.0.1", other))  # and it really is free
