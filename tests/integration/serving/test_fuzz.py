"""Property-based HTTP fuzzing of the serving app from its own OpenAPI schema.

Schemathesis generates bodies and headers that fit each route's schema
(positive) and that do not (negative); whatever it sends, the answer must not
be a 5xx, its status must be one the route documents and its body must match
the documented schema.

The cases are drawn with ``APIOperation.as_strategy`` under Hypothesis
directly: schemathesis' lazy pytest loader (``from_fixture``) sets
``Function._nodeid``, which pytest 9 no longer has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from serving_support import Served, deploy, wait_for

NAME = "fuzz"
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = 50  # per operation and mode: about 300 requests in all
BODIES = [("POST", "/predict"), ("POST", "/predict/batch")]
READS = [("GET", "/healthz"), ("GET", "/model")]


@pytest.fixture(scope="module")
def fuzz_url(served: Served) -> Iterator[str]:
    from ray import serve

    url = deploy(served, name=NAME, log={"replica_flush_s": 0.2, "commit_interval_s": 1.0})
    yield url
    serve.delete(NAME)


@pytest.fixture(scope="module")
def api(fuzz_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_url}/openapi.json", timeout=10)


def test_every_route_of_the_app_is_fuzzed(api: schemathesis.BaseSchema) -> None:
    got = {(op.method.upper(), op.path) for op in (r.ok() for r in api.get_all_operations())}
    assert got == set(BODIES + READS)


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [(m, p, mode) for m, p in BODIES for mode in GenerationMode]
    + [(m, p, GenerationMode.POSITIVE) for m, p in READS],
)
def test_no_input_breaks_the_app_or_its_schema(
    api: schemathesis.BaseSchema, fuzz_url: str, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api[path][method]
    session = requests.Session()
    statuses: Counter[int] = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def one(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            base_url=fuzz_url, session=session, checks=CHECKS, timeout=10
        )
        statuses[response.status_code] += 1

    one()
    print(method, path, mode, dict(statuses))
    if mode == GenerationMode.POSITIVE:
        assert statuses[200] > 0, statuses  # the valid cases were scored, not all turned away


def test_every_fuzzed_prediction_is_committed_to_the_log(fuzz_url: str) -> None:
    from ray import serve

    logger = serve.get_deployment_handle("PredictionLogger", app_name=NAME)
    wait_for(lambda: logger.flush.remote().result() >= 0 and _settled(logger), 30)
    stats = logger.stats.remote().result()
    assert stats["received"] > 0 and stats["failed_commits"] == 0 and stats["dropped"] == 0, stats


def _settled(logger: object) -> bool:
    stats = logger.stats.remote().result()  # type: ignore[attr-defined]
    return stats["pending"] == 0 and stats["logged"] == stats["received"]
