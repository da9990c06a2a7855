"""ModelSpec: the input layout and architecture that training, export and serving share."""

from __future__ import annotations

import json

import pytest

from mlray.errors import ConfigError
from mlray.runtimes.model_spec import (
    DEFAULT_LAYERS,
    DEFAULT_WIDTH,
    SPEC_FORMAT,
    ModelSpec,
    hidden_layers,
)


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
        "feature_refs": ["v:a", "v:b", "v:cat", "r:hour"],
    }
    return ModelSpec(**(body | over))


def test_spec_round_trips_through_json_and_declares_the_input_order():
    spec = make_spec()
    assert spec.feature_names == ["v__a", "v__b", "v__cat", "r__hour"] and spec.num_features == 4
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert spec.cardinalities() == [3, 25]


def test_to_dict_holds_the_fields_and_the_format_only():
    body = json.loads(make_spec().to_json())
    assert body["format"] == SPEC_FORMAT
    assert set(body) == {*ModelSpec.__dataclass_fields__, "format"}


def test_a_spec_written_with_the_old_duplicate_keys_still_loads():
    spec = make_spec()
    old = spec.to_dict() | {
        "feature_names": spec.feature_names,
        "numeric_features": spec.numeric,
        "categorical_features": spec.categorical,
    }
    assert ModelSpec.from_dict(old) == spec


def test_spec_rejects_inconsistent_statistics_and_newer_formats():
    with pytest.raises(ConfigError, match="one value per numeric feature"):
        make_spec(means=[1.0])
    with pytest.raises(ConfigError, match="no vocabulary"):
        make_spec(vocab={"v__cat": []})
    with pytest.raises(ConfigError, match="no input features"):
        make_spec(numeric=[], categorical=[], vocab={}, means=[], stds=[], fills=[])
    with pytest.raises(ConfigError, match="newer"):
        ModelSpec.from_dict({**make_spec().to_dict(), "format": SPEC_FORMAT + 1})
    with pytest.raises(ConfigError, match="incomplete"):
        ModelSpec.from_dict({"numeric": ["a"]})


def test_the_default_architecture_is_defined_once():
    assert hidden_layers() == hidden_layers(DEFAULT_WIDTH, DEFAULT_LAYERS) == [64, 32]
    assert hidden_layers(128, 3) == [128, 64, 32]
    assert hidden_layers(16, 4) == [16, 8, 4, 4]  # never narrower than 4
    spec = make_spec()
    del_hidden = {k: v for k, v in spec.to_dict().items() if k != "hidden"}
    assert ModelSpec.from_dict(del_hidden).hidden == hidden_layers()
