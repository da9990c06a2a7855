"""The CTR model: the contract export and serving rely on (its spec: tests/unit/runtimes)."""

from __future__ import annotations

import numpy as np
import torch

from mlray.runtimes.model_spec import ModelSpec
from mlray.training.model import CTRModel, build_model


def make_spec(**over) -> ModelSpec:
    body = {
        "numeric": ["v__a", "v__b"],
        "categorical": ["v__cat", "r__hour"],
        "vocab": {"v__cat": ["books", "toys"], "r__hour": [str(h) for h in range(24)]},
        "means": [10.0, -1.0],
        "stds": [2.0, 0.5],
        "fills": [10.0, -1.0],
        "hidden": [8, 4],
        "embedding_dim": 3,
        "dropout": 0.0,
        "feature_refs": ["v:a", "v:b", "v:cat", "r:hour"],
    }
    body.update(over)
    return ModelSpec(**body)


def test_forward_maps_a_float_matrix_to_probabilities():
    torch.manual_seed(0)
    model = build_model(make_spec())
    x = torch.tensor([[12.0, -1.5, 1.0, 5.0], [8.0, 0.0, 2.0, 23.0], [10.0, -1.0, 0.0, 0.0]])
    p = model(x)
    assert p.shape == (3,) and p.dtype == torch.float32
    assert torch.all((p > 0) & (p < 1))
    assert torch.allclose(torch.sigmoid(model.logits(x)), p)


def test_null_numeric_inputs_are_filled_with_the_stored_value():
    torch.manual_seed(0)
    model = build_model(make_spec(fills=[11.0, -2.0]))
    with_nan = torch.tensor([[float("nan"), float("nan"), 1.0, 3.0]])
    filled = torch.tensor([[11.0, -2.0, 1.0, 3.0]])
    assert torch.allclose(model(with_nan), model(filled))


def test_normalization_is_folded_into_the_module():
    torch.manual_seed(0)
    spec = make_spec()
    model = build_model(spec)
    shifted = build_model(
        make_spec(means=[0.0, 0.0], stds=[1.0, 1.0], fills=[0.0, 0.0]),
        model.state_dict() | {"mean": torch.zeros(2), "std": torch.ones(2), "fill": torch.zeros(2)},
    )
    raw = torch.tensor([[14.0, 0.0, 1.0, 2.0]])
    normalized = torch.tensor([[(14.0 - 10.0) / 2.0, (0.0 + 1.0) / 0.5, 1.0, 2.0]])
    assert torch.allclose(model(raw), shifted(normalized), atol=1e-6)


def test_unknown_null_and_out_of_range_codes_read_as_unknown():
    torch.manual_seed(0)
    model = build_model(make_spec())
    base = [10.0, -1.0]
    unknown = model(torch.tensor([base + [0.0, 0.0]]))
    for codes in ([float("nan"), float("nan")], [7.0, 99.0], [-3.0, -1.0]):
        assert torch.allclose(model(torch.tensor([base + codes])), unknown)
    assert not torch.allclose(model(torch.tensor([base + [1.0, 0.0]])), unknown)


def test_a_model_without_categorical_features_works():
    spec = make_spec(categorical=[], vocab={})
    p = CTRModel(spec).eval()(torch.tensor(np.zeros((4, 2), np.float32)))
    assert p.shape == (4,)


def test_state_dict_reload_gives_identical_scores():
    torch.manual_seed(1)
    spec = make_spec()
    a = build_model(spec)
    b = build_model(spec, a.state_dict())
    x = torch.tensor([[9.0, 1.0, 2.0, 13.0]])
    assert torch.equal(a(x), b(x))
