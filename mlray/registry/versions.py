"""Registered model versions: what each one carries, how it is registered and aliased.

A version's artifact directory (``model/`` in its MLflow run) holds what the
pipeline wrote into it (``state_dict.pt``, the export stage's ``model.onnx``,
``model.int8.onnx``, ``model.pt2``, ``artifact.json``) plus the files this
module writes from the :class:`ModelPackage`:

* ``MLmodel``: the MLflow model file with the signature (float32 ``[-1, F]`` in, ``[-1]`` out);
* ``model_spec.json``: feature order, vocabularies, normalization, architecture;
* ``normalization.json``, ``reference.json`` (per-feature and score distributions for
  monitoring), ``lineage.json`` and ``train_config.json``.

Version tags carry the lineage (:mod:`mlray.registry.lineage`); the alias
``champion`` marks the model in production and ``challenger`` the one the
serving shadow scores. Nothing here imports torch: registration logs what it
is given, and serving downloads versions through :mod:`mlray.registry.download`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlray.errors import BackendUnavailable
from mlray.runtimes.model_spec import ModelSpec
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
    """Everything a new version carries (built by the pipeline's register stage).

    Attributes:
        model_dir: the directory holding the weights and export files already written.
        spec: the model's input layout and architecture.
        reference: training-data distributions (features and score) for drift checks.
        metrics: test-slice metrics (``test_auc``...), version tags of the same names.
        tags: lineage and decision tags.
        lineage, config: written as JSON files beside the model.
        example_input, example_output: a few rows in and out, for the MLflow signature.
        exported: names of the export files in ``model_dir`` (``model.onnx``...).
    """

    model_dir: Path
    spec: ModelSpec
    reference: Reference
    metrics: dict[str, float]
    tags: dict[str, str]
    lineage: dict[str, Any]
    config: dict[str, Any]
    example_input: np.ndarray
    example_output: np.ndarray
    exported: list[str]


def write_metadata(pkg: ModelPackage) -> None:
    """Write the MLflow model file, spec, monitoring and lineage files into ``pkg.model_dir``."""
    from mlflow.models import Model, infer_signature

    out = pkg.model_dir
    out.mkdir(parents=True, exist_ok=True)
    Model(
        signature=infer_signature(pkg.example_input, pkg.example_output),
        metadata={"feature_names": pkg.spec.feature_names, "mlray_spec_file": SPEC_FILE},
    ).save(str(out / "MLmodel"))
    (out / SPEC_FILE).write_text(pkg.spec.to_json())
    spec = pkg.spec
    norm = zip(spec.numeric, spec.means, spec.stds, spec.fills, strict=True)
    (out / NORMALIZATION_FILE).write_text(
        json.dumps({c: {"mean": m, "std": s, "fill": f} for c, m, s, f in norm}, indent=1)
    )
    (out / REFERENCE_FILE).write_text(json.dumps(pkg.reference.to_dict()))
    (out / LINEAGE_FILE).write_text(json.dumps(pkg.lineage, indent=1, default=str))
    (out / CONFIG_FILE).write_text(json.dumps(pkg.config, indent=1, default=str))


def next_version(client: Any, name: str) -> int:
    """The number the next version of ``name`` will get (the registry numbers them 1, 2, ...)."""
    versions = [int(v.version) for v in client.search_model_versions(f"name='{name}'")]
    return max(versions, default=0) + 1


def register(client: Any, name: str, run_id: str, pkg: ModelPackage, alias: str) -> str:
    """Log the package into the run, create a model version from it, tag it and set ``alias``.

    Returns:
        The new version number.

    Raises:
        BackendUnavailable: MLflow refused a write.
    """
    from mlflow.exceptions import MlflowException

    try:
        if not client.search_registered_models(f"name='{name}'"):
            client.create_registered_model(name, description="mlray click-through model")
        expected = next_version(client, name)
        write_metadata(pkg)
        client.log_artifacts(run_id, str(pkg.model_dir), MODEL_DIR)
        tags = {**pkg.tags, **{k: repr(float(v)) for k, v in pkg.metrics.items()}}
        mv = client.create_model_version(
            name, source=f"runs:/{run_id}/{MODEL_DIR}", run_id=run_id, tags=tags
        )
        if str(mv.version) != str(expected):
            log.warning(
                "Model %s got version %s while %s was expected (a concurrent registration); "
                "its export manifest names %s/%s",
                name,
                mv.version,
                expected,
                name,
                expected,
            )
        client.set_registered_model_alias(name, alias, mv.version)
        return str(mv.version)
    except MlflowException as e:
        raise BackendUnavailable(f"Registering a version of model {name!r} failed: {e}") from e


def set_alias(client: Any, name: str, alias: str, version: str) -> None:
    """Point ``alias`` of model ``name`` at ``version`` (what ``mlray promote`` does).

    Raises:
        NotFoundError: no such model or version.
        BackendUnavailable: MLflow refused the write.
    """
    from mlflow.exceptions import MlflowException

    from mlray.errors import NotFoundError

    try:
        client.get_model_version(name, str(version))
    except MlflowException as e:
        raise NotFoundError(
            f"Model {name!r} has no version {version!r}; list them with the MLflow UI or "
            "`mlray train` one first."
        ) from e
    try:
        client.set_registered_model_alias(name, alias, str(version))
    except MlflowException as e:
        raise BackendUnavailable(f"Setting alias {alias!r} of model {name!r} failed: {e}") from e


def version_for_alias(client: Any, name: str, alias: str) -> Any | None:
    """The ModelVersion holding ``alias``, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        code = str(getattr(e, "error_code", ""))
        if "RESOURCE_DOES_NOT_EXIST" in code or "not found" in str(e).lower():
            return None
        raise BackendUnavailable(f"Reading alias {alias!r} of model {name!r} failed: {e}") from e
