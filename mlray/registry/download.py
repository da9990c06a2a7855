"""Download a registered version by alias or number: the files serving and the pipeline load.

Torch-free: a Serve replica downloads the champion with this module and loads
``model.onnx`` through :func:`mlray.runtimes.load_runtime`; only the training
pipeline reads ``state_dict.pt`` (with torch, in :mod:`mlray.pipeline.stages`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlray.errors import NotFoundError
from mlray.registry.versions import MODEL_DIR, REFERENCE_FILE, SPEC_FILE, version_for_alias
from mlray.runtimes.model_spec import ModelSpec
from mlray.validation.psi import Reference


@dataclass
class DownloadedVersion:
    """A registered version's files on local disk, with its spec and reference read."""

    name: str
    version: str
    run_id: str | None
    path: Path
    spec: ModelSpec
    reference: Reference | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    source: str = ""


def resolve_version(
    client: Any, name: str, *, alias: str | None = None, version: str | None = None
) -> Any:
    """The MLflow ModelVersion named by ``alias`` or ``version`` (exactly one).

    Raises:
        NotFoundError: no such model, alias or version.
    """
    from mlflow.exceptions import MlflowException

    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias or version")
    if alias is not None:
        mv = version_for_alias(client, name, alias)
        if mv is None:
            raise NotFoundError(
                f"Model {name!r} has no version with alias {alias!r}; train one with `mlray train`."
            )
        return mv
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as e:
        raise NotFoundError(f"Model {name!r} has no version {version!r}.") from e


def download_version(
    client: Any, name: str, dst: str | Path, *, alias: str | None = None, version: str | None = None
) -> DownloadedVersion:
    """Download a version's artifact directory into ``dst/v<version>`` (reused when complete).

    Args:
        client: an ``mlflow.MlflowClient`` (see :func:`mlray.registry.tracking.connect`).
        name: the registered model.
        dst: a local cache directory.
        alias: e.g. ``"champion"``; or
        version: a version number.

    Raises:
        NotFoundError: no such version or alias, or it lacks ``model_spec.json``.
        BackendUnavailable: the tracking store cannot be read.
    """
    import mlflow

    mv = resolve_version(client, name, alias=alias, version=version)
    target = Path(dst) / f"v{mv.version}"
    if not (target / MODEL_DIR / SPEC_FILE).exists():
        # Download beside the target and rename: replicas sharing a cache never see half a model.
        Path(dst).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".v{mv.version}-", dir=dst))
        mlflow.artifacts.download_artifacts(
            artifact_uri=mv.source, dst_path=str(tmp), tracking_uri=client.tracking_uri
        )
        try:
            tmp.rename(target)
        except OSError:  # another process finished first; its copy is complete
            shutil.rmtree(tmp, ignore_errors=True)
    path = target / MODEL_DIR
    if not (path / SPEC_FILE).exists():
        raise NotFoundError(
            f"Model {name!r} version {mv.version} lacks {SPEC_FILE} in {mv.source}; it was not "
            "registered by mlray's training pipeline."
        )
    ref_path = path / REFERENCE_FILE
    reference = Reference.from_dict(json.loads(ref_path.read_text())) if ref_path.exists() else None
    return DownloadedVersion(
        name,
        str(mv.version),
        mv.run_id,
        path,
        ModelSpec.from_json((path / SPEC_FILE).read_text()),
        reference,
        dict(mv.tags or {}),
        list(getattr(mv, "aliases", []) or []),
        mv.source,
    )
