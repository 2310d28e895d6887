"""Reproductions of published papers: each paper is data in one module here, the machinery is shared.

A paper's module (e.g. :mod:`hashbench.reproductions.uhga2020`) holds only what is the paper's: its
published table (package data), method labels, table layouts, claims, datasets and default input,
built into one :class:`~hashbench.reproductions.base.Reproduction` named ``REPRODUCTION``. That
type's methods (:mod:`hashbench.reproductions.base`) plan the cells, write the ``hashbench run``
commands of the missing ones, lay our records beside the published values and test the claims.

``reproduction(name)`` returns that object, ``get(name)`` the module, ``list_reproductions()`` the
names. A second paper is a second module: add it to ``BUILTIN`` or register it from another package
under the entry-point group ``hashbench.reproductions`` (``name = package.module``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import ModuleType

from ..errors import UnknownName
from .base import Reproduction

ENTRY_POINT_GROUP = "hashbench.reproductions"
#: name -> module path of the reproductions shipped with hashbench.
BUILTIN = {"uhga2020": "hashbench.reproductions.uhga2020"}


def _registered() -> dict[str, str]:
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name.lower(), ep.value)
    return found


def list_reproductions() -> list[str]:
    """Names of the available reproductions (shipped and registered by entry points), sorted."""
    return sorted(_registered())


def get(name: str) -> ModuleType:
    """The reproduction module called ``name`` (case-insensitive), e.g. ``get("uhga2020")``."""
    known = _registered()
    key = (name or "").strip().lower()
    if key not in known:
        raise UnknownName(f"no reproduction named {name!r}; available: {', '.join(sorted(known))}")
    return importlib.import_module(known[key].split(":")[0])


def reproduction(name: str) -> Reproduction:
    """The :class:`Reproduction` of the module called ``name`` (its ``REPRODUCTION``)."""
    module = get(name)
    found = getattr(module, "REPRODUCTION", None)
    if not isinstance(found, Reproduction):
        raise UnknownName(f"reproduction {name!r} ({module.__name__}) defines no REPRODUCTION")
    return found
