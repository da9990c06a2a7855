"""The scoring path imports neither torch nor Ray Train.

Each module below is imported in a fresh interpreter, and one of them then
loads an exported model through ONNX Runtime and scores an encoded row, as a
serving replica does. Add a module to ``SCORING_MODULES`` when it joins the
scoring path.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCORING_MODULES = [
    "mlray.runtimes",
    "mlray.runtimes.model_spec",
    "mlray.runtimes.encoding",
    "mlray.online.reader",
    "mlray.registry.download",
    "mlray.serving.service",
    "mlray.serving.deployments",
    "mlray.serving.app",
]
FORBIDDEN = ["torch", "ray.train"]

CHECK = textwrap.dedent(
    """
    import sys
    forbidden = {forbidden!r}
    loaded = [m for m in forbidden if m in sys.modules]
    assert not loaded, f"imported {{loaded}}"
    """
)


def _run(code: str) -> None:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported (untrained) production CTRModel; building it may use torch."""
    import numpy as np

    from mlray.export.artifacts import export_model
    from mlray.runtimes.model_spec import ModelSpec
    from mlray.training.model import build_model

    spec = ModelSpec(
        numeric=["u__ctr", "i__price"],
        categorical=["i__category"],
        vocab={"i__category": ["books", "toys"]},
        means=[0.1, 20.0],
        stds=[0.05, 10.0],
        fills=[0.1, 20.0],
        hidden=[8, 4],
    )
    out = tmp_path_factory.mktemp("torch-free")
    x = np.array([[0.2, 15.0, 1.0], [np.nan, 30.0, 0.0]], np.float32)
    export_model(build_model(spec), spec, out / "artifact", x_test=x, include_torch=False)
    (out / "model_spec.json").write_text(spec.to_json())
    return out


@pytest.mark.parametrize("module", SCORING_MODULES)
def test_importing_a_scoring_module_loads_no_torch(module: str) -> None:
    _run(f"import {module}\n" + CHECK.format(forbidden=FORBIDDEN))


def test_loading_and_scoring_an_onnx_model_loads_no_torch(artifact_dir: Path) -> None:
    code = textwrap.dedent(
        f"""
        import importlib
        from pathlib import Path

        for name in {SCORING_MODULES!r}:
            importlib.import_module(name)
        from mlray.runtimes import load_runtime, resolve, as_artifact
        from mlray.runtimes.encoding import encode_frame
        from mlray.runtimes.model_spec import ModelSpec

        root = Path({str(artifact_dir)!r})
        spec = ModelSpec.from_json((root / "model_spec.json").read_text())
        artifact = as_artifact(root / "artifact")
        resolve(artifact)  # the 'auto' choice probes TensorRT and the GPU
        runtime = load_runtime(artifact, runtime="onnxruntime", device="cpu")
        rows = [{{"u__ctr": 0.3, "i__price": 12.5, "i__category": "toys"}}]
        p = runtime.predict(encode_frame(spec, rows))
        assert p.shape == (1,) and 0.0 < float(p[0]) < 1.0, p
        """
    )
    _run(code + CHECK.format(forbidden=FORBIDDEN))


def test_the_check_itself_catches_torch() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import torch\n" + CHECK.format(forbidden=FORBIDDEN)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0 and "imported ['torch']" in proc.stderr
