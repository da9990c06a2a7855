"""Joining a cluster: bounded, typed failures; the local start's dashboard port; jobs' data root."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray

from mlray import ray_session
from mlray.config import load_settings
from mlray.errors import BackendUnavailable, ConfigError
from mlray.ray_session import (
    JOB_CONFIG_ENV,
    check_job_data_root,
    cluster_address,
    ensure_ray,
    reserve_dashboard_port,
)


@pytest.fixture
def init_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records ray.init's arguments instead of starting or joining anything."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    # ensure_ray sets these with setdefault: restore them after the test.
    for name in ("RAY_AUTH_MODE", "RAY_DATA_PARQUET_FOOTER_NUM_ACTORS"):
        monkeypatch.setenv(name, "unchanged")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return calls


@pytest.fixture
def listener() -> Iterator[str]:
    """host:port of a socket that accepts connections but is no Ray GCS."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"127.0.0.1:{s.getsockname()[1]}"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_closed_address_fails_at_once_with_backend_unavailable_naming_it(init_calls):
    address = f"127.0.0.1:{closed_port()}"
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable) as e:
        ensure_ray(load_settings(config_file=None, ray={"address": address}))
    assert time.monotonic() - t0 < 10
    assert f"ray.address {address!r}" in e.value.message
    assert "ray start --head" in e.value.message
    assert init_calls == []


def test_an_open_port_without_a_ray_gcs_fails_within_the_connect_timeout(
    init_calls, listener, monkeypatch
):
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable) as e:
        ensure_ray(
            load_settings(config_file=None, ray={"address": listener, "connect_timeout_s": 2.0})
        )
    assert 1.5 < time.monotonic() - t0 < 8
    assert f"ray.address {listener!r}" in e.value.message
    assert "no Ray GCS answered within 2 s" in e.value.message
    assert init_calls == []


def test_sigterm_ends_a_process_waiting_for_a_cluster_at_once(listener):
    """ray.init's own retries ignore SIGTERM for minutes; the bounded check does not."""
    script = textwrap.dedent(
        f"""
        from mlray import ray_session
        from mlray.config import load_settings
        print("waiting", flush=True)
        ray = {{"address": "{listener}", "connect_timeout_s": 60}}
        ray_session.ensure_ray(load_settings(config_file=None, ray=ray))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
        time.sleep(1.5)  # inside the check now
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(timeout=5) == -15
    finally:
        proc.kill()


def test_a_dashboard_url_is_a_config_error_that_says_which_address_to_use(init_calls):
    with pytest.raises(ConfigError) as e:
        ensure_ray(load_settings(config_file=None, ray={"address": "http://127.0.0.1:8265"}))
    assert "ray.address 'http://127.0.0.1:8265' is a dashboard URL" in e.value.message
    assert "host:6379" in e.value.message
    assert init_calls == []


def test_ray_address_from_the_environment_is_joined_without_local_start_arguments(
    init_calls, monkeypatch
):
    """A submitted job's driver: RAY_ADDRESS names the cluster; nothing local is started."""
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    monkeypatch.setattr(ray_session, "check_reachable", lambda *a: None)
    ensure_ray(load_settings(config_file=None, ray={"num_cpus": 2}))
    (kw,) = init_calls
    assert kw["address"] == "10.0.0.5:6379"
    assert not {"num_cpus", "dashboard_port", "include_dashboard", "runtime_env"} & set(kw)


def test_cluster_address_prefers_the_setting_then_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    s = load_settings(config_file=None)
    assert cluster_address(s) == (None, "ray.address")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert cluster_address(s) == ("10.0.0.5:6379", "RAY_ADDRESS")
    auto = load_settings(config_file=None, ray={"address": "auto"})
    assert cluster_address(auto) == ("10.0.0.5:6379", "RAY_ADDRESS")
    given = load_settings(config_file=None, ray={"address": "10.0.0.9:6379"})
    assert cluster_address(given) == ("10.0.0.9:6379", "ray.address")


def test_a_local_start_is_a_new_cluster_with_the_reserved_dashboard_port(init_calls):
    ensure_ray(load_settings(config_file=None, ray={"num_cpus": 2}))
    (kw,) = init_calls
    assert kw["address"] == "local" and kw["num_cpus"] == 2
    port = kw["dashboard_port"]
    assert kw["runtime_env"]["env_vars"]["RAY_API_SERVER_ADDRESS"] == f"http://127.0.0.1:{port}"


def test_two_processes_never_reserve_the_same_dashboard_port():
    """The second waits for the first to start its dashboard, then finds the port taken."""
    preferred = closed_port()
    script = textwrap.dedent(
        f"""
        from mlray.ray_session import reserve_dashboard_port
        with reserve_dashboard_port({preferred}) as port:
            print(port, flush=True)
        """
    )
    with reserve_dashboard_port(preferred) as mine:
        assert mine == preferred
        other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        time.sleep(2.0)  # long enough for it to import and reach the reservation
        still_waiting = other.poll() is None
        dashboard = socket.socket()  # what the local Ray's dashboard does before init returns
        dashboard.bind(("127.0.0.1", mine))
        dashboard.listen()
    try:
        out, _ = other.communicate(timeout=30)
    finally:
        dashboard.close()
    assert still_waiting
    assert int(out) != mine


def test_a_relative_data_root_is_refused_in_a_submitted_job(monkeypatch, tmp_path):
    relative = load_settings(config_file=None, data_root="mlray-data")
    check_job_data_root(relative)  # not a submitted job: resolved where the user stands
    monkeypatch.setenv(JOB_CONFIG_ENV, '{"runtime_env": {"working_dir": "gcs://_ray_pkg_x.zip"}}')
    with pytest.raises(ConfigError) as e:
        check_job_data_root(relative)
    assert e.value.message.startswith("data_root 'mlray-data' is relative")
    assert '"MLRAY_DATA_ROOT": "\'$PWD\'/mlray-data"' in e.value.message
    check_job_data_root(load_settings(config_file=None, data_root=str(tmp_path)))
    check_job_data_root(load_settings(config_file=None, data_root="s3://bucket/mlray"))


def test_a_loopback_head_that_ray_would_reach_on_another_ip_is_refused_at_once():
    """Ray rewrites 127.0.0.1 to this machine's IP; a head listening on loopback only hangs."""
    from ray._private.services import canonicalize_bootstrap_address

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        target = f"127.0.0.1:{server.getsockname()[1]}"
        used = canonicalize_bootstrap_address(target)
        if used == target:
            pytest.skip("Ray keeps 127.0.0.1 on this machine; nothing is rewritten")
        t0 = time.monotonic()
        with pytest.raises(BackendUnavailable) as e:
            ray_session._check_rewritten(target, target, "ray.address", 2.0)
        assert time.monotonic() - t0 < 3
        assert f"Ray connects to {used} for {target}" in str(e.value)
        assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0" in str(e.value)
