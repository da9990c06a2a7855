"""Delayed labels: read the label table and attach one label to each logged prediction.

* ``request_id``: a prediction takes the label with its request id (the
  earliest by label time when a request has several).
* ``entity_time``: a prediction takes the first label of the same entity keys
  (those the log's entities and the label table share) with
  ``request_time <= label_time <= request_time + attribution_window_s``, both
  ends included; labels at the same time count as one, a click if any is one.
  A label may attach to several predictions (the same user shown the same item twice).

The label table is found as training's labels are (:func:`mlray.offline.labels.find_labels`:
a raw table name, a Delta table, or Parquet) and read without Ray.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mlray.config import Settings
from mlray.errors import SchemaError
from mlray.monitoring.config import LabelsConfig
from mlray.offline.labels import LabelSource, find_labels

LABEL = "label"  # the 0/1 outcome in a joined frame, whatever the label table calls it
JOINED_COLUMNS = [
    "request_id",
    "request_time",
    "day",
    "model_version",
    "score",
    "shadow_version",
    "shadow_score",
    LABEL,
    "label_time",
]
_UTC_US = "datetime64[us, UTC]"


def load_labels(settings: Settings, cfg: LabelsConfig) -> pd.DataFrame:
    """The label rows of ``cfg.source``, the label as 0/1 ints and times in UTC.

    Rows with a null label have not landed and are dropped.

    Raises:
        NotFoundError: the table does not exist.
        SchemaError: a column the join needs is missing, a label is not 0/1, or the label
            time has no time zone.
    """
    src = find_labels(settings, cfg.source)
    need = [cfg.label_column, "request_id" if cfg.join == "request_id" else cfg.time_column]
    missing = [c for c in need if c not in src.schema.names]
    if missing:
        raise SchemaError(
            f"Labels table {src.uri} lacks {missing} (it has {src.schema.names}); set "
            "labels.label_column, labels.time_column or labels.join in the monitor config."
        )
    df = _read(src).to_pandas()
    df = df[df[cfg.label_column].notna()].reset_index(drop=True)
    values = pd.to_numeric(df[cfg.label_column].astype("float64"), errors="coerce")
    bad = ~values.isin([0.0, 1.0])
    if bad.any():
        raise SchemaError(
            f"Labels table {src.uri}: column {cfg.label_column!r} must hold 0/1 (or booleans), "
            f"found {df.loc[bad, cfg.label_column].iloc[0]!r}; map the outcomes to 0/1 first."
        )
    df[cfg.label_column] = values.astype("int64")
    if cfg.time_column in df.columns:
        df[cfg.time_column] = _utc(df[cfg.time_column], f"{src.uri} column {cfg.time_column!r}")
    return df


def join_labels(
    served_df: pd.DataFrame, labels_df: pd.DataFrame, cfg: LabelsConfig
) -> pd.DataFrame:
    """One row per labelled prediction: :data:`JOINED_COLUMNS` (plus the entity keys joined on).

    Args:
        served_df: logged predictions (decoded log rows: ``request_id``, ``request_time``,
            ``score``, ``model_version``, optionally ``shadow_score``/``shadow_version``, and
            ``entities`` as dicts or the entity keys as columns).
        labels_df: :func:`load_labels`' rows.
        cfg: the join and its column names.

    Raises:
        SchemaError: a column is missing, or no entity key is shared (``entity_time``).
    """
    need = ["request_id", "request_time", "score", "model_version"]
    missing = [c for c in need if c not in served_df.columns]
    if missing:
        raise SchemaError(f"Logged predictions lack {missing}; read them from the prediction log.")
    served = served_df.copy()
    for c in ("shadow_score", "shadow_version"):
        if c not in served.columns:
            served[c] = None
    served["request_time"] = _utc(served["request_time"], "prediction log request_time")
    labels = labels_df.rename(columns={cfg.label_column: LABEL})
    if cfg.time_column in labels.columns:
        labels = labels.rename(columns={cfg.time_column: "label_time"})
    else:
        labels = labels.assign(label_time=pd.Series(pd.NaT, index=labels.index, dtype=_UTC_US))
    keys: list[str] = []
    if cfg.join == "request_id":
        joined = _by_request_id(served, labels)
    else:
        joined, keys = _by_entity_time(served, labels, cfg.attribution_window_s)
    joined["day"] = joined["request_time"].dt.strftime("%Y-%m-%d")
    joined[LABEL] = joined[LABEL].astype("int64")
    cols = JOINED_COLUMNS + [k for k in keys if k not in JOINED_COLUMNS]
    return joined.sort_values(["request_time", "request_id"], kind="stable")[cols].reset_index(
        drop=True
    )


def _by_request_id(served: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    if "request_id" not in labels.columns:
        raise SchemaError("Labels lack 'request_id'; join them with labels.join: entity_time.")
    first = labels.sort_values("label_time", kind="stable", na_position="last").drop_duplicates(
        "request_id"
    )
    return served.drop(columns=[LABEL, "label_time"], errors="ignore").merge(
        first[["request_id", LABEL, "label_time"]], on="request_id", how="inner"
    )


def _by_entity_time(
    served: pd.DataFrame, labels: pd.DataFrame, window_s: float
) -> tuple[pd.DataFrame, list[str]]:
    if "entities" in served.columns:
        ents = pd.DataFrame([e if isinstance(e, dict) else {} for e in served["entities"]])
        ents.index = served.index
        served = served.drop(columns=[c for c in ents.columns if c in served.columns]).join(ents)
    reserved = set(JOINED_COLUMNS) | {"entities", "context", "features"}
    keys = [c for c in labels.columns if c in served.columns and c not in reserved]
    if not keys:
        raise SchemaError(
            f"Labels share no entity key with the logged predictions (labels have "
            f"{list(labels.columns)}); add the entity key columns, or join by request_id."
        )
    labels = labels[labels["label_time"].notna()]
    served = served.dropna(subset=keys)
    for k in keys:
        served[f"_k_{k}"] = [_key(v) for v in served[k]]
        labels = labels.assign(**{f"_k_{k}": [_key(v) for v in labels[k]]})
    by = [f"_k_{k}" for k in keys]
    # Labels at the same time for the same keys count as one: a click if any is one.
    labels = labels.groupby([*by, "label_time"], as_index=False)[LABEL].max()
    left = served.drop(columns=[LABEL, "label_time"], errors="ignore").sort_values(
        "request_time", kind="stable"
    )
    right = labels.sort_values("label_time", kind="stable")
    right["label_time"] = right["label_time"].astype(_UTC_US)
    joined = pd.merge_asof(
        left,
        right,
        left_on="request_time",
        right_on="label_time",
        by=by,
        direction="forward",
        tolerance=pd.Timedelta(seconds=window_s),
        allow_exact_matches=True,
    )
    joined = joined[joined[LABEL].notna()].drop(columns=by)
    return joined, keys


def _key(v: Any) -> str:
    """An entity value as a join key: 5, 5.0 and "5" are the same key."""
    if isinstance(v, bool | np.bool_):
        return str(v)
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _utc(col: pd.Series, what: str) -> pd.Series:
    """A time column as ``datetime64[us, UTC]``; naive times are refused."""
    if not isinstance(col.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_dtype(col.dtype):
            raise SchemaError(f"Times of {what} have no time zone; store them in UTC.")
        col = pd.to_datetime(col, utc=True)
    return col.dt.tz_convert("UTC").astype(_UTC_US)


def _read(src: LabelSource) -> pa.Table:
    """All rows of a found label table (the pinned Delta version, or exactly its Parquet files)."""
    if src.format == "delta":
        from deltalake import DeltaTable

        dt = DeltaTable(src.uri, version=src.version, storage_options=src.storage_options)
        return dt.to_pyarrow_table()
    import pyarrow.dataset as pads

    fs, base = src.filesystem()
    files = list(src.files)
    if files == [base]:  # one Parquet file
        return pads.dataset(files, filesystem=fs, format="parquet").to_table()
    return pads.dataset(
        files, filesystem=fs, format="parquet", partitioning="hive", partition_base_dir=base
    ).to_table()
