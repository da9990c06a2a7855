"""Which feature columns are categorical, and how a categorical value is keyed.

Shared by every layer that reads categorical values (the training
vocabularies, the serving encoder in :mod:`mlray.runtimes.encoding`, the
drift bins in :mod:`mlray.validation.psi`), so they cannot disagree on
whether ``3``, ``3.0`` and ``"3"`` are the same category.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def category_key(value: Any) -> str | None:
    """How a categorical value is keyed everywhere (bins, vocabularies).

    Strings stay as they are, integral numbers lose their fraction (``'3'``,
    not ``'3.0'``), booleans become ``'true'``/``'false'``, and nulls (None,
    ``pd.NA``, NaN) become None.

    Args:
        value: one categorical value as read from a column or a request.

    Returns:
        The key, or None for a null.
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else str(float(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def categorical_columns(dtypes: Mapping[str, pa.DataType], forced: Iterable[str]) -> list[str]:
    """The columns read as categories: the ``forced`` ones and every string column.

    Args:
        dtypes: column name -> Arrow type, in column order.
        forced: columns declared categorical whatever their type (e.g. an integer id).

    Returns:
        The categorical column names, in ``dtypes`` order.
    """
    forced = set(forced)
    return [
        name
        for name, dtype in dtypes.items()
        if name in forced or pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
    ]
