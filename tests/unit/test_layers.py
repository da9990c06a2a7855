"""Imports point one way: every module of mlray imports only from lower layers or its own package.

The layers, lowest first (a package may import its own modules freely; two
packages in the same layer may not import each other). Function-level and
``TYPE_CHECKING`` imports count too: a cycle hidden in a function is a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mlray

LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("config",),
    ("mlray", "ray_session", "metrics", "cli_support"),
    ("features",),
    ("offline", "online", "validation", "runtimes"),
    ("registry", "export"),
    ("training",),
    ("store", "pipeline"),
    ("serving", "monitoring"),
    ("demo",),
    ("commands", "quickstart"),
    ("cli",),
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}
ROOT = Path(mlray.__file__).parent


def component(module: str) -> str:
    """Its layer: ``mlray.online.reader`` -> ``online``, ``mlray.config`` -> ``config``.

    ``mlray`` itself -> ``mlray``.
    """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module) of every mlray import in the file, at any depth."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "mlray"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if name.split(".")[0] == "mlray":
                # `from mlray import x` may name a submodule: count it as that component.
                subs = [f"{name}.{a.name}" for a in node.names] if name == "mlray" else [name]
                out += [(node.lineno, s) for s in subs]
    return out


def violations(root: Path = ROOT) -> list[str]:
    """One line per import that does not point to a lower layer (or the importer's own package)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        me = component(module_name(path, root))
        for line, target in imported_modules(path, root):
            other = component(target)
            where = f"{path.relative_to(root.parent)}:{line}"
            if other not in RANK:
                if (root / other).exists() or (root / f"{other}.py").exists():
                    found.append(f"{where}: {other!r} is in no layer")
            elif other != me and RANK[other] >= RANK[me]:
                found.append(
                    f"{where}: {me} (layer {RANK[me]}) imports "
                    f"{target} ({other}, layer {RANK[other]})"
                )
    return found


def test_every_package_and_module_has_a_layer() -> None:
    names = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()}
    components = {n for n in names if n not in {"__init__", "__pycache__"}} | {"mlray"}
    assert sorted(components - set(RANK)) == []


def test_imports_only_point_down() -> None:
    assert violations() == []


def test_the_checker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "mlray"
    (pkg / "online").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "online" / "__init__.py").write_text("from mlray.online import probe\n")
    (pkg / "online" / "probe.py").write_text(
        "import mlray.errors\n"
        "def f():\n"
        "    from mlray.store import FeatureStore\n"
        "    from ..pipeline import run_pipeline\n"
        "    from . import reader\n"
    )
    assert violations(pkg) == [
        "mlray/online/probe.py:3: online (layer 4) imports mlray.store (store, layer 7)",
        "mlray/online/probe.py:4: online (layer 4) imports mlray.pipeline (pipeline, layer 7)",
    ]
