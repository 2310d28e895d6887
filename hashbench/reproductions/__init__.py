"""Reproductions of published papers: everything specific to one paper lives in one module here.

The harness (runner, tables, CLI) knows no paper and no method by name; a reproduction module does.
``get(name)`` returns the module; ``list_reproductions()`` the names. A second paper is a second
module: add it to ``BUILTIN`` or register it from another package under the entry-point group
``hashbench.reproductions`` (``name = package.module``).

A reproduction module provides (see :mod:`hashbench.reproductions.uhga2020`):

- ``NAME``, ``TITLE``, ``DATASETS`` (dataset name -> {"metric": label, "topk": K or None}),
  ``display_order(methods)`` (by the methods' own ``display_rank``), ``published()`` (the published
  values as a frame, read from package data so a wheel has them),
- ``required_cells(dataset)`` -> list of dict(method, bits, params, representation, track, tables),
- ``missing_cells(frame, dataset, seeds)`` and ``commands(dataset, out, frame=..., seeds=...)``:
  the ``hashbench run`` command lines that would produce what is missing,
- ``tables(frame, dataset)`` -> {name: DataFrame beside the published values, with the gap},
- ``claims(frame, scores_loader, dataset, seeds)`` -> DataFrame, ``render_claims_markdown(...)``,
- ``render_outputs(frame, scores_loader, dataset, ...)`` -> {file name: text} for the CLI to write.

Every function is pure (frames in, frames and strings out) apart from reading the package's own data.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import ModuleType

from ..errors import UnknownName

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
