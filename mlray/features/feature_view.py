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
        dtype: Arrow type (float64, int64, bool, string...).
        nullable: whether nulls are allowed.
        ge, le: optional inclusive bounds, checked by training-set validation.
        default: value used when no row qualifies (instead of null).
        description: free text.
    """

    name: str
    dtype: pa.DataType
    nullable: bool = True
    ge: float | None = None
    le: float | None = None
    default: object = None
    description: str = ""


@dataclass(frozen=True, eq=False)
class FeatureView:
    """A group of features with one entity set, one time axis and one transform.

    Args:
        name: unique view name.
        entities: the entities whose join keys identify a row.
        schema: the feature columns (not keys or times).
        source: raw Delta table name (under ``<data_root>/raw``) the transform
            reads, or None for views filled only by ``FeatureStore.ingest``.
        transform: function from a pandas batch of raw events (complete
            histories of the entities in it, sorted by time) to feature rows
            with the join keys, ``event_time`` and the schema's columns.
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
