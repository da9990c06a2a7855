"""The YAML files under cluster/ and serve_configs/, parsed, and what the KubeRay v1 CRDs accept.

Field names are those of KubeRay's ``ray-operator/apis/ray/v1`` types
(``RayClusterSpec``, ``HeadGroupSpec``, ``WorkerGroupSpec``, ``RayJobSpec``,
``RayServiceSpec``): a key outside these sets is a typo the API server would
drop (or refuse with strict field validation).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CLUSTER = REPO / "cluster"
SERVE_CONFIGS = REPO / "serve_configs"

# metadata.name, groupName, container and volume names: an RFC 1123 label (KubeRay derives
# Service names such as <name>-head-svc from them, so they must be labels too).
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECRET_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")  # RFC 1123 subdomain
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # IANA_SVC_NAME, <= 15

RAY_CLUSTER_SPEC = {
    "headGroupSpec",
    "workerGroupSpecs",
    "rayVersion",
    "enableInTreeAutoscaling",
    "autoscalerOptions",
    "headServiceAnnotations",
    "suspend",
    "gcsFaultToleranceOptions",
    "managedBy",
    "upgradeStrategy",
    "authOptions",
}
HEAD_GROUP_SPEC = {
    "serviceType",
    "headService",
    "enableIngress",
    "rayStartParams",
    "template",
    "resources",
    "labels",
}
WORKER_GROUP_SPEC = {
    "groupName",
    "replicas",
    "minReplicas",
    "maxReplicas",
    "numOfHosts",
    "rayStartParams",
    "template",
    "scaleStrategy",
    "idleTimeoutSeconds",
    "suspend",
    "resources",
    "labels",
}
RAY_JOB_SPEC = {
    "activeDeadlineSeconds",
    "backoffLimit",
    "rayClusterSpec",
    "submitterPodTemplate",
    "metadata",
    "clusterSelector",
    "submitterConfig",
    "managedBy",
    "deletionStrategy",
    "entrypoint",
    "runtimeEnvYAML",
    "jobId",
    "submissionMode",
    "entrypointResources",
    "entrypointNumCpus",
    "entrypointNumGpus",
    "ttlSecondsAfterFinished",
    "shutdownAfterJobFinishes",
    "suspend",
    "schedule",
}
RAY_SERVICE_SPEC = {
    "serveConfigV2",
    "rayClusterConfig",
    "serviceUnhealthySecondThreshold",
    "deploymentUnhealthySecondThreshold",
    "serveService",
    "upgradeStrategy",
    "excludeHeadPodFromServeSvc",
    "rayClusterDeletionDelaySeconds",
}
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}

# The one env block every Ray pod of every manifest carries: settings by MLRAY_* variables,
# credentials by secretKeyRef only.
ENV_BLOCK: list[dict[str, Any]] = [
    {"name": "MLRAY_DATA_ROOT", "value": "s3://mlray-data/prod"},
    {
        "name": "MLRAY_STORAGE_OPTIONS",
        "valueFrom": {"secretKeyRef": {"name": "mlray-storage", "key": "storage_options"}},
    },
    {
        "name": "MLRAY_REDIS__URL",
        "valueFrom": {"secretKeyRef": {"name": "mlray-redis", "key": "url"}},
    },
    {"name": "MLRAY_REDIS__SSL_CA_CERTS", "value": "/etc/mlray/redis-tls/ca.crt"},
    {"name": "MLRAY_MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"},
    {"name": "RAY_SERVE_THROUGHPUT_OPTIMIZED", "value": "1"},
]


def yaml_files() -> list[Path]:
    """Every YAML file under cluster/ and serve_configs/."""
    return sorted(
        p for d in (CLUSTER, SERVE_CONFIGS) for p in d.rglob("*") if p.suffix in {".yaml", ".yml"}
    )


def load(path: Path) -> dict[str, Any]:
    """The one YAML document in ``path`` (a mapping)."""
    docs = _parsed(path, path.stat().st_mtime_ns)
    assert len(docs) == 1, f"{path}: one document expected, got {len(docs)}"
    assert isinstance(docs[0], dict), f"{path}: a mapping expected"
    return copy.deepcopy(docs[0])


@functools.cache
def _parsed(path: Path, mtime_ns: int) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


def kuberay(kind: str) -> dict[str, dict[str, Any]]:
    """``{file name: manifest}`` of the KubeRay manifests of ``kind`` under cluster/."""
    out = {}
    for p in yaml_files():
        doc = load(p)
        if p.is_relative_to(CLUSTER) and doc.get("kind") == kind:
            out[p.name] = doc
    return out


def cluster_specs() -> dict[str, dict[str, Any]]:
    """Every RayCluster spec written in a manifest: RayCluster, RayJob and RayService."""
    out = {f"{n}: spec": m["spec"] for n, m in kuberay("RayCluster").items()}
    for n, m in kuberay("RayJob").items():
        if "rayClusterSpec" in m["spec"]:
            out[f"{n}: spec.rayClusterSpec"] = m["spec"]["rayClusterSpec"]
    for n, m in kuberay("RayService").items():
        out[f"{n}: spec.rayClusterConfig"] = m["spec"]["rayClusterConfig"]
    return out


def pod_specs(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{group: pod spec}`` of a RayCluster spec: ``head`` and each worker group."""
    out = {"head": spec["headGroupSpec"]["template"]["spec"]}
    for g in spec.get("workerGroupSpecs", []):
        out[g["groupName"]] = g["template"]["spec"]
    return out
