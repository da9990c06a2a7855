"""Row and key encoding of the online store (no server needed)."""

from __future__ import annotations

import math
import struct
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from mlray.errors import DefinitionError, SchemaError
from mlray.features import Entity, FeatureView, Field
from mlray.features.times import to_datetime, to_us
from mlray.online.codec import KeyEncoder, ViewCodec

UTC = UTC
user = Entity("user", ("user_id",))
shop = Entity("shop", ("shop",), dtype=pa.string())

TYPES = {
    "b": pa.bool_(),
    "i8": pa.int8(),
    "i16": pa.int16(),
    "i32": pa.int32(),
    "i64": pa.int64(),
    "u8": pa.uint8(),
    "u64": pa.uint64(),
    "f32": pa.float32(),
    "f64": pa.float64(),
    "s": pa.string(),
    "ls": pa.large_string(),
    "d": pa.date32(),
    "ts_us": pa.timestamp("us", tz="UTC"),
    "ts_ms": pa.timestamp("ms", tz="UTC"),
    "ts_ns_naive": pa.timestamp("ns"),
}
VALUES = {
    "b": [True, None, False],
    "i8": [-8, 7, None],
    "i16": [None, -300, 300],
    "i32": [2**31 - 1, None, 0],
    "i64": [2**62, -(2**62), None],
    "u8": [255, None, 0],
    "u64": [2**64 - 1, 0, None],
    "f32": [1.5, None, -0.25],
    "f64": [math.pi, float("nan"), None],
    "s": ["x", "", None],
    "ls": [None, "é|}{%", "long " * 50],
    "d": [date(2026, 1, 2), None, date(1969, 12, 31)],
    "ts_us": [
        datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        None,
        datetime(1999, 12, 31, tzinfo=UTC),
    ],
    "ts_ms": [
        None,
        datetime(2026, 5, 5, 5, 5, 5, 5000, tzinfo=UTC),
        datetime(2000, 1, 1, tzinfo=UTC),
    ],
    "ts_ns_naive": [datetime(2026, 1, 1, 1, 2, 3, 4), None, datetime(2001, 1, 1)],
}


def view_of(names, entities=(user,), name="v"):
    return FeatureView(
        name=name, entities=list(entities), schema=[Field(n, TYPES[n]) for n in names]
    )


def table_of(names, keys=None):
    cols = {"user_id": pa.array(keys or [1, 2, 3], pa.int64())}
    cols.update({n: pa.array(VALUES[n], TYPES[n]) for n in names})
    return pa.table(cols)


def same(a, b):
    return (
        isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    ) or a == b


@pytest.mark.parametrize(
    "names", [list(TYPES), ["i64", "f64"], ["s"], ["ts_us", "i64", "s", "d", "b"], ["f32"]]
)
def test_rows_round_trip_typed(names):
    view, table = view_of(names), table_of(names)
    codec = ViewCodec(view)
    et = np.array([10, 20, 30], np.int64)
    blobs = codec.encode(table, et, et + 1)
    expected = table.select(names).to_pylist()
    for j, blob in enumerate(blobs):
        got = codec.decode(blob)
        assert got[:2] == (et[j], et[j] + 1)
        assert all(same(g, e) for g, e in zip(got[2:], expected[j].values(), strict=True)), (
            got,
            expected[j],
        )
    many = codec.decode_many([*blobs, None])
    assert many[-1] is None
    assert all(
        same(a, b)
        for x, y in zip(many, map(codec.decode, blobs), strict=False)
        for a, b in zip(x, y, strict=True)
    )


def test_layout_is_times_fingerprint_nulls_then_packed_values():
    view = view_of(["i64", "f64", "s"])
    codec = ViewCodec(view)
    table = pa.table(
        {
            "user_id": pa.array([1]),
            "i64": pa.array([7]),
            "f64": pa.array([None], pa.float64()),
            "s": pa.array(["ab"]),
        }
    )
    blob = codec.encode(table, np.array([5]), np.array([6]))[0]
    assert struct.unpack_from("<qq", blob) == (5, 6) and blob[16:20] == codec.fingerprint
    assert blob[20] == 0b010  # the float is null
    assert struct.unpack_from("<qd", blob, 21) == (7, 0.0) and blob[37:] == b"\x02\x00\x00\x00ab"


def test_a_changed_schema_does_not_decode():
    old, new = view_of(["i64", "f64"]), view_of(["i64", "f32"])
    blob = ViewCodec(old).encode(
        table_of(["i64", "f64"]), np.zeros(3, np.int64), np.zeros(3, np.int64)
    )[0]
    assert ViewCodec(new).decode(blob) is None and ViewCodec(new).decode_many([blob]) == [None]


def test_unsupported_types_are_definition_errors():
    bad = FeatureView(name="v", entities=[user], schema=[Field("l", pa.list_(pa.int64()))])
    with pytest.raises(DefinitionError, match="'l' has type list<item: int64>"):
        ViewCodec(bad)
    odd_key = FeatureView(
        name="w",
        entities=[Entity("e", ("k",), dtype=pa.float64())],
        schema=[Field("x", pa.int64())],
    )
    with pytest.raises(DefinitionError, match="join key 'k' has type double"):
        KeyEncoder("p:", odd_key)


def test_keys_carry_prefix_view_and_a_hash_tag():
    enc = KeyEncoder("mlray:demo:", view_of(["i64"]))
    assert enc.key((7,)) == "mlray:demo:v:{7}" and enc.key((np.int64(7),)) == enc.key(("7",))
    both = KeyEncoder("p:", view_of(["i64"], entities=(user, shop), name="w"))
    assert (
        both.key((1, "a|b")) == "p:w:{1|a%7Cb}" != both.key((1, "a"))
        and both.key((1, "}{")) == "p:w:{1|%7D%7B}"
    )
    for bad in (1.5, True, "7a", None):
        with pytest.raises(SchemaError, match="'user_id' must be an integer"):
            enc.key((bad,))
    with pytest.raises(SchemaError, match="'shop' must be a string"):
        both.key((1, 2))


def test_vectorised_keys_equal_the_single_ones():
    view = view_of(["i64"], entities=(user, shop), name="w")
    table = pa.table({"user_id": pa.array([1, -2, 3], pa.int64()), "shop": ["a", "é|}", ""]})
    enc = KeyEncoder("x:y:", view)
    assert enc.keys_of(table) == [
        enc.key((r["user_id"], r["shop"])).encode() for r in table.to_pylist()
    ]


def test_times():
    t = datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=UTC)
    assert to_datetime(to_us(t)) == t and to_datetime(None) is None
    assert to_us(t.astimezone(timezone(timedelta(hours=2)))) == to_us(t)
    with pytest.raises(SchemaError, match="no time zone"):
        to_us(datetime(2026, 1, 1))
