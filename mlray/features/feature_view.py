"""Feature views: a named group of features, one definition for every path.

A view's ``transform`` is the single definition of how its features are
computed from the raw source: the offline pipeline runs it under Ray Data
over complete per-entity histories, and nothing else recomputes the values
another way. The offline table of a view holds the entity keys,
``event_time`` (the instant the values describe), ``available_time`` (when
the values could first be known) and the feature columns.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlray.errors import DefinitionError, unknown_name
from mlray.features.entity import Entity
from mlray.features.times import TIMESTAMP, ttl_to_us

EVENT_TIME = "event_time"
AVAILABLE_TIME = "available_time"
RESERVED = frozenset({EVENT_TIME, AVAILABLE_TIME, "mlray_bucket"})

Transform = Callable[[pd.DataFrame], pd.DataFrame]

__all__ = [
    "AVAILABLE_TIME",
    "EVENT_TIME",
    "TIMESTAMP",
    "FeatureRef",
    "FeatureView",
    "Field",
]


@dataclass(frozen=True)
class FeatureRef:
    """A parsed ``"view:feature"`` reference (the view may be stored or request-time)."""

    view: str
    feature: str

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"

    @property
    def column(self) -> str:
        """The column the feature gets in training sets and online results: ``view__feature``."""
        return f"{self.view}__{self.feature}"

    @classmethod
    def parse(cls, raw: str) -> FeatureRef | None:
        """``"view:feature"`` parsed, or None when it does not have that shape."""
        view, sep, feature = raw.partition(":")
        return cls(view, feature) if sep and view and feature else None


@dataclass(frozen=True)
class Field:
    """One typed feature column.

    Args:
        name: column name.
        dtype: Arrow type (``pa.float64()``, ``pa.int64()``, ``pa.bool_()``,
            ``pa.string()``...); anything else is a :class:`DefinitionError`
            when the view using the field is defined.
        nullable: whether nulls are allowed. ``False`` is enforced on every
            write to the view's offline table (build and ingest).
        ge, le: optional inclusive bounds (numeric fields only), enforced on
            every write and again by training-set validation.
        default: value used when no row qualifies (instead of null).
        description: free text.
        seasonal: the values follow the clock (e.g. the hour of day of the request), so
            any short window of served traffic differs from the training data. The
            drift monitor (:mod:`mlray.monitoring.drift`) compares such a feature with the
            same hours of day on earlier days of served traffic instead of the training
            reference, and never alarms on it before such history exists.
    """

    name: str
    dtype: pa.DataType
    nullable: bool = True
    ge: float | None = None
    le: float | None = None
    default: object = None
    description: str = ""
    seasonal: bool = False

    def check(self, where: str) -> None:
        """Refuse a type that is not an Arrow type Delta can store, or bounds that cannot apply.

        Args:
            where: the owner, for the message (e.g. ``"feature view 'users' (defined at f.py:3)"``).

        Raises:
            DefinitionError: naming ``where``, the field and what to write instead.
        """
        what = f"{where}: field {self.name!r}"
        if not isinstance(self.dtype, pa.DataType):
            raise DefinitionError(
                f"{what} has dtype {self.dtype!r}, which is not a pyarrow type; write e.g. "
                "pa.float64(), pa.int64(), pa.bool_(), pa.string() or pa.timestamp('us', tz='UTC')."
            )
        if any(test(self.dtype) for test in _UNSTORABLE):
            raise DefinitionError(
                f"{what} has dtype {self.dtype}, which a Delta table cannot store; use a "
                "float32/float64, integer, bool, string, date, timestamp or decimal type."
            )
        bounds = {k: v for k, v in (("ge", self.ge), ("le", self.le)) if v is not None}
        if bounds and not _is_number(self.dtype):
            raise DefinitionError(
                f"{what} has bounds {bounds} but dtype {self.dtype}; ge/le apply to numeric "
                "fields only."
            )
        if self.ge is not None and self.le is not None and self.ge > self.le:
            raise DefinitionError(f"{what}: ge={self.ge} is above le={self.le}; no value fits.")
        if not isinstance(self.seasonal, bool):
            raise DefinitionError(
                f"{what} has seasonal={self.seasonal!r}; write seasonal=True or seasonal=False."
            )

    def violations(self, column: pa.Array | pa.ChunkedArray) -> dict[str, int]:
        """How many values of ``column`` break each declared constraint (only those broken).

        Keys read ``"null (nullable=False)"``, ``"< ge=0"`` and ``"> le=1"``;
        ``column`` already has :attr:`dtype`.
        """
        out = {}
        if not self.nullable and column.null_count:
            out["null (nullable=False)"] = column.null_count
        for rule, bound, op in (("< ge", self.ge, pc.less), ("> le", self.le, pc.greater)):
            if bound is not None:
                n = pc.sum(op(column, bound)).as_py()
                if n:
                    out[f"{rule}={bound}"] = int(n)
        return out


_UNSTORABLE = (
    pa.types.is_null,
    pa.types.is_float16,
    pa.types.is_time,
    pa.types.is_duration,
    pa.types.is_interval,
)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


@dataclass(frozen=True, eq=False)
class FeatureView:
    """A group of features with one entity set, one time axis and one transform.

    Args:
        name: unique view name.
        entities: the entities whose join keys identify a row.
        schema: the feature columns (not keys or times).
        source: raw Delta table name (under ``<data_root>/raw``) the transform
            reads, or None for views filled only by ``FeatureStore.ingest``.
        transform: function from a pandas DataFrame of raw events (complete
            histories of the entities in it, sorted by ``source_time``) to a
            pandas DataFrame of feature rows with the join keys, ``event_time``
            (zone-aware; a naive one is read in ``default_timezone`` when one
            is configured, else refused) and the schema's columns. Its input
            has plain NumPy-backed dtypes, as Arrow's ``Table.to_pandas()``
            makes them: ``int64``, ``float64``, ``bool``, ``datetime64[us,
            UTC]`` for timestamps, pandas' default string dtype for strings;
            an integer column with nulls arrives as ``float64``, a boolean one
            with nulls as ``object``. The output is checked before anything is written: a
            non-DataFrame, a missing column, a time column that is not a
            zone-aware timestamp, a column that does not cast to its field's
            type, or values the fields forbid fail the build and commit nothing.
        lookback: history before a window's start the transform needs.
        availability_delay: ``available_time = event_time + delay`` when the
            transform does not produce ``available_time`` itself.
        ttl: values older than this (``event_time <= t - ttl``) are not served; None
            (the default) keeps them forever. Zero or negative is refused.
        track_availability: whether joins honour ``available_time``.
        description: free text.
    """

    name: str
    # Any sequence (a list, as in the README); __post_init__ stores a tuple.
    entities: Sequence[Entity]
    schema: Sequence[Field]
    source: str | None = None
    source_time: str = EVENT_TIME
    transform: Transform | None = None
    lookback: timedelta = timedelta(0)
    availability_delay: timedelta = timedelta(0)
    ttl: timedelta | None = None
    track_availability: bool = True
    description: str = ""
    defined_at: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "schema", tuple(self.schema))
        if not self.defined_at:
            frame = sys._getframe(2)  # the caller of the generated __init__
            object.__setattr__(self, "defined_at", f"{frame.f_code.co_filename}:{frame.f_lineno}")
        self._check()

    def _check(self) -> None:
        where = f"feature view {self.name!r} (defined at {self.defined_at})"
        if not self.name.isidentifier():
            raise DefinitionError(f"{where}: the name must be a Python identifier.")
        if not self.entities:
            raise DefinitionError(f"{where}: give at least one entity.")
        if not self.schema:
            raise DefinitionError(f"{where}: the schema lists no features.")
        for f in self.schema:
            f.check(where)
        names = [f.name for f in self.schema]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise DefinitionError(f"{where}: feature names repeat: {sorted(dup)}.")
        clash = (set(names) & set(self.join_keys)) | (set(names) & RESERVED)
        if clash:
            raise DefinitionError(
                f"{where}: features {sorted(clash)} collide with join keys or reserved columns "
                f"{sorted(RESERVED)}; rename them."
            )
        ttl_to_us(self.ttl, where)
        if (self.source is None) != (self.transform is None):
            raise DefinitionError(
                f"{where}: give both source and transform (a computed view) or neither "
                "(a view filled by FeatureStore.ingest)."
            )

    # -- derived -------------------------------------------------------------
    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(k for e in self.entities for k in e.join_keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.schema)

    @property
    def ttl_us(self) -> int | None:
        """The TTL in microseconds; None: values never expire."""
        return ttl_to_us(self.ttl, f"feature view {self.name!r}")

    @property
    def available_time(self) -> str | None:
        return AVAILABLE_TIME if self.track_availability else None

    def field(self, name: str) -> Field:
        for f in self.schema:
            if f.name == name:
                return f
        raise unknown_name("feature", name, self.feature_names, f"in feature view {self.name!r}")

    def key_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(k, e.dtype, nullable=False) for e in self.entities for k in e.join_keys]
        )

    def table_schema(self) -> pa.Schema:
        """Arrow schema of the view's offline table (without the bucket column)."""
        fields = list(self.key_schema())
        fields.append(pa.field(EVENT_TIME, TIMESTAMP, nullable=False))
        fields.append(pa.field(AVAILABLE_TIME, TIMESTAMP, nullable=False))
        fields.extend(pa.field(f.name, f.dtype, nullable=True) for f in self.schema)
        return pa.schema(fields)

    def schema_hash(self) -> str:
        """Identifies this schema version: names, types, keys, TTL and transform source."""
        body = {
            "name": self.name,
            "keys": [[k, str(e.dtype)] for e in self.entities for k in e.join_keys],
            "fields": [
                [f.name, str(f.dtype), f.nullable, f.ge, f.le, repr(f.default)] for f in self.schema
            ],
            "ttl": None if self.ttl is None else self.ttl.total_seconds(),
            "availability": [self.track_availability, self.availability_delay.total_seconds()],
            "transform": _source_of(self.transform),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _source_of(fn: Callable | None) -> str | None:
    if fn is None:
        return None
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
