"""BodyLimit over a small FastAPI app, driven as ASGI by hand (no httpx), and request ids."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from mlray.features.repository import FeatureRepository
from mlray.serving.http import BodyLimit, build_http_app
from mlray.serving.schemas import Health, request_models
from mlray.serving.service import request_ids

LIMIT = 100


class Echo(BaseModel):
    text: str


def small_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodyLimit, limit=LIMIT)

    @app.post("/parsed")
    async def parsed(body: Echo) -> dict[str, int]:
        return {"length": len(body.text)}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    return app


def call(
    app: Any, path: str, chunks: list[bytes], *, content_length: bool = True
) -> tuple[int, Any]:
    """POST ``chunks`` as one ASGI request; returns the status and the JSON body of the answer."""
    headers = [(b"content-type", b"application/json")]
    if content_length:
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    incoming = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = [m for m in sent if m["type"] == "http.response.start"]
    assert len(start) == 1, sent
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start[0]["status"], json.loads(body)


def body_of(n: int) -> bytes:
    """A JSON body of exactly ``n`` bytes."""
    out = json.dumps({"text": "x" * (n - 12)}).encode()
    assert len(out) == n
    return out


@pytest.mark.parametrize("path", ["/parsed", "/raw"])
def test_a_declared_length_over_the_limit_is_413(path: str) -> None:
    status, got = call(small_app(), path, [body_of(LIMIT + 1)])
    assert status == 413 and got == {"detail": f"Request body is larger than {LIMIT} bytes."}


@pytest.mark.parametrize("path", ["/parsed", "/raw"])
def test_a_chunked_body_over_the_limit_is_413(path: str) -> None:
    body = body_of(LIMIT + 50)
    status, got = call(small_app(), path, [body[:60], body[60:]], content_length=False)
    assert status == 413 and got == {"detail": f"Request body is larger than {LIMIT} bytes."}


def test_a_body_within_the_limit_passes_through() -> None:
    app = small_app()
    assert call(app, "/parsed", [body_of(LIMIT)]) == (200, {"length": LIMIT - 12})
    body = body_of(LIMIT)
    assert call(app, "/parsed", [body[:50], body[50:]], content_length=False) == (
        200,
        {"length": LIMIT - 12},
    )
    assert call(app, "/raw", [b"12345", b"678"], content_length=False) == (200, {"length": 8})


def test_a_bad_body_within_the_limit_is_still_the_apps_422() -> None:
    status, got = call(small_app(), "/parsed", [b'{"text": 1}'])
    assert status == 422 and got["detail"][0]["loc"] == ["body", "text"]


@pytest.fixture(scope="module")
def serving_app() -> FastAPI:
    """The serving routes over the demo's request schema; no request here reaches the service."""
    repo = FeatureRepository.from_module("mlray.demo.features")
    single, batch = request_models(repo, ["user_activity:ctr_7d"], max_batch=5)

    def health() -> Health:
        return Health(status="ok", features="ok", model="ok", logger="ok")

    service: Any = None
    return build_http_app(service, single, batch, max_batch=5, max_body_bytes=2_048, health=health)


def test_the_scoring_routes_document_every_status_they_answer(serving_app: FastAPI) -> None:
    paths = serving_app.openapi()["paths"]
    for route in ("/predict", "/predict/batch"):
        responses = paths[route]["post"]["responses"]
        assert set(responses) == {"200", "400", "413", "422", "503"}
        assert responses["413"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }


def test_the_serving_app_answers_a_chunked_oversized_body_413(serving_app: FastAPI) -> None:
    body = json.dumps({"entities": {"user_id": 1}, "context": {}, "pad": "x" * 3_000}).encode()
    status, got = call(serving_app, "/predict", [body[:1_500], body[1_500:]], content_length=False)
    assert status == 413 and got == {"detail": "Request body is larger than 2048 bytes."}


@pytest.mark.parametrize(("body", "status"), [(b"\xff\xfe{", 400), (b'{"entities": ', 422)])
def test_a_body_that_is_not_json_is_a_documented_4xx(
    serving_app: FastAPI, body: bytes, status: int
) -> None:
    got_status, got = call(serving_app, "/predict", [body])
    assert got_status == status and "detail" in got


def test_request_ids_follow_the_clients_header() -> None:
    assert request_ids("abc", 1) == ["abc"]
    assert request_ids("abc", 3) == ["abc-0", "abc-1", "abc-2"]


@pytest.mark.parametrize("header", [None, ""])
def test_request_ids_are_new_and_distinct_without_a_header(header: str | None) -> None:
    ids = request_ids(header, 4)
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
