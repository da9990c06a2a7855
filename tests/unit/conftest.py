"""Unit tests never start Ray: calling ray.init here is a bug in the test."""

import pytest
import ray


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise RuntimeError("unit tests must not start Ray; move this test to tests/integration")

    monkeypatch.setattr(ray, "init", refuse)
    # In a combined run the integration tests' session Ray is still up: hide it, so that
    # code that would use Ray here has to start it, and is refused.
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
