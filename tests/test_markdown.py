"""The Markdown hashbench writes: lines of at most 100 characters outside tables and code, the
rendered text unchanged, and commands that run as they are when copied from the file."""

import re
import shlex
import subprocess

from hashbench.results import markdown

LONG = "hashbench run --methods ssdh,ssdh+ga,uhga,uhga+ga --dataset cifar10 --data-root DIR " + " ".join(
    f"--set m.p{i}={i}" for i in range(20)
)


def _long_lines(text: str) -> list[str]:
    fenced, out = False, []
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and not line.startswith("|") and len(line) > markdown.WIDTH:
            out.append(line)
    return out


def test_wrap_refills_paragraphs_and_items_and_keeps_tables_headings_and_code():
    table = "| a | " + "x" * 150 + " |"
    code = "```bash\n" + "y " * 80 + "\n```"
    text = "\n".join(
        [
            "# " + "Heading " * 20,
            "",
            "A paragraph " * 20,
            "",
            "- an item " + "word " * 40,
            "  continued here",
            "- a short item",
            "",
            table,
            "",
            code,
        ]
    )
    out = markdown.wrap(text)
    assert not _long_lines(out.replace("# " + "Heading " * 20, ""))  # only the heading stays long
    assert table in out.split("\n") and code in out and ("# " + "Heading " * 20) in out.split("\n")
    # the words are the same (Markdown renders a line break in a paragraph as a space)
    assert out.split() == text.split()
    # each item starts its own line, continuation lines are indented under it
    lines = out.split("\n")
    items = [i for i, line in enumerate(lines) if line.startswith("- ")]
    assert len(items) == 2 and lines[items[0] + 1].startswith("  word")
    assert markdown.wrap(out) == out  # idempotent


def test_a_long_command_becomes_a_block_that_runs_as_it_is():
    assert markdown.command("Produced by", "hashbench tables --out ft") == "Produced by `hashbench tables --out ft`."
    cmd = LONG + ' --set "q.r=a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7 8 9 0 - + ="'
    text = markdown.command("Produced by", cmd)
    assert text.startswith("Produced by:\n\n```bash\n") and text.endswith("\n```")
    body = text.split("```bash\n", 1)[1].rsplit("\n```", 1)[0]
    assert all(len(line) <= markdown.WIDTH for line in body.split("\n")[:-1])
    assert body.count("\n") >= 2 and all(line.endswith(" \\") for line in body.split("\n")[:-1])
    # the shell reads the block as the original words: quotes are never broken
    echoed = subprocess.run(["bash", "-c", "printf '%s\\n' " + body.split(" ", 1)[1]], capture_output=True, text=True)
    assert echoed.stdout.split("\n")[:-1] == shlex.split(cmd)[1:]


def test_map_md_written_by_a_run_keeps_lines_short(tmp_path):
    from hashbench.cli import main

    rc = main(["run", "--methods", "lsh,itq", "--dataset", "digits", "--bits", "8", "--out", str(tmp_path)])
    assert rc == 0
    md = (tmp_path / "digits" / "map.md").read_text()
    assert not _long_lines(md), _long_lines(md)
    assert "Records produced by:" in md and "hashbench run" in md


def test_wrap_never_starts_a_line_with_a_word_that_opens_a_block():
    """A line break before '-', '+', '1.', '#', '>' or '|' would start a list, heading, quote or
    table row: whatever the width, those words stay on the line of the word before them."""
    text = "- published a - b: the effect + its interval; 1. then # and > and | and 2) and --- end " * 3
    for width in range(20, 70):
        lines = markdown.wrap(text, width).split("\n")
        assert lines[0].startswith("- ") and " ".join(lines).split() == text.split()
        for line in lines[1:]:
            first = line.split()[0]
            assert not re.fullmatch(r"[-+*>]|#+|\d+[.)]|-+|=+|\|.*", first), (width, line)


def test_wrap_leaves_quotes_code_html_setext_headings_and_hard_breaks_alone():
    long = "word " * 30
    for text in [
        f"> {long}\n> {long}",
        f"para\n\n    {long}",
        f"~~~\n{long}\n~~~",
        f"<div>{long}</div>",
        f"Title {long}\n---",
        f"Title {long}\n===",
        f"line one  \nline two {long}",
        f"line one\\\nline two {long}",
    ]:
        assert markdown.wrap(text, 40) == text, text
    assert markdown.wrap(f"1) a {long}\n2) b", 40).split("\n")[-1] == "2) b"  # ')' items are items


def test_shell_block_keeps_negative_values_and_escaped_spaces_with_their_option():
    cmd = "hashbench run --split-seed -3 --set x=-1 --out my\\ runs " + "--bits 16 " * 8
    body = markdown.shell_block([cmd], 40).split("\n")[1:-1]
    assert "--split-seed -3" in " ".join(body)
    assert all(not line.strip().startswith("-3") for line in body)
    assert any("--out my\\ runs" in line for line in body)
    script = "printf '%s\\n' " + "\n".join(body).split(" ", 1)[1]
    echoed = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert echoed.stdout.split("\n")[:-1] == shlex.split(cmd)[1:]


def test_a_command_holding_a_backtick_is_never_inline():
    assert markdown.command("Produced by", "hashbench run --set 'a=`x`'").startswith("Produced by:\n\n```bash")
