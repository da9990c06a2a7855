"""The models a replica serves: the champion and the shadow, loaded by alias and swapped atomically.

A :class:`ModelSlot` is immutable: a reload builds a new one (download, load
the runtime, warm it up) off the request path and then replaces the
reference in one assignment, so a request sees either the old model or the
new one, never a half-loaded one. :class:`ModelSet` polls the registry's
aliases every ``reload_interval_s`` (and on ``reconfigure``) and swaps what
changed. Torch is never imported here: ONNX Runtime (or TensorRT) runs the
exported files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlray.errors import ConfigError, NotFoundError
from mlray.registry.download import download_version, resolve_version
from mlray.runtimes import load_runtime
from mlray.runtimes.model_spec import ModelSpec
from mlray.runtimes.protocol import ModelRuntime
from mlray.serving.config import ServeArgs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSlot:
    """One loaded version: its runtime, spec and when it was loaded."""

    name: str
    version: str
    runtime: ModelRuntime
    spec: ModelSpec
    loaded_at: datetime

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.runtime.predict(x)


def load_slot(
    client: Any,
    args: ServeArgs,
    cache_dir: Path,
    *,
    alias: str | None = None,
    version: str | None = None,
    runtime: str | None = None,
) -> ModelSlot:
    """Download a version by alias or number and load it into a runtime, warmed up.

    Raises:
        NotFoundError: no such alias or version, or its files are incomplete.
        ConfigError, BackendUnavailable: the runtime cannot run here.
    """
    got = download_version(client, args.model_name, cache_dir, alias=alias, version=version)
    rt = load_runtime(
        got.path,
        runtime or args.runtime,
        args.precision,
        device=args.device,
        engine_cache_dir=cache_dir / "tensorrt",
    )
    rt.predict(np.zeros((1, got.spec.num_features), np.float32))  # first call allocates
    return ModelSlot(args.model_name, got.version, rt, got.spec, datetime.now(UTC))


class ModelSet:
    """The champion (required) and the shadow (optional) of one replica, kept current.

    Args:
        client: an ``mlflow.MlflowClient``.
        args: the serving arguments (model name, aliases, runtime choice).
        cache_dir: where versions are downloaded (shared by the replicas of a node).
        champion_runtime: override of ``args.runtime`` for the champion (``None``: as configured).
    """

    def __init__(
        self, client: Any, args: ServeArgs, cache_dir: Path, champion_runtime: str | None = None
    ) -> None:
        self.client, self.args, self.cache_dir = client, args, cache_dir
        self.champion_runtime = champion_runtime
        self.champion: ModelSlot | None = None
        self.shadow: ModelSlot | None = None
        self.checked_at = 0.0
        self.last_error: str | None = None
        # A check a new champion must pass before it replaces the loaded one (reason, or None).
        self.accept: Callable[[ModelSpec], str | None] | None = None

    def refresh(self) -> list[str]:
        """Load the versions the aliases point to now, where they changed; returns what changed.

        Blocking (registry calls and model loads): run it off the event loop. A
        failure keeps the models already loaded and is remembered in ``last_error``.
        """
        changed = []
        self.checked_at = time.monotonic()
        try:
            want = resolve_version(self.client, self.args.model_name, alias=self.args.champion)
            if self.champion is None or self.champion.version != str(want.version):
                slot = load_slot(
                    self.client,
                    self.args,
                    self.cache_dir,
                    version=str(want.version),
                    runtime=self.champion_runtime,
                )
                refused = self.accept(slot.spec) if self.accept and self.champion else None
                if refused:
                    raise ConfigError(f"Not serving {slot.name} v{slot.version}: {refused}.")
                self.champion = slot
                changed.append(f"champion v{want.version}")
            changed += self._refresh_shadow()
            self.last_error = None
        except Exception as e:  # noqa: BLE001 - keep serving the loaded models, report why
            self.last_error = f"{type(e).__name__}: {e}"
            if self.champion is None:
                raise
            log.error("Model reload failed, still serving v%s: %s", self.champion.version, e)
        return changed

    def _refresh_shadow(self) -> list[str]:
        args = self.args
        if args.shadow is None:
            return []
        try:
            if args.shadow_is_version:
                want = resolve_version(self.client, args.model_name, version=args.shadow)
            else:
                want = resolve_version(self.client, args.model_name, alias=args.shadow)
        except NotFoundError:
            dropped = self.shadow is not None
            self.shadow = None  # the alias was removed: no shadow until it is back
            return ["shadow removed"] if dropped else []
        if self.shadow is not None and self.shadow.version == str(want.version):
            return []
        # The shadow runs on the CPU beside the request path, with ONNX Runtime.
        self.shadow = load_slot(
            self.client,
            args,
            self.cache_dir,
            version=str(want.version),
            runtime="onnxruntime" if args.runtime != "torch" else "torch",
        )
        return [f"shadow v{want.version}"]

    def due(self) -> bool:
        """Whether the aliases should be checked again (``reload_interval_s`` elapsed)."""
        interval = self.args.reload_interval_s
        return interval > 0 and time.monotonic() - self.checked_at >= interval

    def describe(self) -> dict[str, Any]:
        """``GET /model``: versions, runtime and load times."""
        c, s = self.champion, self.shadow
        return {
            "model_name": self.args.model_name,
            "model_version": c.version if c else None,
            "shadow_version": s.version if s else None,
            "runtime": c.runtime.name if c else None,
            "shadow_runtime": s.runtime.name if s else None,
            "loaded_at": c.loaded_at.isoformat() if c else None,
            "shadow_loaded_at": s.loaded_at.isoformat() if s else None,
            "last_reload_error": self.last_error,
        }
