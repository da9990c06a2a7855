"""What a runtime loads: the exported files of one model version and their manifest.

An artifact directory holds ``model.onnx`` (FP32), optionally ``model.int8.onnx``
(kept only when it passed the accuracy gate) and ``model.pt2`` (the PyTorch
program), plus ``artifact.json``, the manifest that names them and records the
input feature order, the model spec and the export checks. The export stage
writes it (:func:`mlray.export.artifacts.export_model`); every runtime reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlray.errors import ConfigError, NotFoundError, SchemaError

MANIFEST = "artifact.json"
FORMAT_VERSION = 1
# File names inside an artifact directory.
ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
TORCH_PROGRAM = "model.pt2"


@dataclass
class ModelArtifact:
    """The exported files of one model version.

    Attributes:
        feature_names: the input columns, in order (numeric first, then categorical codes).
        onnx_path: the FP32 ONNX model.
        int8_path: the INT8 ONNX model, None when it was not kept.
        torch_path: a ``torch.export`` program (``.pt2``), if exported.
        model_version: names the version, e.g. ``"ctr_model/3"``; keys TensorRT's engine cache.
        spec: the model spec (JSON-serialisable).
        checks: export checks (parity, INT8 report) as recorded in the manifest.
        root: the artifact directory, None for loose files.
        torch_module: an in-memory ``torch.nn.Module`` (never serialised), for the PyTorch runtime.
    """

    feature_names: list[str]
    onnx_path: Path | None = None
    int8_path: Path | None = None
    torch_path: Path | None = None
    model_version: str = "unversioned"
    spec: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    torch_module: Any = field(default=None, repr=False, compare=False)

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    def require(self, kind: str) -> Path:
        """The path of one file kind: ``onnx``, ``int8`` or ``torch``.

        Raises:
            NotFoundError: the artifact lacks that file; the message says how to make it.
        """
        paths = {"onnx": self.onnx_path, "int8": self.int8_path, "torch": self.torch_path}
        path = paths.get(kind)
        if path is None or not Path(path).exists():
            where = self.root or "the given paths"
            hint = {
                "onnx": "export it with mlray.export.export_onnx",
                "int8": "it is only kept when its AUC drop passed the gate "
                "(see 'checks' in the manifest); use precision='fp32'",
                "torch": "export with include_torch=True, or pass the module as torch_module",
            }[kind]
            raise NotFoundError(
                f"Model artifact {self.model_version!r} has no {kind} file in {where}: {hint}."
            )
        return Path(path)

    def write_manifest(self, directory: str | Path) -> Path:
        """Write ``artifact.json`` into ``directory`` (file paths relative to it)."""
        directory = Path(directory)
        files = {
            k: (Path(p).name if p is not None else None)
            for k, p in (
                ("onnx", self.onnx_path),
                ("int8", self.int8_path),
                ("torch", self.torch_path),
            )
        }
        body = {
            "format_version": FORMAT_VERSION,
            "model_version": self.model_version,
            "feature_names": self.feature_names,
            "files": files,
            "spec": self.spec,
            "checks": self.checks,
        }
        path = directory / MANIFEST
        path.write_text(json.dumps(body, indent=2, sort_keys=True, default=str))
        return path

    @classmethod
    def from_dir(cls, directory: str | Path) -> ModelArtifact:
        """Read an artifact directory through its manifest.

        Raises:
            NotFoundError: no manifest in ``directory``.
            SchemaError: the manifest is unreadable or lacks ``feature_names``.
        """
        directory = Path(directory)
        path = directory / MANIFEST
        if not path.exists():
            raise NotFoundError(
                f"No {MANIFEST} in {directory}: not a model artifact directory; "
                f"write one with mlray.export.export_model."
            )
        try:
            body = json.loads(path.read_text())
            names = [str(n) for n in body["feature_names"]]
        except (ValueError, KeyError, TypeError) as e:
            raise SchemaError(
                f"Model manifest {path} is invalid ({e}); re-export the model."
            ) from e
        files = body.get("files", {})

        def resolve(key: str) -> Path | None:
            return directory / files[key] if files.get(key) else None

        return cls(
            feature_names=names,
            onnx_path=resolve("onnx"),
            int8_path=resolve("int8"),
            torch_path=resolve("torch"),
            model_version=str(body.get("model_version", "unversioned")),
            spec=body.get("spec", {}),
            checks=body.get("checks", {}),
            root=directory,
        )

    @classmethod
    def from_onnx(
        cls,
        onnx_path: str | Path,
        int8_path: str | Path | None = None,
        model_version: str | None = None,
    ) -> ModelArtifact:
        """An artifact from loose ONNX files; the feature order comes from the model's metadata."""
        from mlray.runtimes.onnx_metadata import read_onnx_metadata

        meta = read_onnx_metadata(onnx_path)
        return cls(
            feature_names=meta.feature_names,
            onnx_path=Path(onnx_path),
            int8_path=Path(int8_path) if int8_path is not None else None,
            model_version=model_version or meta.spec.get("model_version", Path(onnx_path).stem),
            spec=meta.spec,
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary (paths as strings, no module)."""
        out = asdict(self) | {"torch_module": None}
        return {
            k: (str(v) if isinstance(v, Path) else v) for k, v in out.items() if k != "torch_module"
        }


def as_artifact(source: ModelArtifact | str | Path | Mapping[str, Any]) -> ModelArtifact:
    """Accept an artifact, a directory with a manifest, an ``.onnx`` file, or a mapping of paths.

    A mapping takes the keys ``onnx`` (required), ``int8``, ``torch``, ``model_version``.

    Raises:
        ConfigError: the source is none of those.
        NotFoundError: the path does not exist.
    """
    if isinstance(source, ModelArtifact):
        return source
    if isinstance(source, Mapping):
        if "onnx" not in source:
            raise ConfigError(
                f"A model artifact mapping needs an 'onnx' path; got keys {sorted(source)}."
            )
        art = ModelArtifact.from_onnx(
            source["onnx"], source.get("int8"), source.get("model_version")
        )
        if source.get("torch") is not None:
            art.torch_path = Path(source["torch"])
        return art
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return ModelArtifact.from_dir(path)
        if path.suffix == ".onnx" and path.exists():
            return ModelArtifact.from_onnx(path)
        raise NotFoundError(
            f"Model artifact {path} not found: pass an artifact directory (with {MANIFEST}) "
            f"or an existing .onnx file."
        )
    raise ConfigError(
        f"Cannot load a model from {type(source).__name__}: pass a ModelArtifact, a directory, "
        f"an .onnx path, or a mapping {{'onnx': ..., 'int8': ...}}."
    )
