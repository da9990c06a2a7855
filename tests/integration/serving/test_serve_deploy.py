"""The serve configs with the real ``serve deploy`` CLI against a Ray cluster of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from ray_head import ray_head
from serving_support import Served, free_port, wait_for

from mlray.serving.app import parse_args

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ray start --head`` on loopback ports of its own; yields the dashboard address."""
    with ray_head(tmp_path_factory.mktemp("ray-head")) as address:
        yield address


def local_config(served: Served, port: int, tmp_path: Path) -> Path:
    """serve_configs/local.yaml pointed at the test's data, Redis and a free HTTP port."""
    body = yaml.safe_load((ROOT / "serve_configs" / "local.yaml").read_text())
    body["http_options"]["port"] = port
    args = body["applications"][0]["args"]
    args["settings"] = {
        "data_root": served.settings.data_root,
        "project": served.settings.project,
        "num_buckets": 4,
        "redis": served.settings.redis.model_dump(),
    }
    args["ingress_cpus"] = 0.5
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_serve_deploy_of_the_local_config_serves_the_routes(
    served: Served, head: str, tmp_path: Path
) -> None:
    port = free_port()
    config = local_config(served, port, tmp_path)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run(
        [str(BIN / "serve"), "deploy", str(config), "--address", head],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).status_code == 200, 120, 0.5)
        body = {
            "entities": {"user_id": 3, "item_id": 7},
            "context": {"device": "mobile", "price": 5},
        }
        got = requests.post(f"{url}/predict", json=body, timeout=10)
        assert got.status_code == 200 and got.json()["model_version"] == "1"
        assert requests.get(f"{url}/model", timeout=5).json()["shadow_version"] == "2"
    finally:
        subprocess.run(
            [str(BIN / "serve"), "shutdown", "-y", "--address", head],
            env=env,
            capture_output=True,
            timeout=120,
        )


@pytest.mark.parametrize("name", ["local.yaml", "production.yaml"])
def test_every_serve_config_names_the_builder_and_valid_args(name: str) -> None:
    body = yaml.safe_load((ROOT / "serve_configs" / name).read_text())
    (application,) = body["applications"]
    assert application["import_path"] == "mlray.serving.app:build_app"
    args = parse_args(application["args"])  # unknown keys or bad values raise
    deployments = {d["name"] for d in application.get("deployments", [])}
    assert deployments <= {"Ingress", "ModelDeployment", "PredictionLogger"}
    if name == "production.yaml":
        assert args.shape == "model_deployment" and args.model_deployment.num_gpus == 1
        assert args.shadow == "challenger"


def test_mlray_serve_serves_in_the_foreground_and_stops_gracefully_on_ctrl_c(
    served: Served, tmp_path: Path
) -> None:
    """``mlray serve`` with a settings file: answers; Ctrl-C then commits the log rows, exits 0."""
    import deltalake

    settings_file = tmp_path / "mlray.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "data_root": served.settings.data_root,
                "project": served.settings.project,
                "num_buckets": 4,
                "redis": served.settings.redis.model_dump(),
                "ray": {"num_cpus": 2},
            }
        )
    )
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [
            str(BIN / "mlray"),
            "serve",
            "--port",
            str(port),
            "--shadow",
            "none",
            "--config",
            str(settings_file),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=2).status_code == 200, 120, 0.5)
        body = {
            "entities": {"user_id": 4, "item_id": 7},
            "context": {"device": "tablet", "price": 9},
        }
        got = requests.post(
            f"{url}/predict", json=body, headers={"X-Request-ID": "cli-1"}, timeout=10
        )
        assert got.status_code == 200 and got.json()["request_id"] == "cli-1"
        time.sleep(3)  # Ctrl-C after start-up, as a user would
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert f"serving ctr_model on {url}" in out and out.rstrip().endswith("stopped")
    log = deltalake.DeltaTable(served.settings.table_uri("predictions", "predictions"))
    assert "cli-1" in log.to_pyarrow_table(columns=["request_id"])["request_id"].to_pylist()
