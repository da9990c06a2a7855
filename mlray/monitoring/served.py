"""The served traffic of a time window as one frame: log rows plus one column per served feature.

The prediction log (:mod:`mlray.offline.predictions`) keeps the features each
prediction was made with as a JSON object ``view__feature -> value``;
:func:`served_frame` reads a window of it and spreads that object into
columns, so the drift and skew checks read served values the way training
sets hold them: numbers as float64 (missing: NaN), strings as str (missing:
None).
"""

from __future__ import annotations

import math
from datetime import datetime
from numbers import Number

import numpy as np
import pandas as pd

from mlray.config import Settings
from mlray.offline.predictions import (
    DEFAULT_TABLE,
    SCHEMA,
    decode_json_columns,
    read_predictions,
)

FEATURE_SEP = "__"
_LOG_COLUMNS = frozenset(SCHEMA.names)


def served_frame(
    settings: Settings,
    table: str = DEFAULT_TABLE,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The log's rows with ``start <= request_time < end``, a column per served feature added.

    Args:
        settings: where the data root is.
        table: the prediction log table (``log.table`` of the serving app).
        start, end: the window (tz-aware; either side open when None).

    Returns:
        The decoded log rows (:func:`~mlray.offline.predictions.decode_json_columns`)
        plus one ``view__feature`` column per feature found in any row's ``features``.

    Raises:
        NotFoundError: the log table does not exist (nothing served and logged yet).
    """
    return expand_features(decode_json_columns(read_predictions(settings, table, start, end)))


def expand_features(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (decoded log rows) with its ``features`` dicts spread into ``view__feature`` columns.

    A feature whose served values are all numbers (or missing) becomes a
    float64 column (missing: NaN); any other becomes an object column of the
    values as served (missing: None). A feature absent from a row is missing there.
    """
    if "features" not in df.columns:
        return df
    dicts = [f if isinstance(f, dict) else {} for f in df["features"]]
    names = list(dict.fromkeys(k for f in dicts for k in f))
    clash = [n for n in names if n in _LOG_COLUMNS]
    if clash:  # a feature column never replaces a log column (feature names carry "__")
        names = [n for n in names if n not in clash]
    columns = {name: _column([f.get(name) for f in dicts], df.index) for name in names}
    return pd.concat([df, pd.DataFrame(columns, index=df.index)], axis=1) if columns else df


def feature_columns(df: pd.DataFrame) -> list[str]:
    """The served feature columns of a :func:`served_frame` (``view__feature``), in order."""
    return [c for c in df.columns if c not in _LOG_COLUMNS and FEATURE_SEP in str(c)]


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _column(values: list[object], index: pd.Index) -> pd.Series:
    present = [v for v in values if not _is_missing(v)]
    if all(isinstance(v, Number) for v in present):  # bools are numbers: True -> 1.0
        return pd.Series(
            np.array([np.nan if _is_missing(v) else v for v in values], dtype=np.float64),
            index=index,
        )
    return pd.Series([None if _is_missing(v) else v for v in values], index=index, dtype=object)
