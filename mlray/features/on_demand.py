"""Request-time (on-demand) features: one function of request and stored features, on both paths.

An :class:`OnDemandFeatureView` declares the request context it needs (typed
fields, plus the request time), the stored features it reads and the
features it outputs, and one ``transform``: a function from a dict of
NumPy arrays (one entry per input, all the same length) to a dict of
array-likes (one per output). Both paths call :meth:`OnDemandFeatureView.compute`
with Arrow columns, which converts them to NumPy the same way and types the
outputs the same way:

* offline, the training set's join (:mod:`mlray.offline.plan`) passes the label rows' context
  columns, their label time and the point-in-time joined stored features;
* online, the online reader (:mod:`mlray.online.reader`) passes the request's fields,
  the request time and the values just read from the online store.

Inputs seen by the function: ``request_time`` (``datetime64[us]``, UTC), each
request field by name, each stored source as ``view__feature`` (the training
set's column name). Nulls arrive as NaN in float arrays and None in object
arrays; NaN outputs become nulls.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mlray.errors import DefinitionError, SchemaError, unknown_name
from mlray.features.feature_view import FeatureRef, Field
from mlray.features.times import TIMESTAMP

REQUEST_TIME = "request_time"

OnDemandTransform = Callable[[dict[str, np.ndarray]], Mapping[str, Any]]


@dataclass(frozen=True, eq=False)
class OnDemandFeatureView:
    """Features computed at request time from the request context and stored features.

    Args:
        name: unique name (also the ``view`` part of its refs, ``name:feature``).
        request: the request context fields (in the label rows offline, in the
            entity rows online), typed.
        sources: stored features it reads, as ``"view:feature"``.
        schema: the output features.
        transform: ``dict[str, np.ndarray] -> Mapping[str, array-like]`` over a batch.
        description: free text.
    """

    name: str
    # Any sequences (lists, as in the README); __post_init__ stores tuples.
    request: Sequence[Field]
    sources: Sequence[str]
    schema: Sequence[Field]
    transform: OnDemandTransform
    description: str = ""
    defined_at: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for attr in ("request", "sources", "schema"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        if not self.defined_at:
            frame = sys._getframe(2)
            object.__setattr__(self, "defined_at", f"{frame.f_code.co_filename}:{frame.f_lineno}")
        where = f"on-demand feature view {self.name!r} (defined at {self.defined_at})"
        if not self.name.isidentifier():
            raise DefinitionError(f"{where}: the name must be a Python identifier.")
        if not self.schema:
            raise DefinitionError(f"{where}: the schema lists no output features.")
        names = [REQUEST_TIME, *[f.name for f in self.request], *self.source_columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DefinitionError(f"{where}: input names repeat or shadow {REQUEST_TIME!r}: {dup}.")
        for s in self.sources:
            if FeatureRef.parse(s) is None:
                raise DefinitionError(f"{where}: source {s!r} must look like 'view:feature'.")
        for f in (*self.request, *self.schema):
            f.check(where)

    @property
    def where(self) -> str:
        return f"on-demand feature view {self.name!r} (defined at {self.defined_at})"

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    @property
    def source_refs(self) -> list[FeatureRef]:
        return [FeatureRef(*s.split(":", 1)) for s in self.sources]

    def field(self, name: str) -> Field:
        """The output feature ``name``.

        Raises:
            NotFoundError: no such output, with close valid names.
        """
        for f in self.schema:
            if f.name == name:
                return f
        raise unknown_name("feature", name, self.feature_names, f"in {self.where}")

    @property
    def source_columns(self) -> list[str]:
        """The stored inputs' names as the function sees them: ``view__feature``."""
        return [s.replace(":", "__", 1) for s in self.sources]

    def schema_hash(self) -> str:
        """Identifies this definition: inputs, outputs and the transform's source."""
        try:
            src = inspect.getsource(self.transform)
        except (OSError, TypeError):
            fn = self.transform
            src = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
        body = {
            "name": self.name,
            "request": [[f.name, str(f.dtype)] for f in self.request],
            "sources": list(self.sources),
            "fields": [[f.name, str(f.dtype)] for f in self.schema],
            "transform": src,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def compute(self, columns: Mapping[str, pa.Array | pa.ChunkedArray]) -> dict[str, pa.Array]:
        """Run the transform over Arrow columns: ``request_time``, request fields, source columns.

        The single code path both the training set and the online read use.

        Raises:
            SchemaError: an input is missing or cannot take its declared type.
            DefinitionError: the transform failed or returned missing/mistyped outputs.
        """
        inputs = {REQUEST_TIME: _to_numpy(_typed(columns, REQUEST_TIME, TIMESTAMP, self.where))}
        for f in self.request:
            inputs[f.name] = _to_numpy(_typed(columns, f.name, f.dtype, self.where))
        for c in self.source_columns:
            inputs[c] = _to_numpy(_typed(columns, c, None, self.where))
        n = len(inputs[REQUEST_TIME])
        try:
            out = self.transform(inputs)
        except Exception as e:
            raise DefinitionError(
                f"{self.where}: the transform raised {type(e).__name__}: {e}"
            ) from e
        result = {}
        for f in self.schema:
            if f.name not in out:
                raise DefinitionError(
                    f"{self.where}: the transform returned no {f.name!r}; it must return "
                    f"{list(self.feature_names)}."
                )
            values = np.asarray(out[f.name])
            if values.shape != (n,):
                raise DefinitionError(
                    f"{self.where}: output {f.name!r} has shape {values.shape}, expected ({n},)."
                )
            try:
                result[f.name] = pa.array(values, type=f.dtype, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
                raise DefinitionError(
                    f"{self.where}: output {f.name!r} cannot be typed {f.dtype}: {e}"
                ) from e
        return result


def _typed(
    columns: Mapping[str, Any], name: str, dtype: pa.DataType | None, where: str
) -> pa.Array:
    if name not in columns:
        raise SchemaError(
            f"{where} needs input {name!r}, which the request/labels do not have; "
            f"it has {sorted(columns)}."
        )
    col = columns[name]
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if dtype is None or col.type == dtype:
        return col
    try:
        return col.cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise SchemaError(
            f"{where}: input {name!r} has type {col.type}, which cannot be cast to {dtype}: {e}"
        ) from e


def _to_numpy(arr: pa.Array) -> np.ndarray:
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(TIMESTAMP)
    return arr.to_numpy(zero_copy_only=False)


def request_column(rows: Sequence[Mapping[str, Any]], f: Field, where: str) -> pa.Array:
    """One request field of the online entity rows as a typed Arrow column."""
    try:
        values = [r[f.name] for r in rows]
    except KeyError:
        raise SchemaError(
            f"{where} needs request field {f.name!r}; pass it in every entity row, "
            f"e.g. {{..., {f.name!r}: ...}}."
        ) from None
    try:
        return pa.array(values, type=f.dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SchemaError(
            f"{where}: request field {f.name!r} must be {f.dtype}, got {values[:3]!r}: {e}"
        ) from e
