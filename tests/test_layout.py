"""The folders show the architecture: hashbench's stages import downwards only, and the import paths
plugins and users know (hashbench.deep, .nets, .testing, .methods, .metrics, .records) are the
modules themselves, not copies."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hashbench"

#: hashbench's top-level names by stage, lowest first: a module may import from its own stage and
#: the stages below it, never from one above (CONTRIBUTING.md, "Layout: which file holds what")
STAGES = [
    ["errors", "digests", "values", "io", "bits", "device", "cache", "records", "search"],
    ["datasets", "features", "metrics"],
    ["methods"],
    ["run"],
    ["results"],
    ["reproductions"],
    ["figures"],
    ["cli", "doctor"],
]
STAGE_OF = {name: i for i, names in enumerate(STAGES) for name in names}
#: the public names that are the modules of methods/ (one module object each)
ALIASES = {"deep": "hashbench.methods.deep", "nets": "hashbench.methods.nets", "testing": "hashbench.methods.testing"}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, inside functions too."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if node.module:
                found.append((node.lineno, base))
            else:  # from . import a, b: each may be a module
                found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return [(line, name) for line, name in found if name == "hashbench" or name.startswith("hashbench.")]


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_top_level_name_has_a_stage():
    names = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    names |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert names - set(ALIASES) == set(STAGE_OF), "give each top-level module or folder of hashbench/ a stage"


def test_stages_import_downwards_only():
    """No module imports from a stage above its own, and none imports the public aliases (they are
    for plugins and users; hashbench imports the modules in methods/)."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mine = _top(_module(path))
        if mine is None or mine in ALIASES:
            continue  # the package face (imports metrics on first use) and the aliases
        for line, target in _imports(path):
            theirs = _top(target)
            where = f"{path.relative_to(ROOT)}:{line} imports {target}"
            if theirs in ALIASES:
                problems.append(f"{where}: import {ALIASES[theirs]}")
            elif theirs is not None and theirs in STAGE_OF and STAGE_OF[theirs] > STAGE_OF[mine]:
                problems.append(f"{where}: a stage above its own")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_public_paths_are_the_moved_modules(name):
    """``import hashbench.deep`` gives hashbench.methods.deep itself: a monkeypatch through either
    path is seen through the other, and a class is one class."""
    public = importlib.import_module(f"hashbench.{name}")
    assert public is importlib.import_module(ALIASES[name])
    assert sys.modules[f"hashbench.{name}"] is public
    assert getattr(importlib.import_module("hashbench"), name) is public


def test_a_monkeypatch_through_the_public_path_reaches_the_module(monkeypatch):
    import hashbench.methods.nets
    import hashbench.nets

    monkeypatch.setattr(hashbench.nets, "FINETUNE_VERSION", -1)
    assert hashbench.methods.nets.FINETUNE_VERSION == -1


def test_public_paths_import_in_a_fresh_interpreter():
    """The six paths CONTRIBUTING and README name import before anything else of hashbench has, each
    as one module under one name."""
    code = (
        "import importlib, sys\n"
        "for name in ('deep', 'nets', 'testing', 'methods', 'metrics', 'records'):\n"
        "    m = importlib.import_module('hashbench.' + name)\n"
        "    assert sys.modules['hashbench.' + name] is m is sys.modules[m.__name__], name\n"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
