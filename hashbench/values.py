"""Values typed on a command line or stored as text: ``"0.5"`` -> 0.5, ``"None"`` -> None, ``"a"`` -> "a".

Also the *variant* of a cell (the parameters that differ from its method's defaults): its display
form (``n_iter=10,alpha=0.5``, :func:`format_variant`) and, for matching, its values read from what
a record stores rather than from that text (:func:`stored_variant`).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

#: parameters a variant never names: they are set by --bits, --seeds, --track, --weights and
#: --train-stages (or taken from the representation), not by ``--set``.
NOT_VARIANT = ("n_bits", "random_state", "track", "weights", "train_stages")


def parse_value(text: str) -> Any:
    """A Python literal when ``text`` is one (numbers, None, booleans, quoted strings), else the text
    itself, stripped: how ``--set M.P=V`` values and stored variants are read back."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def variant_item(name: str, value: Any) -> str:
    """One parameter as a variant shows it: ``name=repr(value)`` without quotes (``arch=resnet18``)."""
    return f"{name}={value!r}".replace("'", "")


def format_variant(params: Mapping[str, Any]) -> str:
    """``{"n_iter": 10, "alpha": 0.5}`` -> ``"alpha=0.5,n_iter=10"`` (names sorted; ``""`` for none):
    the ``variant`` a table shows. For people: a value holding ``,`` or ``=``, a string that reads
    as a number, a tuple, do not read back unambiguously (:func:`stored_variant` does not need to)."""
    return ",".join(variant_item(k, params[k]) for k in sorted(params))


def _forms(name: str, value: Any) -> list[str]:
    """How a stored value may have been shown: as stored, and a JSON list as the tuple it was."""
    forms = [variant_item(name, value)]
    if isinstance(value, list):
        forms.append(variant_item(name, tuple(value)))
    return forms


def stored_variant(params: Mapping[str, Any] | None, label: str | None) -> dict[str, Any] | None:
    """The parameters a variant ``label`` names, with the values a record stores (its
    ``config["params"]``, what its key digests) instead of values parsed back from the label.

    Which parameters: the subset of ``params`` whose :func:`format_variant` is ``label``, found by
    formatting forward (names in sorted order, each item ending at a comma or the end), so a value
    that holds a comma or ``=``, or that reads as another type, is taken as stored. ``{}`` for an
    empty label; None when no subset gives the label (a record whose stored parameters do not show
    the variant: the caller falls back to parsing the label)."""
    if params is None or label is None:
        return None
    text = str(label)
    if not text:
        return {}
    names = sorted(params)

    def walk(pos: int, start: int) -> list[str] | None:
        for j in range(start, len(names)):
            for form in _forms(names[j], params[names[j]]):
                end = pos + len(form)
                if not text.startswith(form, pos):
                    continue
                if end == len(text):
                    return [names[j]]
                if text[end] == "," and end + 1 < len(text):
                    rest = walk(end + 1, j + 1)
                    if rest is not None:
                        return [names[j], *rest]
        return None

    found = walk(0, 0)
    return None if found is None else {k: params[k] for k in found}
