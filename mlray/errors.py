"""The typed exceptions every part of mlray raises.

One root, :class:`MlrayError`. Each error knows the HTTP status the serving
ingress maps it to, and each stays picklable so it can cross Ray actors and
tasks unchanged (only the message and plain attributes travel).

:func:`describe_failure` turns any exception, however Ray wrapped it (a
``RayTaskError`` chain, or a traceback flattened into another library's
message), into one line: the mlray error it carries, or else the original
exception's type, message and the line of user code that raised it.
"""

from __future__ import annotations

import difflib
import re
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
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
    """The outermost :class:`MlrayError` anywhere in an exception's chain, else None.

    Follows ``__cause__``, ``__context__`` and Ray's ``cause`` attribute. A task
    error that another library flattened into its own message (Delta's writer
    reports a failed Ray Data stream as text) is found by its
    ``mlray.errors.<Name>: <message>`` line and rebuilt with that message.
    """
    chain = list(_chain(exc))
    for e in chain:
        # Ray's RayTaskError(<cause type>) is also an instance of the cause's type; the
        # cause itself comes next in the chain.
        if isinstance(e, MlrayError) and not isinstance(getattr(e, "cause", None), BaseException):
            return e
    classes = {c.__name__: c for c in _subclasses(MlrayError)}
    for e in chain:
        for name, message in reversed(_MLRAY_LINE.findall(_plain(str(e)))):
            if name in classes:
                return classes[name](message.strip())
    return None


@dataclass(frozen=True)
class Failure:
    """One failure in one line: its type, message and where it was raised.

    Attributes:
        kind: the exception's type name, e.g. ``"ZeroDivisionError"``.
        message: its message, on one line.
        where: the frame that raised it, user code first (``"path.py:8 in fn"``);
            None for an mlray error (its message says where).
        error: the mlray error, when the failure is one.
    """

    kind: str
    message: str
    where: str | None = None
    error: MlrayError | None = None

    @property
    def detail(self) -> str:
        """The message, plus ``" (raised at <where>)"`` when known."""
        return f"{self.message} (raised at {self.where})" if self.where else self.message

    def line(self) -> str:
        """``"<kind>: <detail>"``."""
        return f"{self.kind}: {self.detail}"


def describe_failure(exc: BaseException) -> Failure:
    """What went wrong, for a one-line report; see :class:`Failure`.

    An mlray error anywhere in the chain wins. Otherwise Ray's wrappers are
    peeled off: the original exception's type and message are reported, with
    the innermost frame of user code (not mlray, not an installed library)
    that it passed through, else the innermost mlray frame.
    """
    err = find_mlray_error(exc)
    if err is not None:
        return Failure(type(err).__name__, err.message, None, err)
    for e in _chain(exc):
        parsed = _parse_traceback_text(_plain(str(e)))
        if parsed is not None:
            return parsed
    origin = _unwrap(exc)
    frames = [(f.f_code.co_filename, ln, f.f_code.co_name) for f, ln in _tb_frames(origin)]
    return Failure(type(origin).__name__, one_line(str(origin)), _pick_frame(frames))


def raised_at(exc: BaseException) -> str | None:
    """The frame of user code that ``exc`` passed through last (``"file:line in fn"``)."""
    frames = [(f.f_code.co_filename, ln, f.f_code.co_name) for f, ln in _tb_frames(exc)]
    return _pick_frame(frames)


def one_line(text: str, limit: int = 400) -> str:
    """``text`` with its whitespace runs collapsed to single spaces, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- helpers -------------------------------------------------------------------------------
_MLRAY_PACKAGE = str(Path(__file__).resolve().parent)
_LIBRARY_DIRS = tuple(
    {
        str(Path(p).resolve())
        for k in ("stdlib", "platstdlib", "purelib", "platlib")
        if (p := sysconfig.get_paths().get(k))
    }
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_MLRAY_LINE = re.compile(r"^mlray(?:\.\w+)*\.(\w+): (.*)$", re.MULTILINE)
_FRAME = re.compile(
    r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)', re.MULTILINE
)
_EXC_LINE = re.compile(r"^(?P<kind>[A-Za-z_][\w.]*(?:\([\w.]*\))?)(?::[ ]?(?P<msg>.*))?$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps (``cause``, ``__cause__``, ``__context__``), once."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([getattr(e, "cause", None), e.__cause__, e.__context__])


def _subclasses(cls: type[MlrayError]) -> Iterator[type[MlrayError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def _unwrap(exc: BaseException) -> BaseException:
    """The exception Ray's wrappers (``RayTaskError``'s ``cause``, ``UserCodeException``) carry."""
    while True:
        inner = getattr(exc, "cause", None)
        if not isinstance(inner, BaseException) and type(exc).__name__ == "UserCodeException":
            inner = exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            return exc
        exc = inner


def _plain(text: str) -> str:
    return _ANSI.sub("", text)


def _tb_frames(exc: BaseException) -> list[tuple[Any, int]]:
    tb: TracebackType | None = exc.__traceback__
    out = []
    while tb is not None:
        out.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return out


def _is_library(filename: str) -> bool:
    if filename.startswith("<") or "site-packages" in filename or "dist-packages" in filename:
        return True
    return any(filename.startswith(d + "/") for d in _LIBRARY_DIRS)


def _pick_frame(frames: list[tuple[str, int, str]]) -> str | None:
    """The innermost frame of user code, else of mlray, else any (``frames`` outermost first)."""
    for wanted in (
        lambda f: not _is_library(f) and not f.startswith(_MLRAY_PACKAGE + "/"),
        lambda f: not _is_library(f),
        lambda f: True,
    ):
        for filename, line, func in reversed(frames):
            if wanted(filename):
                return f"{filename}:{line} in {func}"
    return None


def _parse_traceback_text(text: str) -> Failure | None:
    """The last exception of a traceback printed into ``text`` (Ray flattens worker errors so)."""
    frames = list(_FRAME.finditer(text))
    if not frames:
        return None
    rest = text[frames[-1].end() :].splitlines()[1:]
    for i, raw in enumerate(rest):
        if not raw.strip() or raw[0].isspace():
            continue  # the frame's source line and its ^^^ markers
        m = _EXC_LINE.match(raw.strip()) if ":" in raw or " " not in raw.strip() else None
        if m is None:
            return None
        body = [m.group("msg") or ""]
        for more in rest[i + 1 :]:
            if more.startswith(_CHAINED):
                break
            body.append(more)
        where = _pick_frame([(f["file"], int(f["line"]), f["func"]) for f in frames])
        return Failure(m.group("kind"), one_line("\n".join(body)), where)
    return None
