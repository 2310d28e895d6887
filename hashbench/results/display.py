"""How a method is shown: its place in tables and its colour and marker in figures, read from the method.

The harness names no method. Each method class declares, as class attributes of
:class:`hashbench.methods.HashMethod`:

- ``display_rank`` (int): where its row goes in tables and its line in legends, lower first, ties by
  name (hashbench's own methods declare the UHGA paper's comparison order, LSH first);
- ``display_style`` (``(colour, marker)`` or ``None``): a matplotlib colour and marker for every
  figure.

A method that declares no style, and a name the registry does not know (records of a method that is
no longer installed), get a colour and a marker chosen by a digest of the name: the same in every
figure, on every machine. An unknown name sorts after every registered method.
"""

from __future__ import annotations

from typing import NamedTuple

from ..digests import text_digest

#: where an unknown or unloadable method sorts: after every registered one
UNKNOWN_RANK = 10**6
#: colours and markers for methods that declare no style, chosen by a digest of the name.
EXTRA_COLOURS = [
    "#e377c2",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#843c39",
    "#5254a3",
    "#b5cf6b",
    "#d6616b",
]
EXTRA_MARKERS = ["o", "s", "D", "^", "v", "<", ">", "p", "h", "P", "X", "*"]


class Display(NamedTuple):
    """A method's place in tables and its look in figures."""

    rank: int
    colour: str
    marker: str


def _hash_index(name: str, n: int) -> int:
    return int(text_digest([name], length=8), 16) % n


def fallback_style(name: str) -> tuple[str, str]:
    """(colour, marker) chosen by a digest of the lower-cased name."""
    key = str(name).lower()
    return EXTRA_COLOURS[_hash_index(key, len(EXTRA_COLOURS))], EXTRA_MARKERS[_hash_index(key + "#m", 12)]


def method_display(name: str) -> Display:
    """The :class:`Display` of the method registered as ``name`` (case-insensitive)."""
    from ..methods import get_method

    key = str(name).lower()
    try:
        cls = get_method(key)
    except Exception:  # noqa: BLE001 - an unknown or broken method still gets drawn, last
        return Display(UNKNOWN_RANK, *fallback_style(key))
    style = getattr(cls, "display_style", None)
    colour, marker = style if style else fallback_style(key)
    return Display(int(getattr(cls, "display_rank", 1000)), colour, marker)


def method_rank(name: str) -> tuple[int, str]:
    """Sort key of a method: its declared ``display_rank``, then its name."""
    return (method_display(name).rank, str(name))


def display_order(names) -> list[str]:
    """The distinct names in display order."""
    return sorted(dict.fromkeys(names), key=method_rank)
