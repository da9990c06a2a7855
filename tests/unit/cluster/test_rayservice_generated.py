"""cluster/kuberay-rayservice.yaml is what ``mlray cluster rayservice`` renders, and it is valid.

The serve configs validate against Ray Serve's own schema, their import paths
resolve without starting Ray, and the generated ``serveConfigV2`` is the
production config, with a GPU worker group that holds its GPU deployment.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from cluster_files import CLUSTER, REPO, SERVE_CONFIGS, load
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from mlray.cli import app
from mlray.commands.cluster import (
    GpuDemand,
    gpu_capacity,
    render_rayservice,
    serve_gpu_demand,
)
from mlray.errors import ConfigError
from mlray.serving.config import ServeArgs

RAYSERVICE = CLUSTER / "kuberay-rayservice.yaml"


def test_the_committed_rayservice_is_what_the_generator_renders_from_production_yaml():
    # Fails when serve_configs/production.yaml or the RayCluster changed without
    # `make cluster-manifests`, or the generated file was edited by hand.
    assert RAYSERVICE.read_text() == render_rayservice(REPO)


def test_the_rayservice_carries_the_production_config_and_the_rayclusters_spec():
    svc = load(RAYSERVICE)
    assert (svc["apiVersion"], svc["kind"], svc["metadata"]) == (
        "ray.io/v1",
        "RayService",
        {"name": "mlray-serve"},
    )
    assert isinstance(svc["spec"]["serveConfigV2"], str)  # KubeRay takes a YAML string
    serve = yaml.safe_load(svc["spec"]["serveConfigV2"])
    assert serve == load(SERVE_CONFIGS / "production.yaml")
    ServeDeploySchema.model_validate(serve)
    assert svc["spec"]["rayClusterConfig"] == load(CLUSTER / "kuberay-raycluster.yaml")["spec"]


SERVE_FILES = sorted(p.name for p in SERVE_CONFIGS.glob("*.yaml"))


def test_both_serve_configs_are_checked():
    assert {"local.yaml", "production.yaml"} <= set(SERVE_FILES)


@pytest.mark.parametrize("name", SERVE_FILES)
def test_serve_configs_validate_against_ray_serves_schema_and_mlrays_args(name: str):
    config = load(SERVE_CONFIGS / name)
    schema = ServeDeploySchema.model_validate(config)
    assert schema.applications
    for a in config["applications"]:
        if a["import_path"] == "mlray.serving.app:build_app":
            ServeArgs.model_validate(a.get("args") or {})


@pytest.mark.parametrize("name", SERVE_FILES)
def test_every_import_path_resolves_to_an_application_builder(name: str):
    import importlib

    for a in load(SERVE_CONFIGS / name)["applications"]:
        module, attr = a["import_path"].split(":")
        assert callable(getattr(importlib.import_module(module), attr)), a["import_path"]


def test_production_deployment_names_are_the_apps_deployments():
    from mlray.serving.deployments import Ingress, ModelDeployment

    names = [
        d["name"] for d in load(SERVE_CONFIGS / "production.yaml")["applications"][0]["deployments"]
    ]
    assert names == [Ingress.name, ModelDeployment.name] == ["Ingress", "ModelDeployment"]


def test_the_gpu_worker_groups_hold_the_model_deployment_at_max_replicas():
    demand = serve_gpu_demand(load(SERVE_CONFIGS / "production.yaml"))
    assert demand == [GpuDemand("mlray", "ModelDeployment", 1, 1, 4)]
    assert gpu_capacity(load(RAYSERVICE)["spec"]["rayClusterConfig"]) == 4
    assert serve_gpu_demand(load(SERVE_CONFIGS / "local.yaml")) == []  # inprocess, CPU


def _sources(tmp_path: Path, max_gpu_replicas: int | None = None) -> Path:
    for rel in ("serve_configs/production.yaml", "cluster/kuberay-raycluster.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp_path / rel)
    if max_gpu_replicas is not None:
        path = tmp_path / "cluster/kuberay-raycluster.yaml"
        path.write_text(
            path.read_text().replace("maxReplicas: 4", f"maxReplicas: {max_gpu_replicas}")
        )
    return tmp_path


def test_too_few_gpus_for_the_model_deployment_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        render_rayservice(_sources(tmp_path, max_gpu_replicas=2))
    assert info.value.message == (
        "cluster/kuberay-raycluster.yaml (rayClusterConfig): the GPU worker groups hold 2 "
        "nvidia.com/gpu at maxReplicas, but mlray/ModelDeployment (4 x 1 GPU) need 4. Raise "
        "the GPU group's maxReplicas (or GPUs per pod), or lower the deployment's max_replicas."
    )


def test_a_serve_config_ray_serve_would_refuse_is_a_config_error(tmp_path: Path):
    src = _sources(tmp_path)
    path = src / "serve_configs/production.yaml"
    path.write_text(
        path.read_text().replace("proxy_location: EveryNode", "proxy_location: Everywhere")
    )
    with pytest.raises(ConfigError) as info:
        render_rayservice(src)
    assert info.value.message.startswith(
        f"Serve config {path} is invalid: proxy_location: Input should be "
    )


def test_the_cli_writes_the_file_and_check_exits_1_while_it_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(_sources(tmp_path))
    runner = CliRunner()
    out = tmp_path / "cluster/kuberay-rayservice.yaml"

    stale = runner.invoke(app, ["cluster", "rayservice", "--check"])
    assert (stale.exit_code, out.exists()) == (1, False)
    assert "cluster/kuberay-rayservice.yaml is stale" in stale.output

    wrote = runner.invoke(app, ["cluster", "rayservice"])
    assert (wrote.exit_code, wrote.output) == (0, "wrote cluster/kuberay-rayservice.yaml\n")
    assert out.read_text() == RAYSERVICE.read_text()

    fresh = runner.invoke(app, ["cluster", "rayservice", "--check"])
    assert (fresh.exit_code, fresh.output) == (
        0,
        "cluster/kuberay-rayservice.yaml is up to date.\n",
    )

    prod = tmp_path / "serve_configs/production.yaml"
    prod.write_text(prod.read_text().replace("max_replicas: 16", "max_replicas: 12"))
    drifted = runner.invoke(app, ["cluster", "rayservice", "--check"])
    assert drifted.exit_code == 1
    assert "-          max_replicas: 16\n+          max_replicas: 12" in drifted.output
