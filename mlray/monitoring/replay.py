"""Replay one logged prediction from scratch: features, request-time transform and model.

:func:`replay` reads the prediction's row from the log and rebuilds it:

1. the stored features by a point-in-time join at the logged request time,
   reading each view's offline table as it was then (Delta time travel to the
   last version committed at or before the request time, found in the table's
   commit log);
2. the request-time features by the shared transform, on the logged context
   and the recomputed stored inputs (both inside the join,
   :mod:`mlray.monitoring.recompute`);
3. the logged model version, downloaded from the registry and scored on the
   recomputed features with the same encoding serving uses
   (:func:`mlray.runtimes.encoding.encode_frame`), on the CPU by default.

Every cheap check (the log table and the request id, the feature names, the
model version, the table versions) runs before Ray starts.

Equality: a feature is equal when both values are null, or numbers within
``rel_tolerance``/``abs_tolerance``, or identical otherwise; the scores when
they differ by at most ``score_tolerance``. With the runtime serving resolved
(``auto``: ONNX Runtime on the CPU, INT8 when the version kept an INT8 model)
the same features give the same score to about 1e-7; a prediction served by
another engine (TensorRT FP16 on a GPU) differs by up to about 1e-3: pass the
runtime and precision it was served with, or a larger tolerance.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from mlray.config import Settings
from mlray.errors import NotFoundError
from mlray.features.feature_view import FeatureRef
from mlray.features.repository import FeatureRepository
from mlray.features.times import to_datetime, to_us
from mlray.monitoring.recompute import (
    plain,
    recompute,
    served_refs,
    source_views,
    values_equal,
)
from mlray.offline.predictions import (
    DEFAULT_TABLE,
    decode_json_columns,
    predictions_uri,
    read_predictions,
)

REL_TOLERANCE, ABS_TOLERANCE, SCORE_TOLERANCE = 1e-6, 1e-9, 1e-5


@dataclass(frozen=True)
class ReplayRow:
    """One feature: the value served and the value recomputed, and whether they agree."""

    feature: str
    served: Any
    recomputed: Any
    equal: bool


@dataclass(frozen=True)
class ReplayView:
    """One stored view: the table version read and the event times served and recomputed."""

    view: str
    table_version: int
    served_event_time: datetime | None
    recomputed_event_time: datetime | None

    @property
    def fresh(self) -> bool:
        """Whether serving read the row the offline join picks (the same event time)."""
        return self.served_event_time == self.recomputed_event_time


@dataclass
class Replay:
    """A logged prediction rebuilt (see the module docstring).

    Attributes:
        request_id, table: which prediction, from which log table.
        request_time: the logged request time.
        model_name, model_version: the version that served it.
        rows: per logged feature, served vs recomputed.
        views: per stored view read, the table version and event times.
        score_logged: the score served.
        score_recomputed: the model's score on the recomputed features.
        score_on_served: the model's score on the features as served (isolates the model).
        runtime: the runtime that scored (e.g. ``onnxruntime-cpu-fp32``).
        score_tolerance: the largest score difference still equal.
    """

    request_id: str
    table: str
    request_time: datetime
    model_name: str
    model_version: str
    rows: list[ReplayRow]
    views: list[ReplayView]
    score_logged: float
    score_recomputed: float
    score_on_served: float
    runtime: str
    score_tolerance: float = SCORE_TOLERANCE
    notes: list[str] = field(default_factory=list)

    @property
    def features_equal(self) -> bool:
        return all(r.equal for r in self.rows)

    @property
    def score_diff(self) -> float:
        return abs(self.score_recomputed - self.score_logged)

    @property
    def equal(self) -> bool:
        """Every feature equal and the recomputed score within the tolerance of the logged one."""
        return self.features_equal and self.score_diff <= self.score_tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "table": self.table,
            "request_time": self.request_time.isoformat(),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "equal": self.equal,
            "features_equal": self.features_equal,
            "rows": [
                {
                    "feature": r.feature,
                    "served": plain(r.served),
                    "recomputed": plain(r.recomputed),
                    "equal": r.equal,
                }
                for r in self.rows
            ],
            "views": [
                {
                    "view": v.view,
                    "table_version": v.table_version,
                    "served_event_time": _iso(v.served_event_time),
                    "recomputed_event_time": _iso(v.recomputed_event_time),
                    "fresh": v.fresh,
                }
                for v in self.views
            ],
            "score_logged": self.score_logged,
            "score_recomputed": self.score_recomputed,
            "score_on_served": self.score_on_served,
            "score_diff": self.score_diff,
            "score_tolerance": self.score_tolerance,
            "runtime": self.runtime,
            "notes": list(self.notes),
        }


def replay(
    settings: Settings,
    request_id: str,
    table: str = DEFAULT_TABLE,
    client: Any = None,
    *,
    runtime: str = "auto",
    precision: str = "auto",
    device: str = "cpu",
    score_tolerance: float = SCORE_TOLERANCE,
    rel_tolerance: float = REL_TOLERANCE,
    abs_tolerance: float = ABS_TOLERANCE,
    repo: FeatureRepository | None = None,
) -> Replay:
    """Rebuild the logged prediction ``request_id`` and score it again.

    Args:
        settings: the settings (log, offline tables, registry, Ray).
        request_id: the prediction's request id (the response's ``request_id``).
        table: the prediction log table (``log.table`` of the app).
        client: an ``mlflow.MlflowClient`` (default: the settings' registry).
        runtime, precision, device: how to run the model (see
            :func:`mlray.runtimes.load_runtime`); the defaults resolve as serving
            on a CPU does.
        score_tolerance: the largest score difference still equal.
        rel_tolerance, abs_tolerance: when two feature values are equal.
        repo: the definitions (default: ``settings.feature_repo``).

    Returns:
        The :class:`Replay`: features served vs recomputed, scores logged vs recomputed.

    Raises:
        NotFoundError: no such log table or request id (the message names both), a
            logged feature no definition has any more, a model version missing from
            the registry, or a view with no offline table at the request time.
    """
    from mlray.registry.download import download_version
    from mlray.registry.tracking import registry_client
    from mlray.runtimes import load_runtime
    from mlray.runtimes.encoding import encode_frame

    logged, notes = read_logged(settings, table, request_id)
    repo = repo or FeatureRepository.from_module(settings.feature_repo)
    features = logged["features"].iloc[0]
    refs, unknown = served_refs([features], repo)
    if unknown:
        raise NotFoundError(
            f"Prediction {request_id!r} (log table {table!r}) was served features no definition "
            f"in {settings.feature_repo} has any more: {unknown}; it cannot be recomputed."
        )
    when = logged["request_time"].iloc[0].to_pydatetime()
    model_name, version = str(logged["model_name"].iloc[0]), str(logged["model_version"].iloc[0])
    views = list(dict.fromkeys(v for r in refs for v in source_views(repo, r)))
    versions = {v: version_at(settings, repo, v, when) for v in views}
    got = download_version(
        client or registry_client(settings), model_name, _model_cache(settings), version=version
    )
    lacking = [c for c in got.spec.feature_names if c not in features]
    if lacking:
        raise NotFoundError(
            f"Model {model_name!r} version {version} reads {lacking}, which prediction "
            f"{request_id!r} did not log; was it served by another version?"
        )
    rt = load_runtime(got.path, runtime, precision, device=device)

    from mlray.ray_session import ensure_ray

    ensure_ray(settings)
    again = recompute(settings, repo, logged, refs, versions)
    if not again.values:
        raise NotFoundError(f"The join returned no row for prediction {request_id!r}.")
    values, event_us = again.values[0], again.event_us[0]
    served_ev = logged["feature_event_times"].iloc[0] or {}
    x = encode_frame(got.spec, [values, features])
    scores = np.asarray(rt.predict(x), dtype=np.float64).reshape(-1)
    return Replay(
        request_id,
        table,
        when,
        model_name,
        version,
        [_row(r, features, values, rel_tolerance, abs_tolerance) for r in refs],
        [
            ReplayView(v, versions[v], to_datetime(served_ev.get(v)), to_datetime(event_us.get(v)))
            for v in views
        ],
        float(logged["score"].iloc[0]),
        float(scores[0]),
        float(scores[1]),
        rt.name,
        score_tolerance,
        notes,
    )


def read_logged(settings: Settings, table: str, request_id: str) -> tuple[pd.DataFrame, list[str]]:
    """The logged row of ``request_id`` (decoded), and notes (an id logged more than once).

    Raises:
        NotFoundError: no such log table, or no row with that request id.
    """
    uri = predictions_uri(settings, table)
    rows = read_predictions(settings, table, where=pc.field("request_id") == request_id)
    if rows.num_rows == 0:
        raise NotFoundError(
            f"No prediction with request id {request_id!r} in the log table {table!r} ({uri}); "
            "use the request_id a /predict response returned (rows reach the log within "
            "log.commit_interval_s)."
        )
    df = decode_json_columns(rows.sort_by("request_time"))
    notes = []
    if len(df) > 1:
        notes.append(
            f"request id {request_id!r} was logged {len(df)} times (a reused X-Request-ID); "
            "replaying the latest."
        )
    return df.iloc[[-1]].reset_index(drop=True), notes


def version_at(settings: Settings, repo: FeatureRepository, view: str, when: datetime) -> int:
    """The offline table version of ``view`` current at ``when``: the last one committed by then.

    Raises:
        NotFoundError: the view has no offline table, or none committed by ``when`` (or
            the commits of that time were cleaned from the table's log).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from mlray.offline.delta_store import OfflineStore

    uri = OfflineStore(settings).uri(repo.view(view))
    try:
        dt = DeltaTable(uri, storage_options=settings.storage_options or None)
    except TableNotFoundError as e:
        raise NotFoundError(
            f"Feature view {view!r} has no offline table at {uri}; it cannot be recomputed."
        ) from e
    when_ms = to_us(when) // 1000
    # Delta's own time travel (load_as_version) falls back to the oldest version for an
    # earlier time; the commit log says whether the table existed then.
    done = [int(c["version"]) for c in dt.history() if int(c["timestamp"]) <= when_ms]
    if not done:
        raise NotFoundError(
            f"Feature view {view!r} had no offline table version committed by "
            f"{when.isoformat()} ({uri}, or its log was cleaned since); the prediction "
            "cannot be recomputed as of its request time."
        )
    return max(done)


def _row(
    ref: FeatureRef, served: dict[str, Any], again: dict[str, Any], rel: float, ab: float
) -> ReplayRow:
    a, b = served.get(ref.column), again.get(ref.column)
    return ReplayRow(str(ref), a, b, values_equal(a, b, rel, ab))


def _model_cache(settings: Settings) -> Path:
    """Serving's download cache under a local data root (the same files), else a temp folder."""
    if "://" in settings.data_root:
        return Path(tempfile.gettempdir()) / "mlray-replay-models"
    return Path(settings.table_uri("serving", "models"))


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()
