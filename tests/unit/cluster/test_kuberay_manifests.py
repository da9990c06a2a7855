"""The KubeRay manifests under cluster/ have the structure the operator expects.

Required fields, known field names, valid resource names, one env block with
secrets by reference, GPU requests where the model deployment and training
run, and job entrypoints and config files that exist in the repository.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
from cluster_files import (
    CLUSTER,
    DNS_1123_LABEL,
    ENV_BLOCK,
    ENV_NAME,
    HEAD_GROUP_SPEC,
    PORT_NAME,
    RAY_CLUSTER_SPEC,
    RAY_JOB_SPEC,
    RAY_SERVICE_SPEC,
    REPO,
    SECRET_NAME,
    SUBMISSION_MODES,
    WORKER_GROUP_SPEC,
    cluster_specs,
    kuberay,
    load,
    pod_specs,
    yaml_files,
)

from mlray.commands.cluster import group_gpus

KINDS = ("RayCluster", "RayJob", "RayService")


def _kind(doc: dict[str, Any]) -> object:
    if "apiVersion" in doc:
        return (doc["apiVersion"], doc["kind"])
    if "cluster_name" in doc:
        return "ray up"
    if "applications" in doc:
        return "serve deploy"
    return "training config" if set(doc) <= {"training"} else "?"


def test_every_yaml_file_parses_and_is_a_kind_the_tools_take():
    kinds = {p.relative_to(REPO).as_posix(): _kind(load(p)) for p in yaml_files()}
    assert {k: v for k, v in kinds.items() if k.startswith("cluster/")} == {
        "cluster/kuberay-raycluster.yaml": ("ray.io/v1", "RayCluster"),
        "cluster/kuberay-rayjob-features.yaml": ("ray.io/v1", "RayJob"),
        "cluster/kuberay-rayjob-monitor.yaml": ("ray.io/v1", "RayJob"),
        "cluster/kuberay-rayjob-train.yaml": ("ray.io/v1", "RayJob"),
        "cluster/kuberay-rayservice.yaml": ("ray.io/v1", "RayService"),
        "cluster/ray-cluster.yaml": "ray up",
        "cluster/train-gpu.yaml": "training config",  # checked below
    }
    serve = {k: v for k, v in kinds.items() if k.startswith("serve_configs/")}
    assert {"serve_configs/local.yaml", "serve_configs/production.yaml"} <= set(serve)
    assert set(serve.values()) == {"serve deploy"}


@pytest.mark.parametrize("kind", KINDS)
def test_manifests_have_the_top_level_fields_and_a_valid_name(kind: str):
    manifests = kuberay(kind)
    assert manifests
    for name, m in manifests.items():
        assert sorted(m) == ["apiVersion", "kind", "metadata", "spec"], name
        assert list(m["metadata"]) == ["name"], name
        assert DNS_1123_LABEL.match(m["metadata"]["name"]), name
        # KubeRay appends suffixes (-head-svc, -raycluster-xxxxx): leave room in 63 characters.
        assert len(m["metadata"]["name"]) <= 40, name


def test_specs_use_only_the_crd_fields():
    for name, m in kuberay("RayJob").items():
        assert set(m["spec"]) <= RAY_JOB_SPEC, (name, set(m["spec"]) - RAY_JOB_SPEC)
    for name, m in kuberay("RayService").items():
        assert set(m["spec"]) <= RAY_SERVICE_SPEC, (name, set(m["spec"]) - RAY_SERVICE_SPEC)
    for where, spec in cluster_specs().items():
        assert set(spec) <= RAY_CLUSTER_SPEC, (where, set(spec) - RAY_CLUSTER_SPEC)
        assert set(spec["headGroupSpec"]) <= HEAD_GROUP_SPEC, where
        for g in spec["workerGroupSpecs"]:
            assert set(g) <= WORKER_GROUP_SPEC, (where, set(g) - WORKER_GROUP_SPEC)


def test_every_cluster_spec_has_a_head_and_well_formed_worker_groups():
    for where, spec in cluster_specs().items():
        assert spec["rayVersion"] == "2.60.0", where
        head = spec["headGroupSpec"]
        assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0", where
        assert sorted(head) == ["rayStartParams", "template"], where
        names = [g["groupName"] for g in spec["workerGroupSpecs"]]
        assert names == ["cpu", "gpu"], where
        for g in spec["workerGroupSpecs"]:
            assert {"groupName", "replicas", "minReplicas", "maxReplicas"} <= set(g), where
            assert DNS_1123_LABEL.match(g["groupName"]), where
            assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], (where, g)
            assert isinstance(g["rayStartParams"], dict), where
            assert all(isinstance(v, str) for v in g["rayStartParams"].values()), where
        if any(g["maxReplicas"] > g["minReplicas"] for g in spec["workerGroupSpecs"]):
            assert spec["enableInTreeAutoscaling"] is True, f"{where}: groups scale"


def test_every_container_is_named_imaged_and_sized():
    images = {}
    for where, spec in cluster_specs().items():
        for group, pod in pod_specs(spec).items():
            (c,) = pod["containers"]
            assert c["name"] == ("ray-head" if group == "head" else "ray-worker"), where
            images[(where, group)] = c["image"]
            res = c["resources"]
            assert res["requests"] == res["limits"], (where, group)
            assert set(res["requests"]) >= {"cpu", "memory"}, (where, group)
            for p in c.get("ports", []):
                assert PORT_NAME.match(p["name"]) and len(p["name"]) <= 15, p
            for v in pod.get("volumes", []):
                assert DNS_1123_LABEL.match(v["name"]), v
    assert set(images.values()) == {"mlray:latest", "mlray-gpu:latest"}
    for (where, group), image in images.items():
        assert image == ("mlray-gpu:latest" if group == "gpu" else "mlray:latest"), where


def test_every_ray_pod_carries_the_one_env_block_with_secrets_by_reference():
    for where, spec in cluster_specs().items():
        for group, pod in pod_specs(spec).items():
            (c,) = pod["containers"]
            assert c["env"] == ENV_BLOCK, (where, group)
            # The Redis CA bundle the env names is mounted from the mlray-redis secret.
            assert c["volumeMounts"] == [
                {"name": "redis-tls", "mountPath": "/etc/mlray/redis-tls", "readOnly": True}
            ], (where, group)
            assert pod["volumes"] == [
                {
                    "name": "redis-tls",
                    "secret": {
                        "secretName": "mlray-redis",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    },
                }
            ], (where, group)
    for e in ENV_BLOCK:
        assert ENV_NAME.match(e["name"])
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        assert ref is None or SECRET_NAME.match(ref["name"])


def test_no_manifest_holds_a_literal_secret():
    credential = re.compile(
        r"rediss?://[^\s@/]*:[^\s@/]+@|AKIA[0-9A-Z]{16}|aws_secret_access_key\s*[:=]", re.I
    )
    for p in CLUSTER.glob("*.yaml"):
        assert credential.search(p.read_text()) is None, p


def test_gpu_worker_groups_request_what_ray_is_told_and_the_gpu_image():
    for where, spec in cluster_specs().items():
        for g in spec["workerGroupSpecs"]:
            gpus = group_gpus(g)
            (c,) = g["template"]["spec"]["containers"]
            assert str(c["resources"]["limits"].get("nvidia.com/gpu", 0)) == str(gpus), where
            assert g["rayStartParams"].get("num-gpus", "0") == str(gpus), (where, g["groupName"])
            assert (gpus > 0) == (g["groupName"] == "gpu"), where


def _entrypoint(job: dict[str, Any]) -> list[str]:
    return shlex.split(job["spec"]["entrypoint"])


def test_job_entrypoints_name_scripts_and_config_files_that_exist():
    seen = {}
    for name, job in kuberay("RayJob").items():
        argv = _entrypoint(job)
        assert argv[0] == "python", name
        script = REPO / argv[1]
        assert script.is_file(), f"{name}: {argv[1]} is not in the repository"
        source = script.read_text()
        for flag in (a for a in argv[2:] if a.startswith("--")):
            assert f'"{flag}"' in source, f"{name}: {argv[1]} takes no {flag}"
        if "--config" in argv:
            assert (REPO / argv[argv.index("--config") + 1]).is_file(), name
        seen[name] = argv[1:]
    assert seen == {
        "kuberay-rayjob-features.yaml": [
            "jobs/build_features.py",
            "--start",
            "2026-01-01T00:00:00Z",
            "--end",
            "2026-01-02T00:00:00Z",
        ],
        "kuberay-rayjob-monitor.yaml": ["jobs/monitor.py", "--config", "jobs/monitor.yaml"],
        "kuberay-rayjob-train.yaml": [
            "jobs/train_pipeline.py",
            "--config",
            "cluster/train-gpu.yaml",
        ],
    }


def test_jobs_run_on_their_own_cluster_or_on_a_raycluster_defined_here():
    clusters = {m["metadata"]["name"] for m in kuberay("RayCluster").values()}
    for name, job in kuberay("RayJob").items():
        spec = job["spec"]
        assert spec["submissionMode"] in SUBMISSION_MODES, name
        assert ("rayClusterSpec" in spec) != ("clusterSelector" in spec), name
        if "clusterSelector" in spec:
            assert spec["clusterSelector"] == {"ray.io/cluster": "mlray"}, name
            assert spec["clusterSelector"]["ray.io/cluster"] in clusters
            assert spec["shutdownAfterJobFinishes"] is False, name  # never delete a shared one
        else:
            assert spec["shutdownAfterJobFinishes"] is True, name
            assert spec["ttlSecondsAfterFinished"] > 0, name


def test_the_training_job_has_a_gpu_for_every_ddp_worker():
    from mlray.training.config import load_train_config

    job = kuberay("RayJob")["kuberay-rayjob-train.yaml"]
    argv = _entrypoint(job)
    cfg = load_train_config(REPO / argv[argv.index("--config") + 1])
    assert (cfg.training.use_gpu, cfg.training.num_workers) == (True, 2)
    (gpu,) = [g for g in job["spec"]["rayClusterSpec"]["workerGroupSpecs"] if group_gpus(g)]
    # Tune runs one trial at a time; each trial's workers need one GPU each, from the start.
    assert cfg.tune.max_concurrent_trials == 1
    assert gpu["minReplicas"] * group_gpus(gpu) >= cfg.training.num_workers
    cpus = int(gpu["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])
    assert cpus >= cfg.training.cpus_per_worker


def test_the_gpu_training_config_is_jobs_train_yaml_plus_the_gpu_keys():
    from mlray.training.config import load_train_config

    base = load_train_config(REPO / "jobs/train.yaml").model_dump()
    gpu = load_train_config(CLUSTER / "train-gpu.yaml").model_dump()
    changed = {
        f"{section}.{k}": (v, gpu[section][k])
        for section in base
        if isinstance(base[section], dict)
        for k, v in base[section].items()
        if gpu[section][k] != v
    }
    assert changed == {
        "training.num_workers": (1, 2),
        "training.cpus_per_worker": (1, 4),
        "training.use_gpu": (False, True),
    }
    assert {k: v for k, v in base.items() if k != "training"} == {
        k: v for k, v in gpu.items() if k != "training"
    }


def test_the_monitor_config_loads_and_its_retrain_entrypoint_exists():
    from mlray.monitoring.config import load_monitor_config

    cfg = load_monitor_config(REPO / "jobs/monitor.yaml")
    argv = shlex.split(cfg.retrain.entrypoint)
    assert argv == ["python", "jobs/train_pipeline.py", "--config", "jobs/train.yaml"]
    assert (REPO / argv[1]).is_file() and (REPO / argv[3]).is_file()


def test_the_image_works_in_the_repository_so_relative_entrypoints_resolve():
    lines = (CLUSTER / "Dockerfile").read_text().splitlines()
    workdir = [ln.split()[1] for ln in lines if ln.startswith("WORKDIR ")]
    assert workdir == ["/home/ray/mlray"]
    assert "COPY --chown=ray:users . ." in lines
    ignored = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "mlray-data", ".git"} <= set(ignored)


def test_the_launcher_yaml_has_the_keys_ray_up_requires():
    cfg = load(CLUSTER / "ray-cluster.yaml")
    assert {"cluster_name", "provider", "available_node_types", "head_node_type"} <= set(cfg)
    assert DNS_1123_LABEL.match(cfg["cluster_name"])
    assert cfg["provider"]["type"] == "aws" and cfg["provider"]["region"]
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    assert sorted(types) == ["cpu_worker", "gpu_worker", "head"]
    for name, t in types.items():
        assert {"node_config", "resources", "min_workers", "max_workers"} <= set(t), name
        assert 0 <= t["min_workers"] <= t["max_workers"], name
    workers = sum(t["max_workers"] for n, t in types.items() if n != cfg["head_node_type"])
    assert workers == cfg["max_workers"]
    assert types["gpu_worker"]["node_config"]["InstanceType"].startswith(("g", "p"))
