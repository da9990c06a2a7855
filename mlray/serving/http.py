"""The HTTP face of the serving app: FastAPI routes, body limits and error mapping.

Routes (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``POST /predict``: ``{"entities": {...}, "context": {...}}`` -> one :class:`Prediction`;
* ``POST /predict/batch``: ``{"requests": [...]}`` -> ``{"predictions": [...]}`` in order
  (longer than ``max_batch``: 413);
* ``GET /healthz``: 200 only when features, model and logger are ready, else 503;
* ``GET /model``: the versions and runtime being served.

Every error is JSON with a message naming the field or the backend, never a
stack trace: 422 for a body that does not fit the schema, 400 for one that
is not JSON text at all (FastAPI's, e.g. not UTF-8), 413 for one too large,
503 when a backend is down (under the ``fail`` policy). Each route documents
the codes it may answer.
"""

import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlray.errors import MlrayError
from mlray.serving.coalesce import Coalescer, after
from mlray.serving.schemas import (
    BatchPrediction,
    ErrorBody,
    Health,
    ModelInfo,
    Prediction,
    split_request,
)
from mlray.serving.service import ParsedRequest, PredictionService, request_ids

log = logging.getLogger(__name__)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before it is parsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _BodyTooLarge(self.limit)
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _too_large(self.limit)(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised by ``receive`` past the limit.

    An HTTPException, because FastAPI turns any other error raised while it reads
    a body into its own 400 "error parsing the body"; this one it passes on, and
    the app's exception middleware answers it with a 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body is larger than {limit} bytes.")


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"Request body is larger than {limit} bytes."}, status_code=413)


def build_http_app(
    service: PredictionService,
    single: type[Any],
    batch: type[Any],
    *,
    max_batch: int,
    max_body_bytes: int,
    health: Callable[[], Health],
) -> FastAPI:
    """The FastAPI app of one ingress replica.

    Args:
        service: the replica's prediction service.
        single, batch: the request body models (:func:`mlray.serving.schemas.request_models`).
        max_batch: the largest batch; a longer one is answered 413.
        max_body_bytes: the largest body; a larger one is answered 413.
        health: the readiness of features, model and logger.
    """
    app = FastAPI(
        title="mlray serving",
        description="Online click-through scores: features, champion, shadow, prediction log.",
    )
    app.add_middleware(BodyLimit, limit=max_body_bytes)

    @app.exception_handler(MlrayError)
    async def _mlray_error(_: Request, e: MlrayError) -> JSONResponse:
        return JSONResponse({"detail": e.message}, status_code=e.http_status)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("Unexpected error while serving")
        return JSONResponse(
            {"detail": f"Internal error ({type(e).__name__}); see the replica's log."},
            status_code=500,
        )

    # Concurrent /predict calls are scored together (see mlray.serving.coalesce).
    singles = Coalescer(service, "/predict", max_rows=max_batch)

    # What a scoring route may answer besides 200 and FastAPI's 422.
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorBody, "description": "The body is not JSON text (e.g. not UTF-8)."},
        413: {"model": ErrorBody, "description": f"A body over {max_body_bytes} bytes."},
        503: {"model": ErrorBody, "description": "No model loaded, or the store down ('fail')."},
    }

    @app.post("/predict", response_model=Prediction, responses=errors)
    async def predict(
        body: single,  # type: ignore[valid-type]
        tasks: BackgroundTasks,
        x_request_id: str | None = Header(None, max_length=128),
    ) -> Prediction:
        """Score one request with the champion (the shadow scores it after the response)."""
        t0 = time.perf_counter()
        request = ParsedRequest(*split_request(body))
        prediction, completion = await singles.predict(request, request_ids(x_request_id, 1)[0], t0)
        tasks.add_task(after, completion)
        return prediction

    @app.post(
        "/predict/batch",
        response_model=BatchPrediction,
        responses={
            **errors,
            413: {
                "model": ErrorBody,
                "description": f"More than {max_batch} requests, or a body over {max_body_bytes} "
                "bytes.",
            },
        },
    )
    async def predict_batch(
        body: batch,  # type: ignore[valid-type]
        tasks: BackgroundTasks,
        x_request_id: str | None = Header(None, max_length=128),
    ) -> Any:
        """Score several requests in one call; answers come back in request order."""
        # `batch` is built at runtime (request_models), so mypy cannot see its fields.
        requests: list[Any] = body.requests  # type: ignore[attr-defined]
        if len(requests) > max_batch:
            got = len(requests)
            return JSONResponse(
                {"detail": f"A batch holds at most {max_batch} requests, got {got}."},
                status_code=413,
            )
        t0 = time.perf_counter()
        parsed = [ParsedRequest(*split_request(b)) for b in requests]
        ids = request_ids(x_request_id, len(parsed))
        predictions, pending = await service.predict(parsed, "/predict/batch", ids, [t0] * len(ids))
        tasks.add_task(service.complete, pending)
        return BatchPrediction(predictions=predictions)

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}})
    async def healthz() -> Any:
        """200 when features, model and logger are ready; 503 with the part that is not."""
        h = health()
        return h if h.status == "ok" else JSONResponse(h.model_dump(), status_code=503)

    @app.get("/model", response_model=ModelInfo)
    async def model() -> ModelInfo:
        """The versions and runtimes being served, and when they were loaded."""
        return ModelInfo(**service.models.describe())

    return app
