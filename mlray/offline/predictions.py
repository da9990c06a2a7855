"""The prediction log's Delta table: its schema, where it lives, and a windowed read.

Serving writes it (:mod:`mlray.serving.prediction_log`), the shadow report and
monitoring read it; the schema lives here, below both. Table
``<data_root>/predictions/<table>``, partitioned by ``day`` (UTC date of the
request); the columns are documented in :mod:`mlray.serving.prediction_log`
and the README. ``entities``, ``context``, ``features`` and
``feature_event_times`` are JSON objects (:func:`decode_json_columns`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mlray.config import Settings
from mlray.errors import NotFoundError

SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("request_time", pa.timestamp("us", tz="UTC")),
        ("logged_at", pa.timestamp("us", tz="UTC")),
        ("route", pa.string()),
        ("model_name", pa.string()),
        ("entities", pa.string()),
        ("context", pa.string()),
        ("features", pa.string()),
        ("feature_event_times", pa.string()),
        ("missing_features", pa.list_(pa.string())),
        ("score", pa.float64()),
        ("model_version", pa.string()),
        ("shadow_score", pa.float64()),
        ("shadow_version", pa.string()),
        ("latency_ms", pa.float64()),
        ("degraded", pa.bool_()),
        ("day", pa.string()),
    ]
)
PARTITION = "day"
JSON_COLUMNS = ("entities", "context", "features", "feature_event_times")
DEFAULT_TABLE = "predictions"


def predictions_uri(settings: Settings, table: str = DEFAULT_TABLE) -> str:
    """Where the log table ``table`` lives under the data root."""
    return settings.table_uri("predictions", table)


def day_of(t: datetime) -> str:
    """The ``day`` partition value of a time: its UTC date, ``YYYY-MM-DD``."""
    return t.astimezone(UTC).strftime("%Y-%m-%d")


def window_filter(start: datetime | None, end: datetime | None) -> pc.Expression | None:
    """``start <= request_time < end`` (either side open when None), pruning ``day`` partitions."""
    expr: pc.Expression | None = None
    t, ts = pc.field("request_time"), pa.timestamp("us", tz="UTC")

    def both(a: pc.Expression | None, b: pc.Expression) -> pc.Expression:
        return b if a is None else a & b

    if start is not None:
        expr = both(expr, (pc.field(PARTITION) >= day_of(start)) & (t >= pa.scalar(start, type=ts)))
    if end is not None:
        expr = both(expr, (pc.field(PARTITION) <= day_of(end)) & (t < pa.scalar(end, type=ts)))
    return expr


def read_predictions(
    settings: Settings,
    table: str = DEFAULT_TABLE,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: Sequence[str] | None = None,
    where: pc.Expression | None = None,
) -> pa.Table:
    """The log's rows with ``start <= request_time < end`` (and ``where``), in :data:`SCHEMA`.

    ``columns`` picks columns; ``where`` is a further row filter (e.g. one request id).

    Raises:
        NotFoundError: the table does not exist (nothing was served and logged yet).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri = predictions_uri(settings, table)
    try:
        dt = DeltaTable(uri, storage_options=settings.storage_options or None)
    except TableNotFoundError as e:
        raise NotFoundError(
            f"Prediction log table {table!r} does not exist at {uri}; serve some traffic first "
            "(mlray serve), or pass the log.table the app was deployed with (--table)."
        ) from e
    rows = window_filter(start, end)
    if where is not None:
        rows = where if rows is None else rows & where
    return dt.to_pyarrow_table(columns=list(columns) if columns else None, filters=rows)


def decode_json_columns(rows: pa.Table) -> pd.DataFrame:
    """The rows as pandas, each JSON column (:data:`JSON_COLUMNS`) decoded into dicts."""
    df = rows.to_pandas()
    for col in JSON_COLUMNS:
        if col in df.columns:
            df[col] = [json.loads(v) if v is not None else {} for v in df[col]]
    return df
