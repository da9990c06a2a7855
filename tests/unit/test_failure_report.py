"""One line per failure: mlray errors found through Ray's wrappers, other errors with their line.

Also the CLI's report of it: markup printed as written, exit status 2, the full
traceback in a log file whose path is printed.
"""

from __future__ import annotations

import io
import json
import tempfile
import traceback
from pathlib import Path

import pytest
import typer
from ray.exceptions import RayTaskError
from rich.console import Console

from mlray import cli_support
from mlray.cli_support import error_log_dir, handle_errors, print_rows
from mlray.errors import (
    BackendUnavailable,
    ConfigError,
    DefinitionError,
    Failure,
    describe_failure,
    find_mlray_error,
)

HERE = str(Path(__file__).resolve())


def _transform(batch: dict) -> float:
    return batch["n"] / 0  # the line a report must point at


TRANSFORM_LINE = _transform.__code__.co_firstlineno + 1


def _ray_task_error(exc: Exception) -> Exception:
    """``exc`` as a Ray driver sees it: a RayTaskError(<type>) carrying the worker's traceback."""
    try:
        raise exc
    except Exception as e:
        text = "".join(traceback.format_exception(e))
        return RayTaskError("map_batches", text, e).as_instanceof_cause()


def test_an_mlray_error_raised_in_a_ray_task_is_found_with_its_message():
    wrapped = _ray_task_error(DefinitionError("view 'v' lacks column 'c'"))
    try:
        raise RuntimeError("dataset execution failed") from wrapped
    except RuntimeError as e:
        err = find_mlray_error(e)
    assert type(err) is DefinitionError and err is not None
    assert err.message == "view 'v' lacks column 'c'"


def test_an_mlray_error_flattened_into_another_libraries_message_is_rebuilt():
    # Delta's writer reports a failed Ray Data stream as text: the typed error survives as a line.
    text = (
        "Generic DeltaTable error: C Data interface error: \x1b[36mray::MapBatches()\x1b[39m "
        '(pid=1)\n  File "/x/redis_store.py", line 9, in write\n    conn.send()\n'
        "redis.exceptions.ConnectionError: refused\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        '  File "/x/materialize.py", line 4, in __call__\n    raise BackendUnavailable(...)\n'
        "mlray.errors.BackendUnavailable: Redis at redis://h:1 is down; start it and retry.\n"
    )
    err = find_mlray_error(OSError(text))
    assert type(err) is BackendUnavailable
    assert err.message == "Redis at redis://h:1 is down; start it and retry."
    failure = describe_failure(OSError(text))
    assert failure.line() == "BackendUnavailable: Redis at redis://h:1 is down; start it and retry."
    assert type(failure.error) is BackendUnavailable


def test_a_plain_error_in_a_ray_task_names_its_type_message_and_user_line():
    try:
        _transform({"n": 1})
    except ZeroDivisionError as e:
        wrapped = _ray_task_error(e)
    failure = describe_failure(wrapped)
    assert failure == Failure(
        "ZeroDivisionError", "division by zero", f"{HERE}:{TRANSFORM_LINE} in _transform"
    )
    assert failure.line() == (
        f"ZeroDivisionError: division by zero (raised at {HERE}:{TRANSFORM_LINE} in _transform)"
    )


def test_a_worker_traceback_flattened_into_text_is_parsed_past_ansi_and_library_frames():
    text = (
        "Generic DeltaTable error: Arrow error: \x1b[36mray::HashShuffleReduce()\x1b[39m "
        "(pid=3102, ip=192.0.2.2)\n"
        '  File "/venv/lib/python3.11/site-packages/ray/data/plan.py", line 464, in _wrapped\n'
        "    return udf(item)\n"
        '  File "/home/u/repo/features.py", line 8, in boom\n'
        "    return 1 / 0\n"
        "           ~~^~~\n"
        '  File "/venv/lib/python3.11/site-packages/pandas/core/ops.py", line 3, in div\n'
        "    raise KeyError(k)\n"
        "KeyError: 'clicks'\n"
    )
    assert describe_failure(RuntimeError(text)) == Failure(
        "KeyError", "'clicks'", "/home/u/repo/features.py:8 in boom"
    )


def _parse(doc: str) -> object:
    return json.loads(doc)


def test_a_plain_error_in_the_driver_names_the_innermost_user_frame_not_the_library():
    try:
        _parse("{")
    except ValueError as e:
        failure = describe_failure(e)
    assert failure.kind == "JSONDecodeError"
    assert (
        failure.message
        == "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    )
    assert failure.where == f"{HERE}:{_parse.__code__.co_firstlineno + 1} in _parse"


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(cli_support, "console", Console(file=out, width=300))
    return out


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("MLRAY_DATA_ROOT", str(root))
    monkeypatch.delenv("MLRAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return root


def test_a_command_error_is_one_line_as_written_and_its_traceback_goes_to_a_log(
    stderr: io.StringIO, data_root: Path
):
    @handle_errors
    def command() -> None:
        raise ConfigError("column df[col] is missing; see [red]the docs[/red] [/]")

    with pytest.raises(typer.Exit) as exit_info:
        command()
    assert exit_info.value.exit_code == 2
    first, second = stderr.getvalue().splitlines()
    assert first == "ConfigError: column df[col] is missing; see [red]the docs[/red] [/]"
    assert second.startswith(f"full traceback: {data_root / 'logs'}/error-")
    log = Path(second.removeprefix("full traceback: "))
    text = log.read_text()
    assert "error: ConfigError: column df[col] is missing" in text
    assert "Traceback (most recent call last)" in text and "in command" in text


def test_a_plain_exception_in_a_command_is_one_line_and_exit_2(
    stderr: io.StringIO, data_root: Path
):
    @handle_errors
    def command() -> None:
        _transform({"n": 3})

    with pytest.raises(typer.Exit) as exit_info:
        command()
    assert exit_info.value.exit_code == 2
    lines = stderr.getvalue().splitlines()
    assert lines[0] == (
        f"ZeroDivisionError: division by zero (raised at {HERE}:{TRANSFORM_LINE} in _transform)"
    )
    assert len(lines) == 2 and "ZeroDivisionError" in Path(lines[1].split(": ", 1)[1]).read_text()


def test_typers_own_exits_pass_through(stderr: io.StringIO):
    @handle_errors
    def command() -> None:
        raise typer.Exit(3)

    with pytest.raises(typer.Exit) as exit_info:
        command()
    assert exit_info.value.exit_code == 3 and stderr.getvalue() == ""


def test_the_log_goes_to_a_temp_dir_when_the_data_root_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLRAY_CONFIG", raising=False)
    monkeypatch.setenv("MLRAY_DATA_ROOT", str(tmp_path / "not-yet"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    assert error_log_dir() == tmp_path / "tmp" / "mlray-logs"
    assert not (tmp_path / "not-yet").exists()
    monkeypatch.setenv("MLRAY_REDIS", "{bad")  # settings that do not load: temp dir too
    assert error_log_dir() == tmp_path / "tmp" / "mlray-logs"


def test_table_cells_are_printed_as_written(capsys: pytest.CaptureFixture[str]):
    print_rows("[bold]views", [{"name[x]": "[red]v[/red]", "n": 1.5}])
    out = capsys.readouterr().out
    assert "[bold]views" in out and "name[x]" in out and "[red]v[/red]" in out
