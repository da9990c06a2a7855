"""The Redis online store on a real server: layout, conditional writes, TTL, reads, failures."""

from __future__ import annotations

import socket
import struct
import threading
import time
from datetime import timedelta

import pytest
import redis
from online_helpers import dump, make_view, now_us, repo_of, rows

from mlray.errors import BackendUnavailable, ConfigError, NotFoundError, SchemaError
from mlray.features.times import EPOCH, to_datetime
from mlray.online.codec import ViewCodec
from mlray.online.embedded import EmbeddedRedis
from mlray.online.reader import OnlineReader
from mlray.online.redis_store import RedisOnlineStore
from mlray.online.redis_target import RedisTarget

H = 3_600_000_000


def reader(store, *views):
    return OnlineReader(store, repo_of(*views), "test")


def test_layout_one_string_per_view_and_entity(target, raw_redis):
    view = make_view(ttl=timedelta(days=1))
    store = RedisOnlineStore(target)
    t = now_us() - H
    stats = store.write(
        view, rows(view, [(7, t, t + 5, 0.5, 3, "a"), (8, t, t, None, None, None)]), now_us()
    )
    assert (stats.rows, stats.applied, stats.unchanged, stats.older, stats.expired) == (
        2,
        2,
        0,
        0,
        0,
    )
    key = f"{target.namespace}stats:{{7}}".encode()
    assert sorted(raw_redis.scan_iter(match=target.namespace.encode() + b"*")) == [
        key,
        f"{target.namespace}stats:{{8}}".encode(),
    ]
    row = raw_redis.get(key)
    codec = ViewCodec(view)
    # event and available time, fingerprint, null bitmap, int64 + float64 packed, then the string.
    assert struct.unpack_from("<qq", row) == (t, t + 5) and row[16:20] == codec.fingerprint
    assert row[20:21] == b"\x00" and struct.unpack_from("<dq", row, 21) == (0.5, 3)
    assert row[37:] == b"\x01\x00\x00\x00a" and len(row) == 42
    assert codec.decode(row) == (t, t + 5, 0.5, 3, "a")
    assert codec.decode(raw_redis.get(f"{target.namespace}stats:{{8}}")) == (t, t, None, None, None)
    # Expiry is event_time + ttl (not write time + ttl), to the millisecond.
    expected_ms = (t + 86_400_000_000) / 1000
    expires_at_ms = time.time() * 1000 + raw_redis.pttl(key)
    assert abs(expires_at_ms - expected_ms) < 50


def test_never_goes_backwards_but_corrections_win(target):
    view = make_view()
    store, t = RedisOnlineStore(target), now_us() - 2 * H
    assert store.write(view, rows(view, [(1, t, t + 10, 1.0, 1, "new")]), now_us()).applied == 1
    older = store.write(view, rows(view, [(1, t - H, t - H, 0.0, 0, "backfill")]), now_us())
    assert (older.applied, older.older) == (0, 1)
    # Same event time, earlier availability: also older.
    assert store.write(view, rows(view, [(1, t, t + 5, 9.0, 9, "stale")]), now_us()).applied == 0
    assert store.read([(view, [(1,)])])[0][0] == (t, t + 10, 1.0, 1, "new")
    # A correction: same event time, later available time.
    assert store.write(view, rows(view, [(1, t, t + 20, 2.0, 2, "fixed")]), now_us()).applied == 1
    assert store.read([(view, [(1,)])])[0][0] == (t, t + 20, 2.0, 2, "fixed")


def test_rewrite_is_idempotent(target, raw_redis):
    view = make_view()
    store, t = RedisOnlineStore(target), now_us() - H
    data = rows(view, [(i, t - i, t, float(i), i, str(i)) for i in range(50)])
    store.write(view, data, now_us())
    before = dump(raw_redis, target.namespace)
    again = store.write(view, data, now_us())
    assert (again.applied, again.unchanged, again.older) == (0, 50, 0)
    assert dump(raw_redis, target.namespace) == before and len(before) == 50


def test_redis_expires_keys_at_event_time_plus_ttl(target, raw_redis):
    view = make_view(ttl=timedelta(seconds=2))
    store, now = RedisOnlineStore(target), now_us()
    stats = store.write(
        view,
        rows(
            view,
            [(1, now - 1_500_000, now, 1.0, 1, "x"), (2, now - 3_000_000, now, 2.0, 2, "gone")],
        ),
        now,
    )
    assert (stats.applied, stats.expired) == (1, 1)  # the second had expired already: not written
    key = f"{target.namespace}stats:{{1}}"
    assert 0 < raw_redis.pttl(key) <= 500
    time.sleep(0.7)
    assert raw_redis.exists(key) == 0


def test_read_applies_the_ttl_with_the_offline_edge(target):
    view = make_view(ttl=timedelta(hours=1))
    store, t = RedisOnlineStore(target), now_us() - 1000
    store.write(view, rows(view, [(1, t, t, 1.0, 1, "x")]), now_us())
    r = reader(store, view)
    feats = ["stats:score", "stats:count"]
    inside = r.read({"user_id": 1}, feats, to_datetime(t + H - 1))
    assert inside.rows[0] == {"stats__score": 1.0, "stats__count": 1} and inside.missing == [[]]
    assert inside.event_times["stats"] == [to_datetime(t)]
    # event_time > t - ttl is required: at exactly event_time + ttl the value is gone.
    edge = r.read({"user_id": 1}, feats, to_datetime(t + H))
    assert edge.rows[0] == {"stats__score": -1.0, "stats__count": None}
    assert edge.missing == [["stats:score", "stats:count"]] and edge.event_us == {"stats": [None]}


def test_missing_entities_get_defaults_and_are_listed(target):
    view = make_view()
    store, t = RedisOnlineStore(target), now_us() - H
    store.write(view, rows(view, [(1, t, t, None, 5, "x")]), now_us())
    res = reader(store, view).read(
        [{"user_id": 1}, {"user_id": 404}], ["stats:score", "stats:label"]
    )
    assert res.features == ["stats__score", "stats__label"]
    # A stored null stays null (as offline); a missing entity gets the declared default.
    assert res.rows == [
        {"stats__score": None, "stats__label": "x"},
        {"stats__score": -1.0, "stats__label": None},
    ]
    assert res.missing == [[], ["stats:score", "stats:label"]]
    assert res.to_dict() == {"stats__score": [None, -1.0], "stats__label": ["x", None]}
    assert res.ages_s()["stats"][0] == pytest.approx((res.request_time_us - t) / 1e6)
    none = reader(store, view).read([], ["stats:score"])
    assert none.rows == [] and none.to_dict() == {"stats__score": []}


def test_one_round_trip_for_many_entities_and_views(target, monkeypatch):
    a, b = make_view("a"), make_view("b")
    store, t = RedisOnlineStore(target), now_us() - H
    for v in (a, b):
        store.write(v, rows(v, [(i, t, t, float(i), i, v.name) for i in range(30)]), now_us())
    r = reader(store, a, b)
    r.read({"user_id": 0}, ["a:score", "b:label"])  # warm the pool
    sends = []
    original = redis.connection.AbstractConnection.send_packed_command
    monkeypatch.setattr(
        redis.connection.AbstractConnection,
        "send_packed_command",
        lambda self, *args, **kw: (sends.append(1), original(self, *args, **kw))[1],
    )
    res = r.read([{"user_id": i} for i in range(30)], ["a:score", "b:label", "a:count"])
    assert len(sends) == 1
    assert res.rows[29] == {"a__score": 29.0, "a__count": 29, "b__label": "b"}


def test_unknown_feature_lists_close_names(target):
    store = RedisOnlineStore(target)
    with pytest.raises(NotFoundError, match=r"stats:scor.*Did you mean 'stats:score'"):
        reader(store, make_view()).read({"user_id": 1}, ["stats:scor"])


def test_bad_entity_rows_are_typed_errors(target):
    r = reader(RedisOnlineStore(target), make_view())
    with pytest.raises(SchemaError, match="lacks join key 'user_id'"):
        r.read({"item_id": 1}, ["stats:score"])
    with pytest.raises(SchemaError, match="'user_id' must be an integer"):
        r.read({"user_id": 1.5}, ["stats:score"])


def test_a_changed_schema_reads_as_missing_not_garbage(target):
    old = make_view()
    store, t = RedisOnlineStore(target), now_us() - H
    store.write(old, rows(old, [(1, t, t, 1.0, 1, "x")]), now_us())
    import pyarrow as pa

    from mlray.features import FeatureView, Field

    new = FeatureView(
        name="stats",
        entities=old.entities,
        ttl=old.ttl,
        schema=[
            Field("score", pa.float32()),
            Field("count", pa.int64()),
            Field("label", pa.string()),
        ],
    )
    res = reader(RedisOnlineStore(target), new).read({"user_id": 1}, ["stats:score"])
    assert res.missing == [["stats:score"]]


def test_two_projects_share_one_redis(redis_url):
    view = make_view()
    t = now_us() - H
    one, two = (RedisOnlineStore(RedisTarget(redis_url, f"shared:{p}:")) for p in ("one", "two"))
    one.write(view, rows(view, [(1, t, t, 1.0, 1, "one")]), now_us())
    two.write(view, rows(view, [(1, t, t, 2.0, 2, "two")]), now_us())
    assert one.read([(view, [(1,)])])[0][0][4] == "one"
    assert two.read([(view, [(1,)])])[0][0][4] == "two"


def test_redis_down_is_a_quick_typed_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    store = RedisOnlineStore(
        RedisTarget(f"redis://:secret@127.0.0.1:{port}/0", "x:", timeout_s=0.3)
    )
    t0 = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"redis://:\*\*\*@127.0.0.1.*unreachable") as info:
        reader(store, make_view()).read({"user_id": 1}, ["stats:score"])
    assert time.monotonic() - t0 < 1.0 and "secret" not in str(info.value)


def test_redis_slow_times_out_within_the_bound():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept_and_stay_silent():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    try:
        store = RedisOnlineStore(
            RedisTarget(f"redis://127.0.0.1:{server.getsockname()[1]}", "x:", timeout_s=0.4)
        )
        t0 = time.monotonic()
        with pytest.raises(BackendUnavailable, match=r"did not answer within redis.timeout_s=0.4"):
            store.read([(make_view(), [(1,)])])
        assert 0.35 < time.monotonic() - t0 < 1.5
    finally:
        stop.set()
        thread.join()
        for c in accepted:
            c.close()
        server.close()


def test_auth_is_honoured(tmp_path):
    server = EmbeddedRedis(tmp_path / "auth")
    url = server.start()
    try:
        redis.Redis.from_url(url).config_set("requirepass", "s3cret")
        path = url.removeprefix("unix://")
        ok = RedisOnlineStore(RedisTarget(f"unix://:s3cret@{path}", "a:"))
        ok.ping()
        with pytest.raises(ConfigError, match="refused the credentials"):
            RedisOnlineStore(RedisTarget(url, "a:")).ping()
        with pytest.raises(ConfigError, match="refused the credentials"):
            RedisOnlineStore(RedisTarget(f"unix://:wrong@{path}", "a:")).ping()
        redis.Redis.from_url(f"unix://:s3cret@{path}").config_set("requirepass", "")
    finally:
        server.stop(save=False)


def test_state_only_moves_forward(target):
    from mlray.online.protocol import ViewState

    store = RedisOnlineStore(target)
    assert store.get_state("v") == ViewState()
    store.update_state("v", ViewState(100, 200, 300, 4, 5))
    store.update_state("v", ViewState(50, 150, 301, 5, 0))
    assert store.get_state("v") == ViewState(100, 200, 301, 5, 0)


def test_cluster_writes_and_reads_across_slots(redis_cluster):
    view = make_view()
    store = RedisOnlineStore(
        RedisTarget(redis_cluster, "cl:demo:", cluster=True, write_batch=50, timeout_s=2)
    )
    t = now_us() - H
    data = rows(view, [(i, t, t + i, float(i), i, f"u{i}") for i in range(300)])
    assert store.write(view, data, now_us()).applied == 300
    assert store.write(view, rows(view, [(5, t - H, t, 0.0, 0, "old")]), now_us()).applied == 0
    res = reader(store, view).read(
        [{"user_id": i} for i in range(300)] + [{"user_id": 999}], ["stats:label"]
    )
    assert [r["stats__label"] for r in res.rows] == [f"u{i}" for i in range(300)] + [None]
    nodes = store._client.get_primaries()
    assert all(
        n.redis_connection.dbsize() > 0 for n in nodes
    )  # the entities spread over the cluster
    assert to_datetime(t) > EPOCH


def test_foreign_keys_under_the_prefix_are_typed_errors(target, raw_redis):
    view = make_view()
    raw_redis.hset(f"{target.namespace}stats:{{1}}", "x", "y")  # another application's hash
    store = RedisOnlineStore(target)
    assert store.read([(view, [(1,)])]) == [
        [None]
    ]  # MGET reads a foreign type as absent: missing, not garbage
    t = now_us() - H
    with pytest.raises(SchemaError, match="holds something else than an mlray row"):
        store.write(view, rows(view, [(1, t, t, 1.0, 1, "x")]), now_us())
    store.ping()  # the connection is still usable afterwards
