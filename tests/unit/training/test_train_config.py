"""The typed training config: defaults, YAML loading, errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlray.errors import ConfigError
from mlray.training.config import TrainConfig, load_train_config, settings_for


def test_defaults_train_the_demo_model():
    cfg = load_train_config(None)
    assert cfg.model_name == "ctr_model" and cfg.features == "ctr_model_v1"
    assert cfg.labels.table == "impressions" and cfg.labels.label == "clicked"
    assert "request_features:hour_of_day" in cfg.extra_features
    assert cfg.tune.mode == "max" and cfg.model.hidden() == [64, 32]
    assert cfg.source is None


def test_yaml_file_and_overrides(tmp_path: Path):
    path = tmp_path / "train.yaml"
    path.write_text(
        "model_name: ctr_small\ntraining: {epochs: 5, num_workers: 2}\n"
        "tune: {num_samples: 3, max_concurrent_trials: 2, metric: val_loss}\n"
        "validation: {max_null_rate: {'user_activity:ctr_7d': 0.05}}\n"
        "settings: {data_root: /tmp/somewhere}\n"
    )
    cfg = load_train_config(path, promotion={"margin": 0.01})
    assert (
        cfg.model_name == "ctr_small" and cfg.training.epochs == 5 and cfg.training.num_workers == 2
    )
    assert cfg.tune.mode == "min" and cfg.promotion.margin == 0.01
    assert cfg.validation.max_null_rate == {"user_activity:ctr_7d": 0.05}
    assert cfg.source == str(path)
    assert str(settings_for(cfg).data_root) == "/tmp/somewhere"


@pytest.mark.parametrize(
    "body, field",
    [
        ("training: {epochs: 0}", "training.epochs"),
        ("split: {train: 0.5, validation: 0.2, test: 0.2}", "split"),
        ("split: {validation_start: '2026-01-05T00:00:00Z'}", "split"),
        (
            "tune: {search_space: {learning_rate: {kind: uniform, low: 0, high: 1}}}",
            "tune.search_space",
        ),
        ("tune: {search_space: {lr: {kind: uniform, low: 1, high: 0}}}", "tune.search_space.lr"),
        ("validation: {psi_warn: 0.3, psi_fail: 0.2}", "validation"),
        ("unknown_key: 1", "unknown_key"),
    ],
)
def test_invalid_values_name_the_file_and_field(tmp_path: Path, body: str, field: str):
    path = tmp_path / "bad.yaml"
    path.write_text(body + "\n")
    with pytest.raises(ConfigError) as err:
        load_train_config(path)
    assert str(path) in err.value.message and field in err.value.message


def test_unreadable_or_non_mapping_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="Cannot read"):
        load_train_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_train_config(tmp_path / "list.yaml")


def test_config_round_trips_through_json():
    cfg = TrainConfig()
    assert TrainConfig.model_validate(cfg.model_dump(mode="json")) == cfg


def test_the_shipped_job_config_loads_and_spells_out_the_defaults():
    path = Path(__file__).resolve().parents[3] / "jobs" / "train.yaml"
    cfg = load_train_config(path)
    assert cfg.source == str(path)
    assert (
        cfg.model_dump() == TrainConfig().model_dump()
    )  # the file documents the defaults, it changes none
