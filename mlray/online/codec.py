"""How one feature row is laid out in the online store: keys and typed, compact values.

Key of a (feature view, entity): ``<key_prefix>:<project>:<view>:{<entity>}``,
e.g. ``mlray:demo:user_activity:{7}``. The entity part is the join key values
joined by ``|`` (strings percent-quoted so ``|``, braces and ``%`` cannot
collide) and sits inside a Redis Cluster hash tag: every view of one entity
lands on the same cluster slot, so a multi-key read (``MGET``) or script over
one entity's views is cluster-safe, while entities spread over all slots.

Each key holds one Redis string, the row (about 100 bytes for 12 numbers)::

    event_time  available_time  fingerprint  null bitmap  fixed-width values  strings
    int64 µs    int64 µs        4 bytes      ceil(n/8)    little-endian       uint32 len + UTF-8

* the two times (UTC microseconds since the epoch) come first, so the
  conditional write's Lua script compares them without decoding the rest
  (the store never goes backwards), and a read unpacks times and numbers
  with one ``struct`` call;
* the fingerprint hashes the view's feature names and types: a changed
  schema reads as missing, never as garbage;
* values follow the view's schema order, packed with ``struct`` (int64 ``q``,
  float64 ``d``, bool ``?``, timestamps as int64 in their unit, date32 as
  int32...), then strings. A plain string (not a hash of fields) makes the
  write one ``SET ... PXAT`` and a whole read one ``MGET``.

No pickle anywhere: any client that knows the view's schema can decode a row.
"""

from __future__ import annotations

import hashlib
import operator
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mlray.errors import DefinitionError, SchemaError
from mlray.features.feature_view import FeatureView
from mlray.features.times import EPOCH

TIMES = struct.Struct("<qq")  # event_time, available_time: the first 16 bytes of a stored row
_PREFIX = 20  # the times and the 4-byte fingerprint
_U32 = struct.Struct("<I")
_DATE0 = date(1970, 1, 1)
_QUOTE_SAFE = "-_.~:@+"

# Arrow type -> (struct code, numpy dtype) for fixed-width values.
_FIXED: dict[pa.DataType, tuple[str, str]] = {
    pa.bool_(): ("?", "?"),
    pa.int8(): ("b", "<i1"),
    pa.int16(): ("h", "<i2"),
    pa.int32(): ("i", "<i4"),
    pa.int64(): ("q", "<i8"),
    pa.uint8(): ("B", "<u1"),
    pa.uint16(): ("H", "<u2"),
    pa.uint32(): ("I", "<u4"),
    pa.uint64(): ("Q", "<u8"),
    pa.float32(): ("f", "<f4"),
    pa.float64(): ("d", "<f8"),
    pa.date32(): ("i", "<i4"),
}
_TS_DIVISOR = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def view_prefix(namespace: str, view: str) -> str:
    """``<key_prefix>:<project>:<view>:`` (``namespace`` is ``<key_prefix>:<project>:``)."""
    return f"{namespace}{view}:"


def _int_part(value: Any, key: str) -> str:
    # ``value`` is whatever the caller sent; operator.index's TypeError sorts out non-integers.
    if type(value) is int:
        return str(value)
    if not isinstance(value, bool):
        try:
            return str(operator.index(value))  # numpy integers too, never floats
        except TypeError:
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return str(int(value))
    raise SchemaError(
        f"Join key {key!r} must be an integer, got {value!r} ({type(value).__name__})."
    )


def _str_part(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise SchemaError(
            f"Join key {key!r} must be a string, got {value!r} ({type(value).__name__})."
        )
    return quote(value, safe=_QUOTE_SAFE)


class KeyEncoder:
    """Builds the Redis key of an entity of one view, from Python values or Arrow columns."""

    def __init__(self, namespace: str, view: FeatureView) -> None:
        self.prefix = view_prefix(namespace, view.name)
        self.keys = view.join_keys
        schema = view.key_schema()
        self._int = []
        for k in self.keys:
            t = schema.field(k).type
            if not (pa.types.is_integer(t) or _is_string(t)):
                raise DefinitionError(
                    f"Feature view {view.name!r}: join key {k!r} has type {t}; the online store "
                    "supports integer and string join keys."
                )
            self._int.append(pa.types.is_integer(t))
        self.single_int = self._int == [True]  # the common case, given a fast path by readers

    def key(self, values: Sequence[object]) -> str:
        """The key for one entity, ``values`` in join-key order."""
        if len(values) == 1:
            v = values[0]
            part = (
                str(v)
                if type(v) is int and self._int[0]
                else (_int_part(v, self.keys[0]) if self._int[0] else _str_part(v, self.keys[0]))
            )
            return f"{self.prefix}{{{part}}}"
        parts = [
            _int_part(v, k) if i else _str_part(v, k)
            for v, k, i in zip(values, self.keys, self._int, strict=True)
        ]
        return f"{self.prefix}{{{'|'.join(parts)}}}"

    def keys_of(self, table: pa.Table) -> list[bytes]:
        """Keys of every row of ``table`` (which holds the join key columns), vectorised."""
        parts = []
        for k, is_int in zip(self.keys, self._int, strict=True):
            col = table.column(k)
            if is_int:
                parts.append(pc.cast(col, pa.string()))
            else:
                parts.append(
                    pa.array([quote(s, safe=_QUOTE_SAFE) for s in col.to_pylist()], pa.string())
                )
        tag = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "|")
        full = pc.binary_join_element_wise(pa.scalar(self.prefix + "{"), tag, pa.scalar("}"), "")
        return pc.cast(full, pa.binary()).to_pylist()


class ViewCodec:
    """Encodes and decodes a view's stored rows (see the module docstring)."""

    def __init__(self, view: FeatureView) -> None:
        self.view = view.name
        self.fields = [pa.field(f.name, f.dtype) for f in view.schema]
        layout = ";".join(f"{f.name}:{f.type}" for f in self.fields)
        self.fingerprint = hashlib.sha256(layout.encode()).digest()[:4]
        self.null_bytes = (len(self.fields) + 7) // 8
        self._zero_nulls = bytes(self.null_bytes)
        self._clean = (
            self.fingerprint + self._zero_nulls
        )  # what follows the times in a row without nulls
        self._fixed: list[int] = []  # schema positions of fixed-width values
        self._strings: list[int] = []
        # position -> converter from the stored int
        self._post: dict[int, Callable[[int], date | datetime]] = {}
        codes, dtypes = [], []
        for i, f in enumerate(self.fields):
            code, dtype = self._code_of(i, f)
            if code is None:
                self._strings.append(i)
                continue
            self._fixed.append(i)
            codes.append(code)
            dtypes.append((f"f{i}", dtype))
        self._struct = struct.Struct("<" + "".join(codes))
        self._dtype = np.dtype(dtypes) if dtypes else None
        self._head = _PREFIX + self.null_bytes
        self._fixed_end = self._head + self._struct.size
        # One unpack gives (event_us, available_us, *fixed-width values), skipping fingerprint
        # and null bitmap.
        self._row = struct.Struct(f"<qq{self._head - 16}x" + "".join(codes))
        self._plain = not self._strings and not self._post
        # Flat row position of each schema field (times, then fixed-width values, then strings).
        self._storage = [0] * len(self.fields)
        for j, i in enumerate(self._fixed + self._strings):
            self._storage[i] = j + 2
        self._post_storage = [(self._storage[i], conv) for i, conv in self._post.items()]
        order = [0, 1, *self._storage]
        self._reorder = None if order == list(range(len(order))) else operator.itemgetter(*order)

    def _code_of(self, i: int, f: pa.Field) -> tuple[str | None, str | None]:
        t = f.type
        if t in _FIXED:
            if t == pa.date32():
                self._post[i] = lambda d: _DATE0 + timedelta(days=d)
            return _FIXED[t]
        if pa.types.is_timestamp(t):
            self._post[i] = _timestamp_decoder(t)
            return "q", "<i8"
        if _is_string(t):
            return None, None
        raise DefinitionError(
            f"Feature view {self.view!r}: feature {f.name!r} has type {t}, which the online store "
            "cannot hold; use a boolean, integer, float, string, date32 or timestamp feature."
        )

    # -- write side (vectorised over a table) --------------------------------
    def encode(
        self, table: pa.Table, event_us: np.ndarray, available_us: np.ndarray
    ) -> list[bytes]:
        """One stored row per row of ``table`` (which holds every feature column), times first."""
        n = table.num_rows
        if n == 0:
            return []
        nulls = np.zeros((n, len(self.fields)), dtype=bool)
        for i, f in enumerate(self.fields):
            col = table.column(f.name)
            if col.null_count:
                nulls[:, i] = pc.is_null(col).to_numpy(zero_copy_only=False)
        dt = [("et", "<i8"), ("at", "<i8"), ("fp", "V4")] + (
            [("nulls", f"V{self.null_bytes}")] if self.null_bytes else []
        )
        head = np.zeros(n, np.dtype(dt + (self._dtype.descr if self._dtype is not None else [])))
        head["et"], head["at"] = event_us, available_us
        head["fp"] = np.frombuffer(self.fingerprint, dtype="V4")[0]
        if self.null_bytes:
            mask = np.packbits(nulls, axis=1, bitorder="little")
            head["nulls"] = np.ascontiguousarray(mask).view(f"V{self.null_bytes}").reshape(n)
        for i in self._fixed:
            head[f"f{i}"] = _fixed_values(table.column(self.fields[i].name), self.fields[i].type)
        buf, width = head.tobytes(), head.dtype.itemsize
        rows = [buf[j * width : (j + 1) * width] for j in range(n)]
        if not self._strings:
            return rows
        texts = [table.column(self.fields[i].name).to_pylist() for i in self._strings]
        out = []
        for j, row in enumerate(rows):
            parts = [row]
            for col in texts:
                s = (col[j] or "").encode()
                parts.append(len(s).to_bytes(4, "little"))
                parts.append(s)
            out.append(b"".join(parts))
        return out

    # -- read side (one row, lean) --------------------------------------------
    def decode_many(self, blobs: Sequence[bytes | None]) -> list[tuple | None]:
        """:meth:`decode` over many rows (None stays None).

        Numbers-only rows without nulls take one C call each.
        """
        decode = self.decode
        if not self._plain:
            return [None if b is None else decode(b) for b in blobs]
        clean, unpack = self._clean, self._row.unpack_from
        return [
            None if b is None else unpack(b) if b.startswith(clean, 16) else decode(b)
            for b in blobs
        ]

    def decode(self, blob: bytes) -> tuple | None:
        """A stored row as ``(event_us, available_us, *values in schema order)``.

        None if the layout changed (the fingerprint differs).
        """
        if not blob.startswith(self.fingerprint, 16):
            return None
        if self._plain and blob.startswith(self._clean, 16):
            return self._row.unpack_from(blob)
        vals = list(self._row.unpack_from(blob))
        pos = self._fixed_end
        for _ in self._strings:
            size = _U32.unpack_from(blob, pos)[0]
            vals.append(blob[pos + 4 : pos + 4 + size].decode())
            pos += 4 + size
        nulls = blob[_PREFIX : self._head]
        if nulls != self._zero_nulls:
            for i, j in enumerate(self._storage):
                if nulls[i >> 3] >> (i & 7) & 1:
                    vals[j] = None
        for j, convert in self._post_storage:
            if vals[j] is not None:
                vals[j] = convert(vals[j])
        return self._reorder(vals) if self._reorder is not None else tuple(vals)


def _fixed_values(col: pa.ChunkedArray, t: pa.DataType) -> np.ndarray:
    if pa.types.is_timestamp(t) or t == pa.date32():
        col = col.cast(pa.int64() if pa.types.is_timestamp(t) else pa.int32())
    zero = False if pa.types.is_boolean(col.type) else 0
    return pc.fill_null(col, zero).to_numpy(zero_copy_only=False)


def _timestamp_decoder(t: pa.TimestampType) -> Callable[[int], datetime]:
    tz = UTC if t.tz else None
    div = _TS_DIVISOR[t.unit]

    def decode(v: int) -> datetime:
        us = v * div if div else v // 1000
        base = EPOCH if tz else EPOCH.replace(tzinfo=None)
        return base + timedelta(microseconds=us)

    return decode
