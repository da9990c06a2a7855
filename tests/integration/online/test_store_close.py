"""``FeatureStore.close()`` stops the embedded Redis that store started, and no other."""

from __future__ import annotations

import redis
from online_helpers import make_view, now_us, repo_of, rows

from mlray.config import load_settings
from mlray.online.embedded import EmbeddedRedis, embedded_dir
from mlray.store import FeatureStore


def test_close_stops_the_embedded_server_the_store_started_and_keeps_its_rows(tmp_path):
    settings = load_settings(config_file=None, data_root=str(tmp_path / "data"))
    view = make_view()
    server = EmbeddedRedis(embedded_dir(settings))
    fs = FeatureStore(settings, repo_of(view))
    t = now_us() - 1000
    fs.online.write(view, rows(view, [(1, t, t, 1.5, 2, "x")]), now_us())
    assert server.running()
    fs.close()
    assert not server.running() and server.pid is None
    again = FeatureStore(settings, repo_of(view))  # the next store restarts it with the data
    try:
        got = again.get_online_features({"user_id": 1}, ["stats:score"]).rows
        assert got == [{"stats__score": 1.5}]
    finally:
        again.close()
    assert not server.running()


def test_close_leaves_a_server_someone_else_started_running(tmp_path):
    settings = load_settings(config_file=None, data_root=str(tmp_path / "data"))
    view = make_view()
    server = EmbeddedRedis(embedded_dir(settings))
    server.start()  # another owner (a serving app, another process) started it first
    try:
        fs = FeatureStore(settings, repo_of(view))
        assert fs.online_freshness([view.name])[0].newest_event_time is None
        fs.close()
        assert server.running() and redis.Redis.from_url(server.url).ping()
    finally:
        server.stop(save=False)


def test_close_leaves_a_configured_redis_url_alone(tmp_path, redis_server):
    settings = load_settings(
        config_file=None, data_root=str(tmp_path / "data"), redis={"url": redis_server.url}
    )
    fs = FeatureStore(settings, repo_of(make_view()))
    fs.online_freshness()
    fs.close()
    assert redis_server.running()
    assert not (tmp_path / "data" / "online").exists()  # no embedded server was started
