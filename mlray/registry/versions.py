"""Registered model versions: what each one carries, how it is registered, aliased and loaded back.

A version's artifact directory (``model/`` in its MLflow run) holds:

* ``MLmodel``: the MLflow model file with the signature (float32 ``[-1, F]`` in, ``[-1]`` out);
* ``model_spec.json``: feature order, vocabularies, normalization, architecture;
* ``state_dict.pt``: the PyTorch weights (always, so the model loads without the export stage);
* the export stage's files when it is installed (``model.onnx``, ``model.int8.onnx``,
  ``model.pt2``, ``artifact.json``);
* ``normalization.json``, ``reference.json`` (per-feature and score distributions for monitoring),
  ``lineage.json`` and ``train_config.json``.

Version tags carry the lineage (:mod:`mlray.registry.lineage`); the alias
``champion`` marks the model in production and ``challenger`` the one the
serving shadow scores.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlray.errors import BackendUnavailable, NotFoundError
from mlray.training.model import ModelSpec
from mlray.validation.psi import Reference

log = logging.getLogger(__name__)

MODEL_DIR = "model"
SPEC_FILE, STATE_FILE, REFERENCE_FILE = "model_spec.json", "state_dict.pt", "reference.json"
NORMALIZATION_FILE, LINEAGE_FILE, CONFIG_FILE = (
    "normalization.json",
    "lineage.json",
    "train_config.json",
)


@dataclass
class ModelPackage:
    """Everything a new version carries (built by the pipeline's register stage)."""

    model: Any
    spec: ModelSpec
    reference: Reference
    metrics: dict[str, float]
    tags: dict[str, str]
    lineage: dict[str, Any]
    config: dict[str, Any]
    x_test: np.ndarray
    y_test: np.ndarray
    calibration: np.ndarray | None = None


@dataclass
class LoadedVersion:
    """A registered version read back: enough to score it and to compare against its training data."""

    name: str
    version: str
    run_id: str | None
    spec: ModelSpec
    state: dict[str, Any]
    reference: Reference | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    path: str = ""


def write_model_dir(pkg: ModelPackage, out: Path, model_version: str) -> list[str]:
    """Write the version's files into ``out``; returns the export files written (empty without an export stage)."""
    import torch
    from mlflow.models import Model, infer_signature

    out.mkdir(parents=True, exist_ok=True)
    n = min(len(pkg.x_test), 5)
    with torch.no_grad():
        example_out = pkg.model(torch.from_numpy(pkg.x_test[:n])).numpy()
    Model(
        signature=infer_signature(pkg.x_test[:n], example_out),
        metadata={"feature_names": pkg.spec.feature_names, "mlray_spec_file": SPEC_FILE},
    ).save(str(out / "MLmodel"))
    (out / SPEC_FILE).write_text(pkg.spec.to_json())
    torch.save({k: v.cpu() for k, v in pkg.model.state_dict().items()}, out / STATE_FILE)
    (out / NORMALIZATION_FILE).write_text(
        json.dumps(
            {
                c: {"mean": m, "std": s, "fill": f}
                for c, m, s, f in zip(
                    pkg.spec.numeric, pkg.spec.means, pkg.spec.stds, pkg.spec.fills
                )
            },
            indent=1,
        )
    )
    (out / REFERENCE_FILE).write_text(json.dumps(pkg.reference.to_dict()))
    (out / LINEAGE_FILE).write_text(json.dumps(pkg.lineage, indent=1, default=str))
    (out / CONFIG_FILE).write_text(json.dumps(pkg.config, indent=1, default=str))
    return export_files(pkg, out, model_version)


def export_files(pkg: ModelPackage, out: Path, model_version: str) -> list[str]:
    """Run the export stage when installed: the full artifact (ONNX, INT8, PyTorch program), else ONNX alone."""
    if importlib.util.find_spec("mlray.export") is None:
        log.info(
            "mlray.export is not installed: %s carries the PyTorch state_dict only", model_version
        )
        return []
    if importlib.util.find_spec("mlray.export.artifacts") is not None:
        from mlray.export.artifacts import export_model

        result = export_model(
            pkg.model,
            pkg.spec,
            out,
            x_test=pkg.x_test,
            y_test=pkg.y_test,
            calibration=pkg.calibration,
            model_version=model_version,
        )
        art = result.artifact
        return [
            Path(p).name for p in (art.onnx_path, art.int8_path, art.torch_path) if p is not None
        ]
    from mlray.export.onnx import export_onnx

    return [export_onnx(pkg.model, pkg.spec, out / "model.onnx").name]


def next_version(client: Any, name: str) -> int:
    """The number the next version of ``name`` will get (the registry numbers them 1, 2, ...)."""
    versions = [int(v.version) for v in client.search_model_versions(f"name='{name}'")]
    return max(versions, default=0) + 1


def register(
    client: Any, name: str, run_id: str, pkg: ModelPackage, alias: str
) -> tuple[str, list[str]]:
    """Log the package into the run, create a model version from it, tag it and set ``alias``.

    Returns:
        The new version number and the export files it carries.

    Raises:
        BackendUnavailable: MLflow refused a write.
    """
    from mlflow.exceptions import MlflowException

    try:
        if not client.search_registered_models(f"name='{name}'"):
            client.create_registered_model(name, description="mlray click-through model")
        expected = next_version(client, name)
        with tempfile.TemporaryDirectory() as tmp:
            exported = write_model_dir(pkg, Path(tmp) / MODEL_DIR, f"{name}/{expected}")
            client.log_artifacts(run_id, str(Path(tmp) / MODEL_DIR), MODEL_DIR)
        tags = {**pkg.tags, **{f"metric.{k}": f"{v:.6g}" for k, v in pkg.metrics.items()}}
        mv = client.create_model_version(
            name, source=f"runs:/{run_id}/{MODEL_DIR}", run_id=run_id, tags=tags
        )
        if str(mv.version) != str(expected):
            log.warning(
                "Model %s got version %s while %s was expected (a concurrent registration); its export "
                "manifest names %s/%s",
                name,
                mv.version,
                expected,
                name,
                expected,
            )
        client.set_registered_model_alias(name, alias, mv.version)
        return str(mv.version), exported
    except MlflowException as e:
        raise BackendUnavailable(f"Registering a version of model {name!r} failed: {e}") from e


def version_for_alias(client: Any, name: str, alias: str) -> Any | None:
    """The ModelVersion holding ``alias``, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if (
            "RESOURCE_DOES_NOT_EXIST" in str(getattr(e, "error_code", ""))
            or "not found" in str(e).lower()
        ):
            return None
        raise BackendUnavailable(f"Reading alias {alias!r} of model {name!r} failed: {e}") from e


def load_version(
    client: Any, name: str, version: str | None = None, alias: str | None = None
) -> LoadedVersion:
    """Download a version's spec, weights and reference distributions.

    Raises:
        NotFoundError: no such version or alias, or it lacks ``model_spec.json``/``state_dict.pt``.
    """
    import mlflow
    import torch

    mv = (
        version_for_alias(client, name, alias)
        if alias
        else client.get_model_version(name, str(version))
    )
    if mv is None:
        raise NotFoundError(
            f"Model {name!r} has no version with alias {alias!r}; train one with `mlray train`."
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=mv.source, dst_path=tmp, tracking_uri=client.tracking_uri
            )
        )
        missing = [f for f in (SPEC_FILE, STATE_FILE) if not (path / f).exists()]
        if missing:
            raise NotFoundError(
                f"Model {name!r} version {mv.version} lacks {missing} in {mv.source}; it was not "
                "registered by mlray's training pipeline."
            )
        spec = ModelSpec.from_json((path / SPEC_FILE).read_text())
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
        ref_path = path / REFERENCE_FILE
        reference = (
            Reference.from_dict(json.loads(ref_path.read_text())) if ref_path.exists() else None
        )
    return LoadedVersion(
        name,
        str(mv.version),
        mv.run_id,
        spec,
        state,
        reference,
        dict(mv.tags or {}),
        list(getattr(mv, "aliases", []) or []),
        mv.source,
    )


def load_champion(client: Any, name: str) -> LoadedVersion | None:
    """The version aliased ``champion``, or None before the first promotion."""
    if version_for_alias(client, name, "champion") is None:
        return None
    return load_version(client, name, alias="champion")
