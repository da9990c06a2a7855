"""The embedded redis-server: started under the data root, reused, persisted, stopped unused."""

from __future__ import annotations

import pytest
import redis
from online_helpers import make_view, now_us, repo_of, rows

from mlray.config import load_settings
from mlray.errors import ConfigError
from mlray.online.embedded import EmbeddedRedis, embedded_dir, ensure_embedded
from mlray.store import FeatureStore


def test_start_reuse_persist_stop(tmp_path):
    first = EmbeddedRedis(tmp_path / "srv")
    url = first.start()
    pid = first.pid
    assert pid and first.running() and url == f"unix://{tmp_path / 'srv' / 'redis.sock'}"
    assert (
        EmbeddedRedis(tmp_path / "srv").start() == url
        and EmbeddedRedis(tmp_path / "srv").pid == pid
    )  # reused
    redis.Redis.from_url(url).set("k", b"v")
    first.stop(save=True)
    assert first.pid is None and not first.running()
    second = EmbeddedRedis(tmp_path / "srv")
    second.start()
    try:
        assert (
            second.pid != pid and redis.Redis.from_url(second.url).get("k") == b"v"
        )  # the data survived
    finally:
        second.stop(save=False)


def test_deep_directories_get_a_short_socket(tmp_path):
    deep = tmp_path.joinpath(*["a_rather_long_directory_name"] * 5)
    server = EmbeddedRedis(deep)
    try:
        assert len(str(server.socket)) < 100 and server.socket.parent != deep
        assert redis.Redis.from_url(server.start()).ping()
    finally:
        server.stop(save=False)


def test_settings_without_url_start_it_under_the_data_root(tmp_path):
    settings = load_settings(
        config_file=None, data_root=str(tmp_path / "data"), redis={"url": None}
    )
    view = make_view()
    fs = FeatureStore(settings, repo_of(view))
    t = now_us() - 1000
    fs.online.write(view, rows(view, [(1, t, t, 1.5, 2, "x")]), now_us())
    assert fs.get_online_features({"user_id": 1}, ["stats:score"]).rows == [{"stats__score": 1.5}]
    server = EmbeddedRedis(embedded_dir(settings))
    assert server.dir == tmp_path / "data" / "online" and server.running()
    other = redis.Redis.from_url(server.url, client_name="someone-else")
    other.ping()
    server.stop_if_unused()
    assert server.running()  # another client is still connected
    other.close()
    server.stop_if_unused()
    assert not server.running() and (server.dir / "dump.rdb").exists()
    fs.close()
    ensure_embedded(settings)  # restarts, with the saved rows
    assert FeatureStore(settings, repo_of(view)).get_online_features(
        {"user_id": 1}, ["stats:score"]
    ).rows == [{"stats__score": 1.5}]
    server.stop(save=False)


def test_remote_data_root_needs_a_url():
    with pytest.raises(ConfigError, match="local data_root.*redis.url"):
        embedded_dir(load_settings(config_file=None, data_root="s3://bucket/mlray"))
