"""The serving app's args: typos and bad values are a ConfigError naming the key."""

from __future__ import annotations

import re

import pytest

from mlray.errors import ConfigError
from mlray.serving.app import parse_args
from mlray.serving.config import LogConfig, ModelDeploymentConfig, ServeArgs


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ({"shdow": "x"}, "shdow"),
        ({"shape": "gpu"}, "shape"),
        ({"log": {"table": "a b"}}, "log.table"),
        ({"log": {"tabel": "x"}}, "log.tabel"),
        ({"model_deployment": {"num_gpus": -1}}, "model_deployment.num_gpus"),
        ({"max_batch": 0}, "max_batch"),
        ({"max_body_bytes": 10}, "max_body_bytes"),
        ({"store_down": "ignore"}, "store_down"),
        ({"model_name": "a/b"}, "model_name"),
        ({"ingress_replicas": "many"}, "ingress_replicas"),
    ],
)
def test_an_unknown_key_or_bad_value_is_a_config_error_naming_the_key(args: dict, key: str) -> None:
    with pytest.raises(ConfigError, match="Invalid serving args") as got:
        parse_args(args)
    # A union's error names the member too ("ingress_replicas.int: ..."): the key leads its loc.
    assert re.search(rf"(: |; ){re.escape(key)}[.:]", got.value.message), got.value.message


def test_every_problem_is_listed_in_one_error() -> None:
    with pytest.raises(ConfigError) as got:
        parse_args({"shdow": "x", "shape": "gpu"})
    assert "shdow:" in got.value.message and "shape:" in got.value.message


def test_a_shadow_given_as_a_number_is_a_pinned_version() -> None:
    args = parse_args({"shadow": 3})
    assert args.shadow == "3" and args.shadow_is_version


@pytest.mark.parametrize("shadow", ["challenger", None])
def test_an_alias_or_no_shadow_is_not_a_version(shadow: str | None) -> None:
    args = parse_args({"shadow": shadow})
    assert args.shadow == shadow and not args.shadow_is_version


@pytest.mark.parametrize("given", [None, {}])
def test_defaults(given: dict | None) -> None:
    args = parse_args(given)
    assert args == ServeArgs()
    assert (args.model_name, args.champion, args.shadow) == ("ctr_model", "champion", "challenger")
    assert args.shadow_is_version is False
    assert (args.shape, args.runtime, args.precision, args.device) == (
        "inprocess",
        "auto",
        "auto",
        "auto",
    )
    assert args.features is None and args.config_file is None and args.settings == {}
    assert (args.max_batch, args.max_body_bytes, args.store_down) == (256, 1_000_000, "degraded")
    assert args.ingress_replicas == 1 and args.reload_interval_s == 10.0
    assert args.log == LogConfig() and args.log.table == "predictions"
    assert args.model_deployment == ModelDeploymentConfig()
    assert args.model_deployment.num_gpus == 0.0


def test_given_args_are_kept_and_a_parsed_object_passes_through() -> None:
    args = parse_args(
        {"ingress_replicas": "auto", "log": {"commit_rows": 10}, "settings": {"data_root": "/d"}}
    )
    assert args.ingress_replicas == "auto" and args.log.commit_rows == 10
    assert args.log.replica_batch_rows == 64  # the rest of the section keeps its defaults
    assert args.settings == {"data_root": "/d"}
    assert parse_args(args) is args


def test_the_cpu_reservations_reach_the_deployments(tmp_path) -> None:
    """ingress_cpus, logger_cpus and model_deployment.num_cpus/num_gpus become ray_actor_options."""
    from mlray.config import load_settings
    from mlray.serving.app import compose

    args = parse_args(
        {
            "ingress_cpus": 0.25,
            "logger_cpus": 0.1,
            "shape": "model_deployment",
            "model_deployment": {"num_cpus": 0.5, "num_gpus": 1},
        }
    )
    app = compose(args, load_settings(config_file=None, data_root=str(tmp_path)))
    ingress = app._bound_deployment
    options = {ingress.name: ingress.ray_actor_options}
    for arg in ingress.init_args:
        bound = getattr(arg, "_bound_deployment", None)
        if bound is not None:
            options[bound.name] = bound.ray_actor_options
    assert options["Ingress"]["num_cpus"] == 0.25
    assert options["PredictionLogger"]["num_cpus"] == 0.1
    assert options["ModelDeployment"]["num_cpus"] == 0.5
    assert options["ModelDeployment"]["num_gpus"] == 1.0
