"""Values typed on a command line or stored as text: ``"0.5"`` -> 0.5, ``"None"`` -> None, ``"a"`` -> "a"."""

from __future__ import annotations

import ast
from typing import Any


def parse_value(text: str) -> Any:
    """A Python literal when ``text`` is one (numbers, None, booleans, quoted strings), else the text
    itself, stripped: how ``--set M.P=V`` values and stored variants are read back."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()
