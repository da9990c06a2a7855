"""The training set's pandera schema, derived from the feature definitions.

Every feature column gets the Arrow type its view declares, the declared
range checks (``ge``/``le``) and its nullability. A point-in-time join leaves
a feature null when no row qualifies (a new user, an expired value), so a
column may hold nulls unless its field is non-nullable *and* declares a
default; how many nulls are acceptable is the null-rate limit's job
(:mod:`mlray.validation.validate`), not the schema's.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pandera.pandas as pdr
import pyarrow as pa

from mlray.features.feature_view import TIMESTAMP, Field


def may_be_null(f: Field) -> bool:
    """Whether a joined feature column may hold nulls.

    It may when declared nullable, or when no default fills a missing row.
    """
    return f.nullable or f.default is None


def _column(f: Field) -> pdr.Column:
    checks = []
    if f.ge is not None:
        checks.append(pdr.Check.ge(f.ge, error=f"{f.name} >= {f.ge}"))
    if f.le is not None:
        checks.append(pdr.Check.le(f.le, error=f"{f.name} <= {f.le}"))
    return pdr.Column(
        pd.ArrowDtype(arrow_type(f.dtype)), nullable=may_be_null(f), checks=checks, required=True
    )


def arrow_type(t: pa.DataType) -> pa.DataType:
    """The type a column is validated as: large strings read as strings, so both compare equal."""
    return pa.string() if pa.types.is_large_string(t) else t


def derive_schema(fields: Mapping[str, Field], label: str, label_time: str) -> pdr.DataFrameSchema:
    """The pandera schema of a training set.

    Args:
        fields: feature column name (``view__feature``) -> its declared :class:`Field`.
        label: the label column (boolean or 0/1 integers, never null).
        label_time: the label time column (UTC timestamps, never null).

    Returns:
        A non-strict schema over Arrow-typed pandas frames (other columns are allowed).
    """
    columns = {name: _column(f) for name, f in fields.items()}
    columns[label] = pdr.Column(
        nullable=False,
        checks=[pdr.Check.isin([0, 1, True, False], error=f"{label} is 0/1")],
        required=True,
    )
    columns[label_time] = pdr.Column(pd.ArrowDtype(TIMESTAMP), nullable=False, required=True)
    return pdr.DataFrameSchema(columns, strict=False, name="training_set")


def to_frame(batch: pa.Table) -> pd.DataFrame:
    """An Arrow batch as the Arrow-typed pandas frame the schema validates.

    Large strings are read as strings.
    """
    casts = {
        i: pa.string() for i, t in enumerate(batch.schema.types) if pa.types.is_large_string(t)
    }
    for i, t in casts.items():
        batch = batch.set_column(i, batch.schema.field(i).name, batch.column(i).cast(t))
    return batch.to_pandas(types_mapper=pd.ArrowDtype)


def describe_schema(schema: pdr.DataFrameSchema) -> list[dict[str, str]]:
    """One row per column: name, type, nullable, checks (for the report)."""
    rows = []
    for name, col in schema.columns.items():
        checks = ", ".join(str(getattr(c, "error", None) or c.name) for c in col.checks)
        rows.append(
            {
                "column": name,
                "type": str(col.dtype) if col.dtype is not None else "any",
                "nullable": "yes" if col.nullable else "no",
                "checks": checks,
            }
        )
    return rows
