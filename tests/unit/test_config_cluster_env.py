"""Production settings from a pod's environment: what the KubeRay manifests set becomes Settings.

The env block of cluster/kuberay-raycluster.yaml is resolved the way the kubelet
does (secretKeyRef -> the secret's value), then read by ``load_settings``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlray.config import load_settings
from mlray.errors import ConfigError
from mlray.online.redis_store import RedisOnlineStore
from mlray.online.redis_target import redis_target

REPO = Path(__file__).resolve().parents[2]
# What `kubectl create secret generic ...` (README "Kubernetes") would hold.
SECRETS = {
    ("mlray-redis", "url"): "rediss://:s3cr%40t@redis.mlray.svc:6380/0",
    ("mlray-storage", "storage_options"): json.dumps(
        {
            "AWS_ACCESS_KEY_ID": "minio",
            "AWS_SECRET_ACCESS_KEY": "minio-secret/+=",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": "http://minio.mlray.svc:9000",
            "AWS_ALLOW_HTTP": "true",
        }
    ),
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in list(os.environ):
        if k.startswith("MLRAY_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)  # no ./mlray.yaml


def pod_env() -> dict[str, str]:
    """The head container's environment, secrets resolved as the kubelet would."""
    manifest = yaml.safe_load((REPO / "cluster/kuberay-raycluster.yaml").read_text())
    env: list[dict[str, Any]] = manifest["spec"]["headGroupSpec"]["template"]["spec"]["containers"][
        0
    ]["env"]
    out = {}
    for e in env:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = SECRETS[(ref["name"], ref["key"])]
        else:
            out[e["name"]] = e["value"]
    return out


def test_the_pod_environment_makes_the_production_settings(monkeypatch: pytest.MonkeyPatch):
    for k, v in pod_env().items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.data_root == "s3://mlray-data/prod"
    assert s.storage_options == {
        "AWS_ACCESS_KEY_ID": "minio",
        "AWS_SECRET_ACCESS_KEY": "minio-secret/+=",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://minio.mlray.svc:9000",
        "AWS_ALLOW_HTTP": "true",
    }
    assert s.redis.url == "rediss://:s3cr%40t@redis.mlray.svc:6380/0"
    assert s.redis.ssl_ca_certs == "/etc/mlray/redis-tls/ca.crt"
    assert s.mlflow_tracking_uri == s.tracking_uri == "http://mlflow:5000"
    assert (
        s.table_uri("predictions", "predictions") == "s3://mlray-data/prod/predictions/predictions"
    )
    target = redis_target(s)
    assert target.url == (
        "rediss://:s3cr%40t@redis.mlray.svc:6380/0?ssl_ca_certs=/etc/mlray/redis-tls/ca.crt"
    )
    assert target.display_url == (
        "rediss://:***@redis.mlray.svc:6380/0?ssl_ca_certs=/etc/mlray/redis-tls/ca.crt"
    )


def test_the_redis_client_speaks_tls_with_the_ca_bundle_and_the_password(
    monkeypatch: pytest.MonkeyPatch,
):
    for k, v in pod_env().items():
        monkeypatch.setenv(k, v)
    store = RedisOnlineStore(redis_target(load_settings()))  # a pool: nothing connects yet
    pool = store._pool
    assert pool is not None
    kwargs = pool.connection_kwargs
    assert (pool.connection_class.__name__, kwargs["host"], kwargs["port"], kwargs["db"]) == (
        "SSLConnection",
        "redis.mlray.svc",
        6380,
        0,
    )
    assert (kwargs["password"], kwargs["ssl_ca_certs"]) == ("s3cr@t", "/etc/mlray/redis-tls/ca.crt")


def test_the_ca_bundle_replaces_one_given_in_the_url(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "MLRAY_REDIS__URL", "rediss://h:6380/1?ssl_ca_certs=/old.pem&ssl_cert_reqs=required"
    )
    monkeypatch.setenv("MLRAY_REDIS__SSL_CA_CERTS", "/etc/ca dir/ca.crt")
    assert redis_target(load_settings()).url == (
        "rediss://h:6380/1?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca+dir/ca.crt"
    )


def test_a_ca_bundle_for_a_plain_redis_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLRAY_REDIS_URL", "redis://:pw@redis:6379/0")
    monkeypatch.setenv("MLRAY_REDIS__SSL_CA_CERTS", "/etc/mlray/redis-tls/ca.crt")
    with pytest.raises(ConfigError) as info:
        redis_target(load_settings())
    assert info.value.message == (
        "redis.ssl_ca_certs is '/etc/mlray/redis-tls/ca.crt', but redis.url "
        "'redis://:***@redis:6379/0' does not use TLS: use a rediss:// URL, or unset "
        "redis.ssl_ca_certs."
    )


@pytest.mark.parametrize(
    "raw",
    [
        '{"AWS_ALLOW_HTTP": true, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "PORT": 9000}',
        "{AWS_ALLOW_HTTP: true, AWS_ENDPOINT_URL: 'http://127.0.0.1:9000', PORT: 9000}",
    ],
    ids=["json", "yaml"],
)
def test_storage_options_from_a_json_or_yaml_mapping_are_text(
    monkeypatch: pytest.MonkeyPatch, raw: str
):
    monkeypatch.setenv("MLRAY_STORAGE_OPTIONS", raw)
    assert load_settings().storage_options == {
        "AWS_ALLOW_HTTP": "true",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "PORT": "9000",
    }


def test_storage_options_one_variable_per_key(monkeypatch: pytest.MonkeyPatch):
    # The other way to mount a secret: one env var per key (names are lower-cased).
    monkeypatch.setenv("MLRAY_STORAGE_OPTIONS__AWS_ACCESS_KEY_ID", "minio")
    monkeypatch.setenv("MLRAY_STORAGE_OPTIONS__AWS_SECRET_ACCESS_KEY", "minio-secret")
    assert load_settings().storage_options == {
        "aws_access_key_id": "minio",
        "aws_secret_access_key": "minio-secret",
    }


def test_a_nested_storage_option_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("MLRAY_STORAGE_OPTIONS", '{"AWS_REGION": ["us-east-1"]}')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.message == (
        "Invalid settings (from MLRAY_* environment): storage_options.AWS_REGION "
        "(from MLRAY_STORAGE_OPTIONS): Input should be a valid string"
    )
