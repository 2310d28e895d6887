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

_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])\s+")
#: a word that would open a block (list, quote, heading, fence, table row, setext underline) if a
#: line began with it: it is kept on the line of the word before it
_MARKER = re.compile(r"^(?:[-+*>]|#{1,6}|\d{1,9}[.)]|=+|-+|`{3,}.*|~{3,}.*|\|.*)$")
_GLUE = "\x00"
#: a negative number: the value of an option, not an option
_NUMBER = re.compile(r"-\d[\d.]*(?:e[-+]?\d+)?")


def wrap(text: str, width: int = WIDTH) -> str:
    """``text`` with every paragraph and list item re-filled to ``width`` characters (breaks only
    at spaces, never before a word that would open a block; a word longer than ``width`` keeps its
    own line). Everything else passes through unchanged: tables, headings (ATX and setext), fenced
    (```` ``` ```` or ``~~~``) and indented code, block quotes, HTML, blank lines, and a block
    holding a hard line break. Markdown renders a line break inside a paragraph as a space, so the
    rendered page is the same."""
    out: list[str] = []
    fence = ""
    block: list[str] = []

    def flush() -> None:
        if block:
            out.extend(_fill(block, width))
            block.clear()

    for line in text.split("\n"):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if fence:
            out.append(line)
            if stripped.startswith(fence):
                fence = ""
        elif stripped.startswith(("```", "~~~")):
            flush()
            fence = stripped[:3]
            out.append(line)
        elif block and re.fullmatch(r" {0,3}(=+|-+)\s*", line):  # setext underline: a heading
            heading = block.pop()
            flush()
            out += [heading, line]
        elif (
            not stripped
            or stripped.startswith(("|", "#", ">", "<"))
            or (indent >= 4 and not (block and _ITEM.match(block[0])))  # indented code
        ):
            flush()
            out.append(line)
        else:
            if _ITEM.match(line):
                flush()
            block.append(line)
    flush()
    return "\n".join(out)


def _fill(block: list[str], width: int) -> list[str]:
    if all(len(line) <= width for line in block) or any(line.endswith(("  ", "\\")) for line in block[:-1]):
        return list(block)  # short already, or holding a hard line break
    m = _ITEM.match(block[0])
    first = block[0][: m.end()] if m else block[0][: len(block[0]) - len(block[0].lstrip())]
    rest = " " * len(first) if m else first
    text = " ".join(line.strip() for line in block)
    if m:
        text = text[len(m.group(0).strip()) :].strip()
    words: list[str] = []
    for word in text.split(" "):
        if words and words[-1] and _MARKER.match(word):
            words[-1] += _GLUE + word
        else:
            words.append(word)
    lines = textwrap.wrap(
        " ".join(words),
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_GLUE, " ") for line in lines]


def command(prefix: str, cmd: str, width: int = WIDTH) -> str:
    """``prefix `cmd`.`` when that fits in ``width`` (and ``cmd`` holds no backtick), else
    ``prefix:`` and ``cmd`` in a ``bash`` block (:func:`shell_block`)."""
    inline = f"{prefix} `{cmd}`."
    if len(inline) <= width and "`" not in cmd:
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
    """``cmd`` split at the spaces outside quotes and not escaped by a backslash (quotes and
    backslashes kept)."""
    words: list[str] = []
    current, quote, escaped = "", "", False
    for ch in cmd:
        if escaped:
            escaped = False
        elif ch == "\\" and quote != "'":
            escaped = True
        elif quote:
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
    """``words`` joined so that each option travels with the values that follow it (a negative
    number is a value)."""
    groups: list[str] = []
    for word in words:
        is_option = word.startswith("-") and not _NUMBER.fullmatch(word)
        if groups and not is_option and groups[-1].startswith("-"):
            groups[-1] += " " + word
        else:
            groups.append(word)
    return groups
