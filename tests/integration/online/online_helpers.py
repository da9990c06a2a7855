"""Builders shared by the online-store tests: a feature view, rows, and a dump of a namespace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import redis

from mlray.features import Entity, FeatureRepository, FeatureView, Field

TS = pa.timestamp("us", tz="UTC")
user = Entity("user", ("user_id",))


def make_view(
    name: str = "stats", ttl: timedelta | None = timedelta(days=1), **field_kw
) -> FeatureView:
    """An ingest-only view: a float with a default, an int, a string."""
    return FeatureView(
        name=name,
        entities=[user],
        ttl=ttl,
        schema=[
            Field("score", pa.float64(), default=field_kw.get("score_default", -1.0)),
            Field("count", pa.int64()),
            Field("label", pa.string()),
        ],
    )


def repo_of(*views: FeatureView) -> FeatureRepository:
    return FeatureRepository(list(views), origin="tests")


def rows(view: FeatureView, data: list[tuple]) -> pa.Table:
    """``(user_id, event_time, available_time, score, count, label)`` tuples as a view's table."""
    cols = list(zip(*data, strict=True)) if data else [[]] * 6
    return pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.int64()),
            pa.array(cols[1], TS),
            pa.array(cols[2], TS),
            pa.array(cols[3], pa.float64()),
            pa.array(cols[4], pa.int64()),
            pa.array(cols[5], pa.string()),
        ],
        schema=view.table_schema(),
    )


def now_us() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


class Dump(dict):
    """Keys -> (row, absolute expiry in ms or -1); equal when rows match, expiries within 100 ms."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or self.keys() != other.keys():
            return False
        return all(self[k][0] == other[k][0] and abs(self[k][1] - other[k][1]) < 100 for k in self)

    __hash__ = None  # type: ignore[assignment]


def dump(client: redis.Redis, namespace: str, strip: bool = False) -> Dump:
    """Every data key under ``namespace`` (without it if ``strip``): its row and absolute expiry."""
    out = Dump()
    for key in client.scan_iter(match=namespace.encode() + b"*", count=1000):
        if b"@meta:" in key:
            continue
        pttl = client.pttl(key)
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        out[key[len(namespace) :] if strip else key] = (
            client.get(key),
            -1 if pttl < 0 else now_ms + pttl,
        )
    return out
