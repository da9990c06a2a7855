"""The typed errors: HTTP status per kind, picklable (they cross Ray tasks), found when wrapped."""

from __future__ import annotations

import pickle

import pytest

from mlray import errors
from mlray.errors import (
    BackendUnavailable,
    ConfigError,
    DefinitionError,
    MlrayError,
    NotFoundError,
    SchemaError,
    TrainingFailed,
    ValidationFailed,
    find_mlray_error,
    unknown_name,
)

STATUS = {
    ConfigError: 400,
    DefinitionError: 400,
    SchemaError: 422,
    NotFoundError: 404,
    BackendUnavailable: 503,
    ValidationFailed: 422,
    TrainingFailed: 500,
    MlrayError: 500,
}


def test_every_error_class_has_its_status_and_is_listed_here():
    defined = {
        v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, MlrayError)
    }
    assert defined == set(STATUS)
    assert {cls: cls.http_status for cls in STATUS} == STATUS


@pytest.mark.parametrize("cls", sorted(STATUS, key=lambda c: c.__name__))
def test_errors_survive_pickling_with_their_message(cls):
    err = cls("table 'x' lacks column 'y'")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and back.message == str(back) == "table 'x' lacks column 'y'"


def test_validation_failed_keeps_its_report_across_pickling():
    back = pickle.loads(pickle.dumps(ValidationFailed("2 checks failed", report={"nulls": ["a"]})))
    assert back.report == {"nulls": ["a"]}


def test_find_mlray_error_walks_causes_contexts_and_ray_style_cause_attributes():
    inner = TrainingFailed("run 'r' failed")

    class Wrapped(Exception):
        def __init__(self, cause: BaseException) -> None:
            super().__init__("task failed")
            self.cause = cause

    try:
        try:
            raise Wrapped(inner)
        except Wrapped as w:
            raise RuntimeError("outer") from w
    except RuntimeError as e:
        assert find_mlray_error(e) is inner
    assert find_mlray_error(RuntimeError("plain")) is None


def test_unknown_name_suggests_close_names_and_lists_the_valid_ones():
    err = unknown_name(
        "feature",
        "ctr_7",
        ["ctr_7d", "ctr_24h", "count_1h"],
        where="in feature view 'user_activity'",
    )
    assert isinstance(err, NotFoundError)
    assert str(err) == (
        "Unknown feature 'ctr_7' in feature view 'user_activity'. "
        "Did you mean 'ctr_7d', 'ctr_24h'? "
        "Valid names: count_1h, ctr_24h, ctr_7d."
    )
