"""The retraining trigger: a breach submits the training pipeline as a Ray job, once per cooldown.

The job goes through Ray's job submission client (``ray.job_submission``) to the
cluster's dashboard, with ``retrain.entrypoint`` run in an uploaded copy of
``retrain.working_dir`` and the data root passed as an absolute path
(``MLRAY_DATA_ROOT``), as the README's ``ray job submit`` commands do. The last
submission (time, job id, reason) is recorded in a small JSON state file; while
``retrain.cooldown_s`` has not passed since it, a new breach is reported as
``cooldown`` and nothing is submitted, so one breach starts one retrain. A dry
run says what it would submit and neither submits nor records anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from mlray.config import Settings
from mlray.errors import BackendUnavailable, ConfigError
from mlray.monitoring.alerts import Alert
from mlray.monitoring.config import RetrainConfig

STATE_FILE = "retrain_state.json"
Action = Literal["none", "disabled", "cooldown", "would_submit", "submitted", "failed"]


class JobClient(Protocol):
    """The part of ``ray.job_submission.JobSubmissionClient`` the trigger uses."""

    def submit_job(
        self,
        *,
        entrypoint: str,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> str: ...


@dataclass
class RetrainDecision:
    """What the trigger did about the breaches of one monitor run.

    Attributes:
        action: ``none`` (no breach asks for a retrain), ``disabled`` (``retrain.enabled``
            is off), ``cooldown`` (a retrain was submitted less than ``cooldown_s`` ago),
            ``would_submit`` (dry run), ``submitted``, or ``failed`` (the cluster refused).
        reason: one line saying why.
        triggers: the breaching alerts that asked for it, ``check:subject``.
        entrypoint, address, runtime_env: the job (submitted or that would be).
        job_id: the submitted job's id (or, in cooldown, the previous one's).
        last_submitted_at: the previous submission's time, when one is recorded.
        submissions: retrains recorded in the state file so far (this one included); None
            when the state was not read (no breach asked for a retrain).
    """

    action: Action
    reason: str
    triggers: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    address: str | None = None
    runtime_env: dict[str, Any] | None = None
    job_id: str | None = None
    last_submitted_at: str | None = None
    submissions: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrain_triggers(alerts: list[Alert], cfg: RetrainConfig) -> list[Alert]:
    """The breaching alerts whose check is in ``cfg.on`` (the others only alert)."""
    return [a for a in alerts if a.severity == "breach" and a.check in cfg.on]


def state_path(settings: Settings, cfg: RetrainConfig) -> Path:
    """``retrain.state_file``, else ``<data_root>/monitor/retrain_state.json``.

    Raises:
        ConfigError: the data root is remote and no ``state_file`` is set.
    """
    if cfg.state_file:
        return Path(cfg.state_file)
    if "://" in settings.data_root:
        raise ConfigError(
            f"The data root {settings.data_root} is remote; set retrain.state_file in the "
            "monitor config to a local file for the retrain cooldown."
        )
    return Path(settings.data_root) / "monitor" / STATE_FILE


def read_state(path: Path) -> dict[str, Any] | None:
    """The last submission recorded at ``path``; None when there is none.

    Raises:
        ConfigError: the file exists but is not the JSON object this module writes.
    """
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        datetime.fromisoformat(state["submitted_at"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(
            f"Retrain state file {path} is not readable ({e}); delete it to reset the cooldown."
        ) from e
    return dict(state)


def submission_address(cfg: RetrainConfig, settings: Settings) -> str:
    """The cluster to submit to: ``retrain.address``, else ``ray.address``/``RAY_ADDRESS``,
    else the cluster this process joined (a monitor running as a Ray job: its own cluster).

    A local Ray this process started itself is never used: it ends with the process,
    and the retrain with it. Ray's client lets ``RAY_API_SERVER_ADDRESS`` and
    ``RAY_ADDRESS`` override the address it is given, as the ``ray job`` CLI does.

    Raises:
        BackendUnavailable: none of these names a cluster.
    """
    if cfg.address:
        return cfg.address
    from mlray.ray_session import cluster_address

    address, _ = cluster_address(settings)
    if address:
        return address
    joined = _joined_cluster()
    if joined:
        return joined
    raise BackendUnavailable(
        "No Ray cluster to submit the retrain job to: set retrain.address in the monitor config "
        "(the dashboard URL, e.g. http://127.0.0.1:8265), ray.address or RAY_ADDRESS, or run the "
        "monitor as a Ray job (jobs/monitor.py). A local Ray the monitor starts itself ends "
        "with it, so it takes no retrain."
    )


def _joined_cluster() -> str | None:
    """The GCS address of the cluster this process joined; None when Ray is not up or this
    process started it (``ray.init()`` without an address)."""
    import ray

    if not ray.is_initialized():
        return None
    from ray._private import worker

    node = getattr(worker, "_global_node", None)
    if node is not None and getattr(node, "head", False):
        return None
    return str(ray.get_runtime_context().gcs_address)


def runtime_env(cfg: RetrainConfig, settings: Settings) -> dict[str, Any]:
    """The job's runtime env: the uploaded ``working_dir`` and the data root, absolute."""
    root = settings.data_root
    if "://" not in root:
        root = str(Path(root).resolve())
    working_dir = str(Path(cfg.working_dir or os.getcwd()).resolve())
    return {"working_dir": working_dir, "env_vars": {"MLRAY_DATA_ROOT": root}}


def job_client(address: str) -> JobClient:
    """A ``JobSubmissionClient`` for ``address``.

    Raises:
        BackendUnavailable: nothing answers there; the message names the address.
    """
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as e:  # noqa: BLE001 - connection, HTTP and version errors alike
        raise BackendUnavailable(
            f"Cannot reach the Ray job API at {address!r} to submit the retrain job: {e}. "
            "Check retrain.address (the dashboard URL, e.g. http://127.0.0.1:8265) and that the "
            "cluster runs."
        ) from e


def maybe_retrain(
    settings: Settings,
    cfg: RetrainConfig,
    alerts: list[Alert],
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    client_for: Callable[[str], JobClient] = job_client,
) -> RetrainDecision:
    """Submit the retrain job when a breach asks for one and the cooldown has passed.

    Args:
        settings: the data root (state file, the job's ``MLRAY_DATA_ROOT``) and Ray address.
        cfg: the monitor config's ``retrain`` section.
        alerts: every alert of the monitor run.
        dry_run: only say what would be submitted; submit and record nothing.
        now: the time the cooldown is measured at (default: now).
        client_for: makes the job client for an address (tests pass a fake).

    Returns:
        The decision; ``submitted`` carries the job id.

    Raises:
        BackendUnavailable: the cluster could not be reached or refused the job (not in a
            dry run); nothing is recorded then, so the next run tries again.
        ConfigError: unreadable state file, or a remote data root without ``state_file``.
    """
    now = now or datetime.now(UTC)
    triggers = retrain_triggers(alerts, cfg)
    names = [f"{a.check}:{a.subject}" for a in triggers]
    if not triggers:
        return RetrainDecision("none", f"no breach of {', '.join(cfg.on)}")
    reason = "; ".join(a.message for a in triggers[:3]) + (
        f" (and {len(triggers) - 3} more)" if len(triggers) > 3 else ""
    )
    base: dict[str, Any] = {"triggers": names, "entrypoint": cfg.entrypoint}
    if not cfg.enabled:
        return RetrainDecision("disabled", f"retrain.enabled is off; breached: {reason}", **base)
    path = state_path(settings, cfg)
    # A dry run takes no lock: it writes nothing, not even the lock file.
    with contextlib.nullcontext() if dry_run else _locked(path):
        last = read_state(path)
        base["submissions"] = int(last.get("submissions", 1)) if last else 0
        if last is not None:
            since = (now - datetime.fromisoformat(last["submitted_at"])).total_seconds()
            if since < cfg.cooldown_s:
                return RetrainDecision(
                    "cooldown",
                    f"job {last.get('job_id')} was submitted {since / 60:.0f} min ago, within the "
                    f"cooldown of {cfg.cooldown_s / 60:.0f} min; breached: {reason}",
                    job_id=last.get("job_id"),
                    last_submitted_at=last["submitted_at"],
                    address=last.get("address"),
                    **base,
                )
        env = runtime_env(cfg, settings)
        if dry_run:
            try:
                address: str | None = submission_address(cfg, settings)
            except BackendUnavailable as e:
                address, reason = None, f"{reason} (no cluster to submit to: {e})"
            return RetrainDecision("would_submit", reason, address=address, runtime_env=env, **base)
        address = submission_address(cfg, settings)
        job_id = _submit(client_for(address), address, cfg.entrypoint, env, names)
        base["submissions"] += 1
        _write_state(path, now, job_id, address, base, reason)
    return RetrainDecision(
        "submitted", reason, address=address, runtime_env=env, job_id=job_id, **base
    )


def _submit(
    client: JobClient, address: str, entrypoint: str, env: dict[str, Any], names: list[str]
) -> str:
    try:
        return str(
            client.submit_job(
                entrypoint=entrypoint,
                runtime_env=env,
                metadata={"mlray.trigger": "monitor", "mlray.breaches": ",".join(names)[:500]},
            )
        )
    except Exception as e:  # noqa: BLE001 - the client raises RuntimeError for HTTP errors
        raise BackendUnavailable(
            f"The Ray cluster at {address!r} refused the retrain job ({entrypoint!r}): {e}"
        ) from e


def _write_state(
    path: Path, now: datetime, job_id: str, address: str, base: dict[str, Any], reason: str
) -> None:
    body = {"submitted_at": now.isoformat(), "job_id": job_id, "address": address}
    body |= {"reason": reason, **base}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Two monitors at once: one reads, submits and records while the other waits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
