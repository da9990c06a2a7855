"""The typed exceptions every part of mlray raises.

One root, :class:`MlrayError`. Each error knows the HTTP status the serving
ingress maps it to, and each stays picklable so it can cross Ray actors and
tasks unchanged (only the message and plain attributes travel).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class MlrayError(Exception):
    """Root of all mlray errors."""

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.message,))


class ConfigError(MlrayError):
    """The settings (file, environment, arguments) are invalid."""

    http_status = 400


class DefinitionError(MlrayError):
    """A feature, view, entity or pipeline definition is inconsistent."""

    http_status = 400


class SchemaError(MlrayError):
    """A table, batch or request does not have the columns, fields or types required."""

    http_status = 422


class NotFoundError(MlrayError):
    """A named object (table, feature, view, model) does not exist."""

    http_status = 404


class BackendUnavailable(MlrayError):
    """A backend (Redis, MLflow, Ray) is down or too slow; retrying may help."""

    http_status = 503


class ValidationFailed(MlrayError):
    """Data validation failed; ``report`` carries the details."""

    http_status = 422

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.message, self.report))


class TrainingFailed(MlrayError):
    """Training or tuning failed after every allowed restart; the message says where logs are."""

    http_status = 500


def unknown_name(kind: str, name: str, valid: Iterable[str], where: str = "") -> NotFoundError:
    """Build a :class:`NotFoundError` that lists the closest valid names.

    Args:
        kind: what was looked up, e.g. ``"feature"``.
        name: the name that was not found.
        valid: all valid names.
        where: optional context, e.g. ``"in feature view 'user_activity'"``.
    """
    valid = sorted(set(valid))
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(valid[:20]) + (" ..." if len(valid) > 20 else "")
    loc = f" {where}" if where else ""
    return NotFoundError(f"Unknown {kind} {name!r}{loc}.{hint} Valid names: {listing}.")


def find_mlray_error(exc: BaseException) -> MlrayError | None:
    """The first :class:`MlrayError` in an exception's chain (Ray wraps task errors)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, MlrayError):
            return e
        todo.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
    return None
