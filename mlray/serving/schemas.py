"""HTTP bodies of the serving routes, typed from the feature definitions the model reads.

The ``entities`` of a request are the join keys of the stored views the
served features come from, typed like the keys (integers within int64,
strings of bounded length); the ``context`` holds the request fields of the
request-time views plus an optional ``request_time``. Both reject unknown
keys, so a misspelt field is a 422 naming it, and the OpenAPI schema at
``/docs`` shows exactly what to send.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import pyarrow as pa
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, create_model

from mlray.features.repository import FeatureRepository

INT64 = (-(2**63), 2**63 - 1)
MAX_STRING = 256


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prediction(BaseModel):
    """One answer: the champion's score for one request."""

    score: float = Field(description="Click probability, 0..1.")
    model_version: str
    request_id: str
    missing_features: list[str] = Field(
        description="view:feature refs served with their default (unknown entity, expired value)."
    )
    degraded: bool = Field(
        False, description="The online store was unreachable: every stored feature is a default."
    )


class BatchPrediction(BaseModel):
    """Answers of a batch, in request order."""

    predictions: list[Prediction]


class ErrorBody(BaseModel):
    """Any error but a 422: a message naming the field or the backend."""

    detail: str


class ModelInfo(BaseModel):
    """``GET /model``."""

    model_name: str
    model_version: str | None
    shadow_version: str | None
    runtime: str | None
    shadow_runtime: str | None
    loaded_at: str | None
    shadow_loaded_at: str | None
    last_reload_error: str | None


class Health(BaseModel):
    """``GET /healthz``: ready only when features, model and logger are."""

    status: str
    features: str
    model: str
    logger: str


def _within_utc_years(t: datetime | None) -> datetime | None:
    """Reject a time whose offset moves it out of years 1..9999 in UTC.

    Such a time parses, but its log row has no ``day`` partition: it would fail
    every commit of the batch it travels in.
    """
    if t is not None:
        try:
            t.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range in UTC (years 1 to 9999)") from None
    return t


RequestTime = Annotated[AwareDatetime | None, AfterValidator(_within_utc_years)]


def _python_type(dtype: pa.DataType, name: str) -> tuple[Any, Any]:
    """(annotation, Field) for a value of Arrow type ``dtype``."""
    if pa.types.is_integer(dtype):
        return int, Field(..., ge=INT64[0], le=INT64[1], description=f"{name} ({dtype})")
    if pa.types.is_floating(dtype):
        return float, Field(..., allow_inf_nan=False, description=f"{name} ({dtype})")
    if pa.types.is_boolean(dtype):
        return bool, Field(..., description=name)
    return str, Field(..., max_length=MAX_STRING, description=f"{name} ({dtype})")


def request_models(
    repo: FeatureRepository, refs: Sequence[str], max_batch: int
) -> tuple[type[BaseModel], type[BaseModel]]:
    """The ``/predict`` and ``/predict/batch`` body models for the features served.

    Args:
        repo: the feature definitions.
        refs: the ``view:feature`` refs the served models read.
        max_batch: advertised as ``maxItems`` of the batch; a longer one is answered 413.
    """
    keys: dict[str, tuple[Any, Any]] = {}
    context: dict[str, tuple[Any, Any]] = {}
    for ref in repo.resolve(list(refs)):
        if repo.is_on_demand(ref):
            od = repo.on_demand[ref.view]
            for f in od.request:
                context.setdefault(f.name, _python_type(f.dtype, f.name))
            views = {s.view for s in od.source_refs}
        else:
            views = {ref.view}
        for v in sorted(views):
            schema = repo.view(v).key_schema()
            for k in schema.names:
                keys.setdefault(k, _python_type(schema.field(k).type, k))
    context["request_time"] = (
        RequestTime,
        Field(None, description="ISO 8601 with an offset; default: now."),
    )
    entities = create_model("Entities", __base__=_Strict, **keys)  # type: ignore[call-overload]
    ctx = create_model("Context", __base__=_Strict, **context)  # type: ignore[call-overload]
    ctx_default = (
        Field(default_factory=ctx)
        if all(not f.is_required() for f in ctx.model_fields.values())
        else Field(...)
    )
    single = create_model(
        "PredictRequest", __base__=_Strict, entities=(entities, ...), context=(ctx, ctx_default)
    )
    batch = create_model(
        "BatchRequest",
        __base__=_Strict,
        requests=(
            list[single],
            Field(..., min_length=1, json_schema_extra={"maxItems": max_batch}),
        ),
    )
    return single, batch


def split_request(body: BaseModel) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """``(entities, context fields, request_time or None)`` of one parsed request."""
    entities = body.entities.model_dump()  # type: ignore[attr-defined]
    context = body.context.model_dump()  # type: ignore[attr-defined]
    return entities, context, context.pop("request_time", None)
