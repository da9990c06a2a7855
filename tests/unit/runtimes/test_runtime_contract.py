"""Every runtime here keeps the ModelRuntime contract: same input, same checks, same answers."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_ctr import TrainedCTR

from mlray.errors import ConfigError, SchemaError
from mlray.export.artifacts import ExportResult
from mlray.runtimes import ModelRuntime, load_runtime
from mlray.runtimes.onnxruntime_rt import OnnxRuntimeRuntime
from mlray.runtimes.protocol import check_batch
from mlray.runtimes.torch_rt import TorchRuntime

CPU_RUNTIMES = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("torch", "fp32")]


@pytest.fixture(scope="module", params=CPU_RUNTIMES, ids=lambda p: "-".join(p))
def runtime(request: pytest.FixtureRequest, exported: ExportResult) -> ModelRuntime:
    name, precision = request.param
    return load_runtime(exported.artifact.root, name, precision, device="cpu")


def test_is_a_model_runtime_with_the_artifact_feature_order(
    runtime: ModelRuntime, trained: TrainedCTR
) -> None:
    assert isinstance(runtime, ModelRuntime)
    assert runtime.feature_names == trained.feature_names
    assert runtime.name.endswith(("fp32", "int8")) and "cpu" in runtime.name


def test_predicts_probabilities_matching_pytorch(
    runtime: ModelRuntime, trained: TrainedCTR
) -> None:
    x = trained.x_test
    got = runtime.predict(x)
    assert got.shape == (len(x),) and got.dtype == np.float32
    assert ((got >= 0) & (got <= 1)).all()
    tol = (
        0.05 if runtime.name.endswith("int8") else 1e-5
    )  # INT8 is held to AUC, not to exact values
    np.testing.assert_allclose(got, trained.torch_scores(x), rtol=0, atol=tol)
    np.testing.assert_allclose(
        runtime.predict(x[:1]), got[:1], rtol=0, atol=1e-6
    )  # batch 1 == row 1 of a batch


@pytest.mark.parametrize(
    ("bad", "got"),
    [
        (np.zeros((4, 14), np.float64), "dtype float64"),
        (np.zeros((4, 13), np.float32), r"shape \(4, 13\)"),
        (np.zeros(14, np.float32), r"shape \(14,\)"),
        (np.zeros((2, 4, 14), np.float32), r"shape \(2, 4, 14\)"),
        ([[0.0] * 14], "a list"),
    ],
)
def test_wrong_input_is_a_schema_error_naming_what_was_expected(
    runtime: ModelRuntime, bad: object, got: str
) -> None:
    with pytest.raises(SchemaError, match=got) as err:
        runtime.predict(bad)  # type: ignore[arg-type]
    assert r"shape (batch, 14) and dtype float32" in err.value.message
    assert "num_0, num_1" in err.value.message and "category, device" in err.value.message


def test_empty_and_non_contiguous_batches(runtime: ModelRuntime, trained: TrainedCTR) -> None:
    assert runtime.predict(np.empty((0, 14), np.float32)).shape == (0,)
    x = np.asfortranarray(trained.x_test[:10])
    np.testing.assert_allclose(
        runtime.predict(x), runtime.predict(np.ascontiguousarray(x)), rtol=0, atol=0
    )


def test_predict_before_load_is_a_config_error() -> None:
    for rt in (OnnxRuntimeRuntime(), TorchRuntime()):
        with pytest.raises(ConfigError, match="call load"):
            rt.predict(np.zeros((1, 14), np.float32))


def test_check_batch_names_long_feature_lists_briefly() -> None:
    names = [f"f{i}" for i in range(100)]
    with pytest.raises(SchemaError, match=r"f39, \.\.\. \(60 more\)"):
        check_batch(np.zeros((1, 3), np.float32), names)


def test_torch_runtime_serves_an_in_memory_module(
    exported: ExportResult, trained: TrainedCTR
) -> None:
    from dataclasses import replace

    art = replace(exported.artifact, torch_path=None, torch_module=trained.model)
    rt = load_runtime(art, "torch")
    np.testing.assert_allclose(
        rt.predict(trained.x_test[:20]), trained.torch_scores(trained.x_test[:20]), atol=1e-7
    )
