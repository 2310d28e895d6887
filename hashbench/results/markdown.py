"""Markdown that reads in a terminal and in a diff: lines of at most :data:`WIDTH` characters.

Every Markdown file hashbench writes (``map.md``, the paper's tables and claims, comparisons) goes
through :func:`wrap`: paragraphs and list items are re-filled at :data:`WIDTH`; tables, headings and
code blocks are left as they are (a table row cannot be broken). Commands are shown by
:func:`command`: inline while the sentence fits, else as a ``bash`` block whose lines continue with
``\\``, so that a command copied from the file runs as it is.
"""

from __future__ import annotations

import re
import textwrap

#: the longest line hashbench writes outside tables and code blocks
WIDTH = 100

_ITEM = re.compile(r"^(\s*)([-*+]|\d+\.)\s+")


def wrap(text: str, width: int = WIDTH) -> str:
    """``text`` with every paragraph and list item re-filled to ``width`` characters (breaks only
    at spaces; a word longer than ``width`` keeps its own line). Tables (lines starting ``|``),
    headings, fenced code and blank lines pass through unchanged, so the rendered page is the
    same."""
    lines = text.split("\n")
    out: list[str] = []
    fenced = False
    block: list[str] = []

    def flush() -> None:
        if block:
            out.extend(_fill(block, width))
            block.clear()

    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith("```"):
            flush()
            fenced = not fenced
            out.append(line)
        elif fenced or not stripped or stripped.startswith(("|", "#")):
            flush()
            out.append(line)
        else:
            if _ITEM.match(line):
                flush()
            block.append(line)
    flush()
    return "\n".join(out)


def _fill(block: list[str], width: int) -> list[str]:
    if all(len(line) <= width for line in block):
        return list(block)
    m = _ITEM.match(block[0])
    first = block[0][: m.end()] if m else block[0][: len(block[0]) - len(block[0].lstrip())]
    rest = " " * len(first) if m else first
    words = " ".join(line.strip() for line in block)
    if m:
        words = words[len(m.group(0).strip()) :].strip()
    return textwrap.wrap(
        words, width=width, initial_indent=first, subsequent_indent=rest, break_long_words=False, break_on_hyphens=False
    )


def command(prefix: str, cmd: str, width: int = WIDTH) -> str:
    """``prefix `cmd`.`` when that fits in ``width``, else ``prefix:`` and ``cmd`` in a ``bash``
    block (:func:`shell_block`)."""
    inline = f"{prefix} `{cmd}`."
    if len(inline) <= width:
        return inline
    return f"{prefix}:\n\n{shell_block([cmd], width)}"


def shell_block(commands: list[str], width: int = WIDTH) -> str:
    """The commands as a fenced ``bash`` block, each broken before an option (never between an
    option and its value, never inside quotes) into lines of at most ``width`` characters that
    continue with `` \\``; continuation lines are indented by two. A group longer than a line keeps
    a line of its own."""
    body: list[str] = []
    for cmd in commands:
        line = ""
        for word in _option_groups(_shell_words(cmd)):
            if line and len(line) + 1 + len(word) + 2 > width:
                body.append(line + " \\")
                line = "  " + word
            else:
                line = f"{line} {word}" if line else word
        body.append(line)
    return "\n".join(["```bash", *body, "```"])


def _shell_words(cmd: str) -> list[str]:
    """``cmd`` split at the spaces outside single or double quotes (quotes kept)."""
    words: list[str] = []
    current, quote = "", ""
    for ch in cmd:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == " ":
            if current:
                words.append(current)
            current = ""
            continue
        current += ch
    if current:
        words.append(current)
    return words


def _option_groups(words: list[str]) -> list[str]:
    """``words`` joined so that each option travels with the values that follow it."""
    groups: list[str] = []
    for word in words:
        if groups and not word.startswith("-") and groups[-1].startswith("-"):
            groups[-1] += " " + word
        else:
            groups.append(word)
    return groups
