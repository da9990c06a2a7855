"""ONNX export: dynamic batch, recorded feature order, parity with PyTorch within 1e-5."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mlray.errors import ConfigError, SchemaError, ValidationFailed
from mlray.export.onnx import check_parity, export_onnx, feature_names_of
from mlray.export.reference_model import ReferenceCTRModel, TrainedReference
from mlray.runtimes.onnx_metadata import read_onnx_metadata


def _torch(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def test_graph_has_dynamic_batch_and_opset_17(onnx_path: Path, trained: TrainedReference) -> None:
    model = onnx.load(str(onnx_path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert model.graph.input[0].name == "features"
    assert dims[0].dim_param == "batch" and dims[1].dim_value == len(trained.data.feature_names)
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_metadata_records_feature_order_and_spec(
    onnx_path: Path, trained: TrainedReference
) -> None:
    meta = read_onnx_metadata(onnx_path)
    assert meta.feature_names == trained.data.feature_names
    assert meta.spec == json.loads(json.dumps(trained.data.metadata()))
    assert (meta.input_name, meta.output_name) == ("features", "probability")


def test_onnx_matches_pytorch_within_1e5_on_the_test_slice(
    onnx_path: Path, trained: TrainedReference
) -> None:
    x = trained.x_test.copy()
    x[:5, 0] = np.nan  # null filling is folded into the graph
    x[5:10, -2] = 1000  # an unseen category code is clamped, not an out-of-range lookup
    assert np.isnan(trained.x_test).any()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["probability"], {"features": x})[0]
    assert got.shape == (len(x),) and got.dtype == np.float32
    np.testing.assert_allclose(got, _torch(trained.model, x), rtol=0, atol=1e-5)
    for b in (1, 7):  # other batch sizes than the traced one
        np.testing.assert_allclose(
            session.run(None, {"features": x[:b]})[0],
            _torch(trained.model, x[:b]),
            rtol=0,
            atol=1e-5,
        )
    assert check_parity(trained.model, onnx_path, x) <= 1e-5


def test_check_parity_rejects_a_different_model(onnx_path: Path, trained: TrainedReference) -> None:
    other = ReferenceCTRModel(
        len(trained.data.numeric), list(trained.data.categorical.values()), hidden=(32, 16)
    )
    other.load_state_dict(trained.model.state_dict())
    with torch.no_grad():
        other.mlp[-1].bias += 0.5
    with pytest.raises(ValidationFailed, match="differs from PyTorch") as err:
        check_parity(other.eval(), onnx_path, trained.x_test[:50])
    assert err.value.report["max_abs_diff"] > 1e-3


@dataclass
class _Spec:
    numeric_features: list[str]
    categorical_features: dict[str, int]
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "numeric_features": self.numeric_features,
            "categorical_features": self.categorical_features,
        }


def test_spec_object_with_to_dict_gives_numeric_then_categorical(
    tmp_path: Path, trained: TrainedReference
) -> None:
    spec = _Spec(trained.data.numeric, trained.data.categorical)
    path = export_onnx(trained.model, spec, tmp_path / "sub" / "m.onnx")
    assert read_onnx_metadata(path).feature_names == trained.data.feature_names
    assert trained.model.training is False


def test_export_keeps_the_training_mode(tmp_path: Path, trained: TrainedReference) -> None:
    trained.model.train()
    try:
        export_onnx(trained.model, trained.data.metadata(), tmp_path / "m.onnx")
        assert trained.model.training
    finally:
        trained.model.eval()


def test_spec_without_feature_order_is_a_config_error(
    tmp_path: Path, trained: TrainedReference
) -> None:
    with pytest.raises(ConfigError, match="feature_names"):
        export_onnx(trained.model, {"hidden": [32, 16]}, tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(trained.model, trained.data.metadata(), tmp_path / "m.onnx", opset=13)
    assert feature_names_of({"feature_order": ["a", "b"]}) == ["a", "b"]


def test_spec_that_does_not_match_the_model_is_a_schema_error(
    tmp_path: Path, trained: TrainedReference
) -> None:
    spec = {"feature_names": trained.data.feature_names[:-3]}
    with pytest.raises(SchemaError, match=r"float32 \[batch, 11\]"):
        export_onnx(trained.model, spec, tmp_path / "m.onnx")


def test_model_returning_batch_by_one_is_told_to_squeeze(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Sigmoid())
    with pytest.raises(SchemaError, match="Squeeze"):
        export_onnx(model, {"feature_names": ["a", "b", "c"]}, tmp_path / "m.onnx")
