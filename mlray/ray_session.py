"""Start or join the Ray cluster the settings name (local by default).

Besides :mod:`mlray.config` (which reads mlray's own ``MLRAY_*`` variables),
this is the one module that touches the process environment: the variables
Ray itself reads when it starts processes.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from mlray.config import Settings

DASHBOARD_PORT = 8265
TRAIN_POLL_INTERVAL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
_verbose = False


def set_verbose(verbose: bool) -> None:
    """Show Ray's own output on the console (``--verbose``), or only warnings and live progress.

    Quiet (the default): Ray Data's INFO lines (execution plans, tips) stay in
    its log file, only the global progress bar of a long execution is drawn,
    and worker processes' logs stay in Ray's log files (``/tmp/ray/session_latest/logs``).
    Call it at the edge (CLI, quickstart, jobs) before Ray starts.
    """
    global _verbose
    _verbose = verbose
    _apply_output()


def _apply_output() -> None:
    import ray.data

    verbose = _verbose
    # MLflow draws a progress bar per artifact download; Serve logs each deployment step.
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "true" if verbose else "false"
    logging.getLogger("ray.serve").setLevel(logging.INFO if verbose else logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_operator_progress_bars = verbose
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
            handler.setLevel(logging.INFO if verbose else logging.WARNING)
            if not any(isinstance(f, _NoBarNotices) for f in handler.filters):
                handler.addFilter(_NoBarNotices())


class _NoBarNotices(logging.Filter):
    """Drops Ray Data's notice that the progress bars we turned off are off (quiet mode only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _verbose or not record.getMessage().startswith("Progress bars")


def set_train_poll_interval(seconds: float) -> None:
    """How often Ray Train's controller polls its workers, for the runs this process starts.

    The controller reads it from the environment it inherits when a run starts;
    Ray's default (2 s) adds up to 2 s to every run, since the end of training
    is noticed at the next poll.
    """
    os.environ[TRAIN_POLL_INTERVAL_ENV] = str(seconds)


def ensure_ray(settings: Settings) -> None:
    """Connect to ``settings.ray.address`` or start a local Ray, once per process.

    Also makes Ray Data raise the original exception of a failing map
    function, so a typed mlray error raised in a task reaches the caller as itself.
    """
    import ray.data

    ray.data.DataContext.get_current().raise_original_map_exception = True
    _apply_output()
    if ray.is_initialized():
        return
    # Token auth prints a warning on every local start; local clusters bind to 127.0.0.1 only.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Ray Data starts 32 Parquet footer-reader actors per read by default: on a small
    # machine that is seconds of process start-up per read, for a few footers.
    os.environ.setdefault(
        "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", str(settings.ray.num_cpus or os.cpu_count() or 2)
    )
    kwargs: dict = {"logging_level": logging.WARNING, "log_to_driver": _verbose}
    if settings.ray.address:
        kwargs["address"] = settings.ray.address
    else:
        kwargs.update(num_cpus=settings.ray.num_cpus, **dashboard_kwargs())
        if settings.ray.object_store_memory:
            kwargs["object_store_memory"] = settings.ray.object_store_memory
    ray.init(**kwargs)


def dashboard_kwargs(preferred: int = DASHBOARD_PORT) -> dict[str, Any]:
    """``ray.init`` arguments for a local cluster's dashboard on 127.0.0.1.

    The dashboard's address is given to every process.

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
