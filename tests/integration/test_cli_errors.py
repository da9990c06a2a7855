"""Failures inside Ray tasks and feature repositories, through the real ``mlray`` command.

Each is one error line and a log file's path, exit status 2; the full
traceback is in that file.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import ray.cloudpickle
from typer.testing import CliRunner

from mlray.cli import app

pytestmark = pytest.mark.usefixtures("ray_session")
BUILD = ["features", "build", "--start", "2026-01-01T00:00:00Z", "--end", "2026-01-02T00:00:00Z"]

BOOM_REPO = """\
from datetime import timedelta

import pyarrow as pa

from mlray.features import Entity, FeatureView, Field

user = Entity("user", ("user_id",))


def boom(events):
    return len(events) // 0


user_activity = FeatureView(
    name="user_activity",
    entities=[user],
    source="impressions",
    transform=boom,
    lookback=timedelta(hours=1),
    schema=[Field("clicks_1h", pa.int64())],
)
"""


def _invoke(env: dict[str, str], *args: str) -> tuple[int, list[str]]:
    r = CliRunner().invoke(app, list(args), env=env)
    return r.exit_code, r.output.splitlines()


def _log(line: str) -> str:
    """The text of the log file a ``full traceback: <path>`` line names."""
    prefix = "full traceback: "
    assert line.startswith(prefix), line
    return Path(line.removeprefix(prefix)).read_text()


@pytest.fixture
def repo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "repo"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))
    return d


def test_a_missing_raw_table_is_one_line_naming_it(tmp_path: Path):
    root = tmp_path / "data"
    root.mkdir()
    code, lines = _invoke({"MLRAY_DATA_ROOT": str(root)}, *BUILD, "--view", "user_activity")
    assert code == 2, lines
    assert len(lines) == 2, lines
    assert f"{root}/raw/impressions" in lines[0]
    assert lines[1].startswith(f"full traceback: {root}/logs/error-")
    assert "Traceback (most recent call last)" in _log(lines[1])


def test_a_transform_that_raises_in_a_ray_task_is_one_line_naming_its_line(
    tmp_path: Path, repo_dir: Path
):
    from mlray.config import load_settings
    from mlray.demo.generate import generate_clickstream

    root = tmp_path / "data"
    s = load_settings(config_file=None, data_root=str(root))
    generate_clickstream(s.raw_root, users=20, items=5, days=1, seed=3, progress=False)
    (repo_dir / "boom_repo_cli.py").write_text(BOOM_REPO)
    module = importlib.import_module("boom_repo_cli")
    # The Ray workers were started before this module existed: ship its code with the task.
    ray.cloudpickle.register_pickle_by_value(module)
    try:
        env = {"MLRAY_DATA_ROOT": str(root), "MLRAY_FEATURE_REPO": "boom_repo_cli"}
        code, lines = _invoke(env, *BUILD)
    finally:
        ray.cloudpickle.unregister_pickle_by_value(module)
        sys.modules.pop("boom_repo_cli", None)
    assert code == 2, lines
    assert lines[0] == (
        "ZeroDivisionError: integer division or modulo by zero "
        f"(raised at {repo_dir}/boom_repo_cli.py:11 in boom)"
    )
    assert len(lines) == 2, lines
    log = _log(lines[1])
    assert "boom_repo_cli.py" in log and "ZeroDivisionError" in log


@pytest.mark.parametrize(
    "source,expected",
    [
        ("x = (\n", "SyntaxError: '(' was never closed (at {file}:1)"),
        (
            "import os\nimport no_such_pkg_for_mlray_cli\n",
            "ModuleNotFoundError: No module named 'no_such_pkg_for_mlray_cli' "
            "(at {file}:2 in <module>)",
        ),
    ],
)
def test_a_repository_module_that_does_not_import_is_one_definition_error(
    tmp_path: Path, repo_dir: Path, source: str, expected: str
):
    name = f"broken_repo_cli_{len(source)}"
    file = repo_dir / f"{name}.py"
    file.write_text(source)
    env = {"MLRAY_DATA_ROOT": str(tmp_path / "data"), "MLRAY_FEATURE_REPO": name}
    code, lines = _invoke(env, "features", "list")
    assert code == 2, lines
    assert lines[0] == (
        f"DefinitionError: Feature repository module {name!r} fails to import: "
        f"{expected.format(file=file)}. Fix the module there."
    )
    assert len(lines) == 2 and "Traceback" in _log(lines[1])


def test_in_a_terminal_a_failed_ray_execution_prints_only_mlray_s_line(
    tmp_path: Path, repo_dir: Path
):
    """The real command in its own process (its own local Ray): Ray Data's ERROR records,
    hundreds of lines of worker tracebacks, stay in Ray's log files."""
    import os
    import subprocess

    from mlray.config import load_settings
    from mlray.demo.generate import generate_clickstream

    root = tmp_path / "data"
    s = load_settings(config_file=None, data_root=str(root))
    generate_clickstream(s.raw_root, users=20, items=5, days=1, seed=3, progress=False)
    (repo_dir / "boom_repo_proc.py").write_text(BOOM_REPO)
    env = {
        **os.environ,
        "MLRAY_DATA_ROOT": str(root),
        "MLRAY_FEATURE_REPO": "boom_repo_proc",
        "MLRAY_RAY__NUM_CPUS": "1",
        "PYTHONPATH": str(repo_dir),
        "COLUMNS": "200",
    }
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "mlray.cli", *BUILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out[-3000:]
    errors = [line for line in out.splitlines() if "ZeroDivisionError" in line]
    assert errors == [
        "ZeroDivisionError: integer division or modulo by zero "
        f"(raised at {repo_dir}/boom_repo_proc.py:11 in boom)"
    ], out[-3000:]
