"""Every mlray name the README shows imports from where the README says it does."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
TEXT = README.read_text()
FROM_IMPORT = re.compile(r"from (mlray(?:\.\w+)*) import ([\w, ]+)")
# `mlray.x.y`, `mlray.x.y(...)` or `mlray.x:y`; files (mlray.yaml) are not names.
DOTTED = re.compile(r"\b(mlray(?:\.\w+)+)(?::(\w+))?")
FILES = (".yaml", ".yml", ".db", ".py", ".md", ".toml", ".json")


def _from_imports() -> list[tuple[str, str]]:
    return sorted(
        {(m, n.strip()) for m, names in FROM_IMPORT.findall(TEXT) for n in names.split(",")}
    )


def _dotted() -> list[str]:
    out = set()
    for name, attr in DOTTED.findall(TEXT):
        if name.endswith(FILES) or name.split(".")[-1] in {"yaml", "yml", "db"}:
            continue
        out.add(f"{name}.{attr}" if attr else name)
    return sorted(out)


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("module,name", _from_imports())
def test_from_import_lines_work(module, name):
    assert getattr(importlib.import_module(module), name) is not None


@pytest.mark.parametrize("dotted", _dotted())
def test_dotted_names_resolve(dotted):
    assert _resolve(dotted) is not None


def test_point_in_time_join_and_training_sets_are_importable_from_mlray_offline():
    from mlray.offline import TrainingSet, get_training_data, point_in_time_join
    from mlray.offline.pit_join import point_in_time_join as original

    assert point_in_time_join is original
    assert TrainingSet.__name__ == "TrainingSet" and callable(get_training_data)
    import mlray.offline

    for name in mlray.offline.__all__:
        assert getattr(mlray.offline, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = mlray.offline.nope
