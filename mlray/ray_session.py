"""Start or join the Ray cluster the settings name (local by default).

Besides :mod:`mlray.config` (which reads mlray's own ``MLRAY_*`` variables),
this is the one module that touches the process environment: the variables
Ray itself reads when it starts processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlray.config import Settings
from mlray.errors import BackendUnavailable, ConfigError

DASHBOARD_PORT = 8265
TRAIN_POLL_INTERVAL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
# How long joining a cluster may take before BackendUnavailable, when no setting is passed
# (``ensure_ray`` passes ``ray.connect_timeout_s``).
CONNECT_TIMEOUT_S = 10.0
# How long a local start waits for another mlray process's start to leave its dashboard port.
START_LOCK_WAIT_S = 120.0
# Set by `ray job submit` in the environment of the job's entrypoint.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
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
    """Quiet mode only: drops Ray Data's notice that the progress bars we turned off are off,
    and its ERROR records (a failed execution's tracebacks, hundreds of lines): they stay
    in Ray Data's log file, and the CLI prints the error once, in one line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _verbose:
            return True
        return record.levelno < logging.ERROR and not record.getMessage().startswith(
            "Progress bars"
        )


def set_train_poll_interval(seconds: float) -> None:
    """How often Ray Train's controller polls its workers, for the runs this process starts.

    The controller reads it from the environment it inherits when a run starts;
    Ray's default (2 s) adds up to 2 s to every run, since the end of training
    is noticed at the next poll.
    """
    os.environ[TRAIN_POLL_INTERVAL_ENV] = str(seconds)


def ensure_ray(settings: Settings) -> None:
    """Connect to the cluster the settings name, or start a local Ray, once per process.

    The cluster is ``settings.ray.address``; with none (or ``auto``) a set
    ``RAY_ADDRESS`` wins, as in ``ray.init`` (``ray job submit`` sets it for a
    job's driver); with neither, a new local Ray starts. Call it before anything
    touches Ray Data: a ``ray.data.read_*`` would otherwise start a local Ray of
    its own and the address would be ignored. Also makes Ray Data raise the
    original exception of a failing map function, so a typed mlray error raised
    in a task reaches the caller as itself.

    Raises:
        ConfigError: the address is a dashboard URL (``http://...:8265``).
        BackendUnavailable: the cluster does not answer within
            :data:`CONNECT_TIMEOUT_S`; the message names the address.
    """
    import ray.data

    ray.data.DataContext.get_current().raise_original_map_exception = True
    _apply_output()
    if ray.is_initialized():
        return
    # Ray Data starts 32 Parquet footer-reader actors per read by default: on a small
    # machine that is seconds of process start-up per read, for a few footers.
    os.environ.setdefault(
        "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS", str(settings.ray.num_cpus or os.cpu_count() or 2)
    )
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": _verbose}
    address, source = cluster_address(settings)
    if address is None:
        _start_local(settings, kwargs)
    else:
        connect(address, source, kwargs, timeout_s=settings.ray.connect_timeout_s)


def cluster_address(settings: Settings) -> tuple[str | None, str]:
    """The cluster to join and where that came from; ``(None, ...)``: start a local one.

    ``ray.address`` wins unless it is unset or ``auto``; then ``RAY_ADDRESS``
    (what ``ray.init`` itself does).
    """
    configured = settings.ray.address
    from_env = os.environ.get("RAY_ADDRESS") or None
    if configured in (None, "auto") and from_env:
        return from_env, "RAY_ADDRESS"
    return configured, "ray.address"


def connect(
    address: str,
    source: str = "ray.address",
    kwargs: dict[str, Any] | None = None,
    timeout_s: float | None = None,
) -> None:
    """Join the cluster at ``address`` after checking, within ``timeout_s``, that it answers.

    ``timeout_s`` defaults to :data:`CONNECT_TIMEOUT_S`.

    ``ray.init`` alone retries an unreachable address for many minutes, deaf to
    SIGTERM; the checks here run before it, and while they wait this thread
    stays in Python, so Ctrl-C and SIGTERM still work.

    Raises:
        ConfigError: a dashboard URL instead of a cluster address.
        BackendUnavailable: nothing answers at ``address`` within ``timeout_s``.
    """
    import ray

    target = resolve_address(address, source)
    check_reachable(target, address, source, CONNECT_TIMEOUT_S if timeout_s is None else timeout_s)
    _check_rewritten(target, address, source, CONNECT_TIMEOUT_S if timeout_s is None else timeout_s)
    try:
        # "auto" as such: Ray then also picks up the local token of an auth-enabled cluster.
        ray.init(address="auto" if address == "auto" else target, **(kwargs or {}))
    except Exception as e:  # noqa: BLE001 - every failure to join is the cluster's
        raise unavailable(address, source, str(e)) from e


def resolve_address(address: str, source: str = "ray.address") -> str:
    """``host:port`` of the GCS (or ``ray://host:port``) that ``address`` names.

    ``auto`` is looked up the way Ray does (the cluster ``ray start`` last
    started on this machine).

    Raises:
        ConfigError: an ``http(s)://`` address (that is the dashboard, for ``ray job submit``).
        BackendUnavailable: ``auto`` and no Ray cluster runs on this machine.
    """
    scheme = address.split("://", 1)[0].lower() if "://" in address else ""
    if scheme in ("http", "https"):
        tip = (
            " For `ray job` commands export RAY_API_SERVER_ADDRESS instead."
            if source == "RAY_ADDRESS"
            else ""
        )
        raise ConfigError(
            f"{source} {address!r} is a dashboard URL (the one `ray job submit --address` "
            "takes); mlray joins a cluster through its GCS address host:6379 (what `ray "
            "start --head` prints), 'auto' for one on this machine, or ray://host:10001."
            f"{tip}"
        )
    if address != "auto":
        return address
    from ray._private.services import get_ray_address_from_environment

    try:
        found = get_ray_address_from_environment("auto", None)
    except ConnectionError as e:
        raise unavailable(address, source, "no Ray cluster runs on this machine") from e
    return str(found)


def check_reachable(target: str, address: str, source: str, timeout_s: float) -> None:
    """Raise :class:`BackendUnavailable` unless ``target`` accepts a connection (and, for a
    GCS address, answers as a Ray GCS) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    client = target.startswith("ray://")
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"{source} {address!r} is not host:port, 'auto' or ray://host:port; e.g. "
            "127.0.0.1:6379 (the address `ray start --head` prints)."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise unavailable(address, source, f"nothing accepts connections at {target} ({e})") from e
    if not client:
        _check_gcs(target, address, source, max(0.5, deadline - time.monotonic()))


def _check_rewritten(target: str, address: str, source: str, timeout_s: float) -> None:
    """Ray rewrites a loopback address to this machine's own IP before it connects; a head
    listening on 127.0.0.1 only (``ray start --head --node-ip-address=127.0.0.1``) would then
    leave ``ray.init`` retrying for minutes. Check the address Ray will really use."""
    if target.startswith("ray://"):
        return
    from ray._private.services import canonicalize_bootstrap_address

    used = canonicalize_bootstrap_address(target)
    if not used or used == target:
        return
    host, _, port = used.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise unavailable(
            address,
            source,
            f"Ray connects to {used} for {target} (this machine's own IP for a loopback "
            f"address) and nothing accepts connections there ({e}). Export "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 to keep a loopback cluster on 127.0.0.1, "
            "or start the head without --node-ip-address=127.0.0.1",
        ) from e


def _check_gcs(target: str, address: str, source: str, timeout_s: float) -> None:
    # Ray's GcsClient blocks (without the GIL) while it retries; a daemon thread bounds it.
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    outcome: dict[str, BaseException | None] = {}

    def probe() -> None:
        try:
            GcsClient(address=target)
            outcome["error"] = None
        except BaseException as e:  # noqa: BLE001 - reported to the waiting thread
            outcome["error"] = e

    worker = threading.Thread(target=probe, name="mlray-gcs-probe", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if "error" not in outcome:
        raise unavailable(
            address,
            source,
            f"{target} accepts connections but no Ray GCS answered within {timeout_s:.0f} s",
        )
    if outcome["error"] is not None:
        raise unavailable(address, source, str(outcome["error"])) from outcome["error"]


def unavailable(address: str, source: str, why: str) -> BackendUnavailable:
    """The error for a cluster that cannot be joined, with what to check."""
    hint = (
        "Check the address (the GCS host:port that `ray start --head` prints, 'auto' for a "
        "cluster on this machine, ray://host:10001 for Ray Client) and that the cluster runs, "
        "or unset ray.address to start a local Ray."
    )
    if any(w in why.lower() for w in ("auth", "401", "token")):
        hint = (
            "The cluster has token authentication on: set RAY_AUTH_MODE=token and give the "
            "token (RAY_AUTH_TOKEN, or ~/.ray/auth_token; `ray get-auth-token` prints it)."
        )
    return BackendUnavailable(f"Cannot join the Ray cluster at {source} {address!r}: {why}. {hint}")


def _start_local(settings: Settings, kwargs: dict[str, Any]) -> None:
    import ray

    # Token auth prints a warning on every local start, and a local start with auth
    # writes ~/.ray/auth_token, which turns auth on for every later `ray start` of this
    # user; local clusters bind to 127.0.0.1 only.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # "local": a new cluster, never one `ray start` left running (set ray.address for that).
    kwargs.update(address="local", num_cpus=settings.ray.num_cpus)
    if settings.ray.object_store_memory:
        kwargs["object_store_memory"] = settings.ray.object_store_memory
    with reserve_dashboard_port() as port:
        ray.init(**kwargs, **dashboard_kwargs(port=port))


def in_submitted_job() -> bool:
    """Whether this process is the driver of a job that ``ray job submit`` started."""
    return JOB_CONFIG_ENV in os.environ


def check_job_data_root(settings: Settings) -> None:
    """In a submitted job, refuse a relative ``data_root`` (it would resolve in the job's copy).

    ``ray job submit --working-dir .`` runs the entrypoint in an uploaded copy of
    the directory, so ``mlray-data`` would name a new, empty folder there.

    Raises:
        ConfigError: a relative local ``data_root`` in a submitted job; the message
            shows how to pass an absolute one.
    """
    root = str(settings.data_root)
    if not in_submitted_job() or "://" in root or Path(root).is_absolute():
        return
    raise ConfigError(
        f"data_root {root!r} is relative, and this runs as a Ray job in the uploaded working "
        f"directory {os.getcwd()}: it would read and write a new folder there, not the one "
        "you submitted from. Pass an absolute path or an object store URI, e.g. ray job submit "
        '--runtime-env-json \'{"env_vars": {"MLRAY_DATA_ROOT": "\'$PWD\'/mlray-data"}}\' ...'
    )


def dashboard_kwargs(preferred: int = DASHBOARD_PORT, port: int | None = None) -> dict[str, Any]:
    """``ray.init`` arguments for a local cluster's dashboard on 127.0.0.1.

    The dashboard's address is given to every process.

    Ray Train's placement-group cleaner asks the state API (the dashboard)
    whether a run is still alive. Left to find a cluster on its own it can reach
    another Ray on the same host, conclude the run is dead and remove its workers.

    Args:
        preferred: the port to take when free (else any free one).
        port: this port, as :func:`reserve_dashboard_port` gave it.
    """
    port = dashboard_port(preferred) if port is None else port
    return {
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "dashboard_port": port,
        "runtime_env": {"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}},
    }


@contextlib.contextmanager
def reserve_dashboard_port(
    preferred: int = DASHBOARD_PORT, wait_s: float = START_LOCK_WAIT_S
) -> Iterator[int]:
    """A free dashboard port, held for this process until the block ends.

    Start the local Ray inside the block: its dashboard binds the port before
    ``ray.init`` returns. Every mlray process on the machine picks its port under
    one file lock, so two commands started at once no longer both pick 8265 (the
    second waits, then finds 8265 taken and picks another). After ``wait_s`` it
    goes on without the lock rather than hang behind a stuck process.
    """
    lock_path = Path(tempfile.gettempdir()) / f"mlray-ray-start-{os.getuid()}.lock"
    with open(lock_path, "a") as fh:
        locked = _lock(fh.fileno(), wait_s)
        try:
            yield dashboard_port(preferred)
        finally:
            if locked:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _lock(fd: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)


def dashboard_port(preferred: int = DASHBOARD_PORT) -> int:
    """Ray's usual dashboard port when it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1 for the Ray dashboard")
