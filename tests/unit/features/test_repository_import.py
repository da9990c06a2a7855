"""A feature repository module that does not import is a DefinitionError with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlray.errors import DefinitionError
from mlray.features import FeatureRepository


@pytest.fixture
def repo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _fails(module: str) -> str:
    with pytest.raises(DefinitionError) as info:
        FeatureRepository.from_module(module)
    return info.value.message


def test_a_syntax_error_names_file_and_line(repo_dir: Path):
    (repo_dir / "repo_syntax_err.py").write_text("import pyarrow as pa\nx = (\n")
    assert _fails("repo_syntax_err") == (
        "Feature repository module 'repo_syntax_err' fails to import: SyntaxError: "
        f"'(' was never closed (at {repo_dir}/repo_syntax_err.py:2). Fix the module there."
    )


def test_a_failing_import_inside_the_module_names_file_and_line(repo_dir: Path):
    (repo_dir / "repo_bad_import.py").write_text("import os\nimport no_such_pkg_for_mlray\n")
    assert _fails("repo_bad_import") == (
        "Feature repository module 'repo_bad_import' fails to import: ModuleNotFoundError: "
        "No module named 'no_such_pkg_for_mlray' "
        f"(at {repo_dir}/repo_bad_import.py:2 in <module>). Fix the module there."
    )


def test_an_exception_at_import_names_the_innermost_line_of_user_code(repo_dir: Path):
    (repo_dir / "repo_raises.py").write_text(
        "def helper():\n    return {}['ctr']\n\n\nVALUE = helper()\n"
    )
    assert _fails("repo_raises") == (
        "Feature repository module 'repo_raises' fails to import: KeyError: 'ctr' "
        f"(at {repo_dir}/repo_raises.py:2 in helper). Fix the module there."
    )


def test_a_missing_module_says_how_to_name_one(repo_dir: Path):
    assert _fails("repo_not_there") == (
        "Cannot import feature repository module 'repo_not_there': No module named "
        "'repo_not_there'. Set feature_repo in mlray.yaml or MLRAY_FEATURE_REPO to an "
        "importable module (a file in the working directory or on PYTHONPATH)."
    )


def test_a_definition_error_raised_by_a_definition_passes_through(repo_dir: Path):
    (repo_dir / "repo_bad_def.py").write_text(
        "from mlray.errors import DefinitionError\n"
        "raise DefinitionError('repo_bad_def.py:2: view names a bad entity')\n"
    )
    assert _fails("repo_bad_def") == "repo_bad_def.py:2: view names a bad entity"
