"""ONNX export of the production CTRModel: dynamic batch, feature order and spec, parity."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from synthetic_ctr import TrainedCTR

from mlray.errors import ConfigError, SchemaError, ValidationFailed
from mlray.export.onnx import check_parity, export_onnx
from mlray.runtimes.model_spec import ModelSpec
from mlray.runtimes.onnx_metadata import read_onnx_metadata
from mlray.training.model import CTRModel


def test_graph_has_dynamic_batch_and_opset_17(onnx_path: Path, trained: TrainedCTR) -> None:
    model = onnx.load(str(onnx_path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert model.graph.input[0].name == "features"
    assert dims[0].dim_param == "batch" and dims[1].dim_value == len(trained.feature_names)
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17


def test_metadata_records_feature_order_and_the_spec(onnx_path: Path, trained: TrainedCTR) -> None:
    meta = read_onnx_metadata(onnx_path)
    assert meta.feature_names == trained.spec.feature_names
    assert meta.feature_names[:2] == ["num_0", "num_1"] and meta.feature_names[-2:] == [
        "category",
        "device",
    ]
    assert ModelSpec.from_dict(meta.spec) == trained.spec
    assert not {"feature_names", "numeric_features", "categorical_features"} & set(meta.spec)
    assert (meta.input_name, meta.output_name) == ("features", "probability")


def test_onnx_matches_pytorch_within_1e5_on_the_test_slice(
    onnx_path: Path, trained: TrainedCTR
) -> None:
    x = trained.x_test.copy()
    x[:5, 0] = np.nan  # null filling is folded into the graph
    x[5:10, -2] = 1000  # a code past the vocabulary reads as unknown, not an out-of-range lookup
    assert np.isnan(trained.x_test).any()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(["probability"], {"features": x})[0]
    assert got.shape == (len(x),) and got.dtype == np.float32
    np.testing.assert_allclose(got, trained.torch_scores(x), rtol=0, atol=1e-5)
    for b in (1, 7):  # other batch sizes than the traced one
        np.testing.assert_allclose(
            session.run(None, {"features": x[:b]})[0],
            trained.torch_scores(x[:b]),
            rtol=0,
            atol=1e-5,
        )
    assert check_parity(trained.model, onnx_path, x) <= 1e-5


def test_check_parity_rejects_a_different_model(onnx_path: Path, trained: TrainedCTR) -> None:
    other = CTRModel(trained.spec)
    other.load_state_dict(trained.model.state_dict())
    with torch.no_grad():
        other.mlp[-1].bias += 0.5
    with pytest.raises(ValidationFailed, match="differs from PyTorch") as err:
        check_parity(other.eval(), onnx_path, trained.x_test[:50])
    assert err.value.report["max_abs_diff"] > 1e-3


def test_export_keeps_the_training_mode(tmp_path: Path, trained: TrainedCTR) -> None:
    trained.model.train()
    try:
        path = export_onnx(trained.model, trained.spec, tmp_path / "sub" / "m.onnx")
        assert trained.model.training and path.exists()
    finally:
        trained.model.eval()


def test_export_takes_a_model_spec_not_a_dict(tmp_path: Path, trained: TrainedCTR) -> None:
    with pytest.raises(ConfigError, match="ModelSpec.from_dict"):
        export_onnx(trained.model, trained.spec.to_dict(), tmp_path / "m.onnx")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(trained.model, trained.spec, tmp_path / "m.onnx", opset=13)
    assert not (tmp_path / "m.onnx").exists()


def test_spec_that_does_not_match_the_model_is_a_schema_error(
    tmp_path: Path, trained: TrainedCTR
) -> None:
    nine = [0.0] * 9
    spec = replace(
        trained.spec, numeric=trained.spec.numeric[:9], means=nine, stds=nine, fills=nine
    )
    with pytest.raises(SchemaError, match=r"float32 \[batch, 11\]"):
        export_onnx(trained.model, spec, tmp_path / "m.onnx")


def test_model_returning_batch_by_one_is_told_to_squeeze(tmp_path: Path) -> None:
    spec = ModelSpec(["a", "b", "c"], [], {}, [0.0] * 3, [1.0] * 3, [0.0] * 3)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Sigmoid())
    with pytest.raises(SchemaError, match="Squeeze"):
        export_onnx(model, spec, tmp_path / "m.onnx")


def test_an_artifact_written_with_the_old_duplicate_keys_still_loads(
    onnx_path: Path, trained: TrainedCTR, tmp_path: Path
) -> None:
    # Before the spec was typed, to_dict also wrote feature_names/numeric_features/...
    old = trained.spec.to_dict() | {
        "feature_names": trained.spec.feature_names,
        "numeric_features": trained.spec.numeric,
        "categorical_features": trained.spec.categorical,
    }
    proto = onnx.load(str(onnx_path))
    for p in proto.metadata_props:
        if p.key == "mlray.spec":
            p.value = json.dumps(old)
    onnx.save(proto, str(tmp_path / "old.onnx"))
    meta = read_onnx_metadata(tmp_path / "old.onnx")
    assert meta.feature_names == trained.spec.feature_names
    assert ModelSpec.from_dict(meta.spec) == trained.spec
