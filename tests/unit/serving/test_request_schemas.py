"""Request bodies typed from the demo's feature definitions: exact fields, strict values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mlray.features.repository import FeatureRepository
from mlray.quickstart import TRAIN_FEATURES
from mlray.serving.schemas import MAX_STRING, request_models, split_request

ENTITIES = {"user_id": 3, "item_id": 7}
CONTEXT = {"device": "mobile", "price": 19.9}


@pytest.fixture(scope="module")
def repo() -> FeatureRepository:
    return FeatureRepository.from_module("mlray.demo.features")


@pytest.fixture(scope="module")
def models(repo: FeatureRepository) -> tuple[type[BaseModel], type[BaseModel]]:
    return request_models(repo, TRAIN_FEATURES, max_batch=5)


@pytest.fixture(scope="module")
def single(models: tuple[type[BaseModel], type[BaseModel]]) -> type[BaseModel]:
    return models[0]


def _sub(model: type[BaseModel], field: str) -> type[BaseModel]:
    sub = model.model_fields[field].annotation
    assert isinstance(sub, type) and issubclass(sub, BaseModel)
    return sub


def _errors(model: type[BaseModel], body: Any) -> list[tuple[str, ...]]:
    """The locs of what ``body`` gets wrong."""
    with pytest.raises(ValidationError) as got:
        model.model_validate(body)
    return [tuple(str(p) for p in e["loc"]) for e in got.value.errors()]


def test_entities_are_the_join_keys_typed_as_int64(single: type[BaseModel]) -> None:
    entities = _sub(single, "entities")
    assert set(entities.model_fields) == {"user_id", "item_id"}
    props = entities.model_json_schema()["properties"]
    for key in ("user_id", "item_id"):
        assert entities.model_fields[key].annotation is int
        assert entities.model_fields[key].is_required()
        assert (props[key]["minimum"], props[key]["maximum"]) == (-(2**63), 2**63 - 1)


def test_context_is_the_request_fields_and_an_optional_request_time(
    single: type[BaseModel],
) -> None:
    context = _sub(single, "context")
    assert set(context.model_fields) == {"device", "price", "request_time"}
    fields = context.model_fields
    assert fields["device"].annotation is str and fields["device"].is_required()
    assert fields["price"].annotation is float and fields["price"].is_required()
    assert not fields["request_time"].is_required() and fields["request_time"].default is None
    assert single.model_fields["context"].is_required()  # device and price have no default


def test_a_valid_request_parses(single: type[BaseModel]) -> None:
    body = single.model_validate({"entities": ENTITIES, "context": CONTEXT})
    assert body.model_dump() == {"entities": ENTITIES, "context": {**CONTEXT, "request_time": None}}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"entities": ENTITIES, "context": CONTEXT, "extra": 1}, ("extra",)),
        ({"entities": {**ENTITIES, "shop_id": 1}, "context": CONTEXT}, ("entities", "shop_id")),
        ({"entities": ENTITIES, "context": {**CONTEXT, "colour": "red"}}, ("context", "colour")),
        (
            {"entities": ENTITIES, "context": {**CONTEXT, "price": float("nan")}},
            ("context", "price"),
        ),
        (
            {"entities": ENTITIES, "context": {**CONTEXT, "price": float("inf")}},
            ("context", "price"),
        ),
        ({"entities": {**ENTITIES, "user_id": 2**63}, "context": CONTEXT}, ("entities", "user_id")),
        (
            {"entities": {**ENTITIES, "item_id": -(2**63) - 1}, "context": CONTEXT},
            ("entities", "item_id"),
        ),
        ({"entities": {**ENTITIES, "user_id": "x"}, "context": CONTEXT}, ("entities", "user_id")),
        ({"entities": {"item_id": 7}, "context": CONTEXT}, ("entities", "user_id")),
        ({"entities": ENTITIES, "context": {"device": "mobile"}}, ("context", "price")),
        (
            {"entities": ENTITIES, "context": {**CONTEXT, "device": "x" * (MAX_STRING + 1)}},
            ("context", "device"),
        ),
        (
            {"entities": ENTITIES, "context": {**CONTEXT, "request_time": "2026-01-01T00:00:00"}},
            ("context", "request_time"),
        ),
        ({"entities": ENTITIES}, ("context",)),
    ],
)
def test_a_bad_request_is_rejected_at_the_field(
    single: type[BaseModel], body: dict, loc: tuple[str, ...]
) -> None:
    assert _errors(single, body) == [loc]


def test_int64_bounds_are_accepted(single: type[BaseModel]) -> None:
    body = {"entities": {"user_id": 2**63 - 1, "item_id": -(2**63)}, "context": CONTEXT}
    assert single.model_validate(body).entities.model_dump() == body["entities"]  # type: ignore[attr-defined]


def test_an_aware_request_time_is_kept_with_its_offset(single: type[BaseModel]) -> None:
    body = {
        "entities": ENTITIES,
        "context": {**CONTEXT, "request_time": "2026-01-01T01:00:00+01:00"},
    }
    t = single.model_validate(body).context.request_time  # type: ignore[attr-defined]
    assert t == datetime(2026, 1, 1, tzinfo=UTC)
    assert t.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("t", ["9999-12-31T23:00:00-01:00", "0001-01-01T00:30:00+01:00"])
def test_a_request_time_out_of_range_in_utc_is_rejected(single: type[BaseModel], t: str) -> None:
    body = {"entities": ENTITIES, "context": {**CONTEXT, "request_time": t}}
    assert _errors(single, body) == [("context", "request_time")]


def test_the_batch_advertises_its_limits(models: tuple[type[BaseModel], type[BaseModel]]) -> None:
    single, batch = models
    assert set(batch.model_fields) == {"requests"}
    requests = batch.model_json_schema()["properties"]["requests"]
    assert (requests["minItems"], requests["maxItems"]) == (1, 5)
    one = {"entities": ENTITIES, "context": CONTEXT}
    assert _errors(batch, {"requests": []}) == [("requests",)]
    assert _errors(batch, {"requests": [one], "extra": 1}) == [("extra",)]
    assert _errors(batch, {"requests": [one, {"entities": ENTITIES}]}) == [
        ("requests", "1", "context")
    ]
    # Longer than max_batch parses: the route answers 413 with the limit, not a 422.
    assert len(batch.model_validate({"requests": [one] * 6}).requests) == 6  # type: ignore[attr-defined]


def test_stored_features_only_need_no_context(repo: FeatureRepository) -> None:
    single, _ = request_models(repo, ["user_activity:ctr_7d"], max_batch=5)
    assert set(_sub(single, "entities").model_fields) == {"user_id"}
    assert set(_sub(single, "context").model_fields) == {"request_time"}
    body = single.model_validate({"entities": {"user_id": 1}})
    assert body.context.request_time is None  # type: ignore[attr-defined]


def test_split_request_separates_the_request_time(single: type[BaseModel]) -> None:
    t = datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
    body = single.model_validate(
        {"entities": ENTITIES, "context": {**CONTEXT, "request_time": t.isoformat()}}
    )
    assert split_request(body) == (ENTITIES, CONTEXT, t)
    plain = single.model_validate({"entities": ENTITIES, "context": CONTEXT})
    assert split_request(plain) == (ENTITIES, CONTEXT, None)
