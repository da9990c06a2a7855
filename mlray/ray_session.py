"""Start or join the Ray cluster the settings name (local by default)."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from mlray.config import Settings

DASHBOARD_PORT = 8265


def ensure_ray(settings: Settings) -> None:
    """Connect to ``settings.ray.address`` or start a local Ray, once per process.

    Also makes Ray Data raise the original exception of a failing map
    function, so a typed mlray error raised in a task reaches the caller as itself.
    """
    import ray.data

    ray.data.DataContext.get_current().raise_original_map_exception = True
    if ray.is_initialized():
        return
    # Token auth prints a warning on every local start; local clusters bind to 127.0.0.1 only.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Ray Data starts 32 Parquet footer-reader actors per read by default: on a small
    # machine that is seconds of process start-up per read, for a few footers.
    os.environ.setdefault(
        "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", str(settings.ray.num_cpus or os.cpu_count() or 2)
    )
    kwargs: dict = {"logging_level": logging.WARNING, "log_to_driver": True}
    if settings.ray.address:
        kwargs["address"] = settings.ray.address
    else:
        kwargs.update(num_cpus=settings.ray.num_cpus, **dashboard_kwargs())
        if settings.ray.object_store_memory:
            kwargs["object_store_memory"] = settings.ray.object_store_memory
    ray.init(**kwargs)


def dashboard_kwargs(preferred: int = DASHBOARD_PORT) -> dict[str, Any]:
    """``ray.init`` arguments for a local cluster's dashboard on 127.0.0.1, its address given to every process.

    Ray Train's placement-group cleaner asks the state API (the dashboard)
    whether a run is still alive. Left to find a cluster on its own it can reach
    another Ray on the same host, conclude the run is dead and remove its workers.
    """
    port = dashboard_port(preferred)
    return {
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "dashboard_port": port,
        "runtime_env": {"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}},
    }


def dashboard_port(preferred: int = DASHBOARD_PORT) -> int:
    """Ray's usual dashboard port when it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free TCP port on 127.0.0.1 for the Ray dashboard")
