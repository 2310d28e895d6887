"""The harness names no method: order, colour and marker come from the method classes
(hashbench.results.display), and no registered name is written into hashbench's own code."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from hashbench.methods import get_method, list_methods
from hashbench.results import display
from hashbench.results.tables import method_rank

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hashbench"
#: a paper's reproduction names its methods by design
ALLOWED = {PACKAGE / "reproductions"}
#: none pending: methods declare their extra inputs (fit_extras), key fields (key_fields) and input
#: representation (input_representation); the harness reads only those
PENDING: set[Path] = set()


def _docstrings(tree: ast.AST) -> set[int]:
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, nodes)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _literals(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        and node.value.strip().lower() in names
    ]


def test_no_method_name_in_the_harness():
    """No registered method name is a string literal in hashbench/ outside docstrings, reproductions/
    and the files listed as pending."""
    names = set(list_methods())
    assert len(names) == 13  # the paper's eleven, BiHalf and GreedyHash (issue 30)
    skip = ALLOWED | PENDING
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(path == s or s in path.parents for s in skip):
            continue
        found += _literals(path, names)
    assert not found, "method names written into the harness:\n" + "\n".join(found)


def test_the_scan_sees_a_literal_and_skips_a_docstring(tmp_path):
    """The scan above can fail: a name in code is found, the same name in a docstring is not."""
    f = tmp_path / "m.py"
    f.write_text('"""itq in a docstring."""\nSTYLE = {"itq": 1}\n')
    found = _literals_rel(f, {"itq", "lsh"})
    assert len(found) == 1 and "'itq'" in found[0]


def _literals_rel(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    return [
        repr(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs and n.value in names
    ]


def test_order_and_style_come_from_the_classes():
    """Tables, figures and reproductions sort by each class's display_rank; unknown names go last,
    with a colour and marker chosen by a digest of the name."""
    names = list_methods()
    order = display.display_order(["zzz-unknown", *reversed(names)])
    assert order[-1] == "zzz-unknown"
    ranks = [get_method(n).display_rank for n in order[:-1]]
    assert ranks == sorted(ranks)
    assert order[0] == "lsh"
    ranked = method_rank(pd.Series(["uhga+ga", "nope", "lsh", "itq"]))
    assert list(ranked) == [2, 3, 0, 1]
    for n in names:
        shown = display.method_display(n)
        assert (shown.colour, shown.marker) == get_method(n).display_style
    other = display.method_display("zzz-unknown")
    assert other.rank == display.UNKNOWN_RANK and other.colour in display.EXTRA_COLOURS
    assert display.method_display("zzz-unknown") == other
