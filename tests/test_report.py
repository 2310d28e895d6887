"""The HTML report: self-contained, escaped, every link lands; and, in a real headless Chromium, the
tables' numbers are in the DOM, every image decodes and the page is not blank."""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_plots import synthetic_frame

from hashbench.errors import InvalidInput
from hashbench.figures import report

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class _Page(HTMLParser):
    """The parts of a page the tests read: ids, internal links, images, scripts and table cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.imgs: list[dict[str, str]] = []
        self.scripts = 0
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._pre: str | None = None
        self.pre: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "img":
            self.imgs.append(a)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        if tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        if tag in ("td", "th") and self._table is not None:
            self._cell = []
        if tag == "pre" and "id" in a:
            self._pre = a["id"]
            self.pre[self._pre] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        if tag == "table":
            self._table = None
        if tag == "pre":
            self._pre = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._pre is not None:
            self.pre[self._pre] += data


def parse(text: str) -> _Page:
    p = _Page()
    p.feed(text)
    return p


def cell(page: _Page, table_id: str, row: str, column: str) -> str:
    rows = page.tables[table_id]
    col = rows[0].index(column)
    return next(r[col] for r in rows[1:] if r[0] == row)


def test_report_is_self_contained_escaped_and_linked():
    """No script, nothing fetched from outside (images are data: URIs that decode), every internal
    link has its target, and text from records is escaped (a variant with markup stays text)."""
    df, scores = synthetic_frame()
    df.loc[df["method"] == "itq", "variant"] = "note=<b>x</b>&y"
    df["command"] = "hashbench run --out 'a<b>'"
    text = report.render_report(
        [report.DatasetSection("digits", df)], command="hashbench report --out X", scores_loader=scores.__getitem__
    )
    page = parse(text)
    assert page.scripts == 0
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text) and "url(" not in text
    assert "<b>x</b>" not in text and "note=&lt;b&gt;x&lt;/b&gt;&amp;y" in text
    assert "&#x27;a&lt;b&gt;&#x27;" in text
    assert len(page.imgs) == 5
    for img in page.imgs:
        assert img["src"].startswith("data:image/png;base64,")
        im = Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1])))
        assert im.size[0] > 300 and im.size[1] > 200 and img["alt"]
    internal = [h[1:] for h in page.links if h.startswith("#")]
    assert internal and all(t in page.ids for t in internal), set(internal) - page.ids
    assert {"contents", "ds-digits", "ds-digits-tables", "ds-digits-figures", "ds-digits-protocol"} <= page.ids
    itq = df[(df.method == "itq") & (df.n_bits == 32)]["map"]
    assert cell(page, "ds-digits-map", "itq", "32 bits") == f"{itq.mean():.4f} ± {itq.std(ddof=1):.4f}"


def _cli(*argv: str) -> int:
    """``hashbench report ...`` through the CLI's own subparser (errors raise, as cli.main would print them)."""
    from hashbench.cli import figures

    parser = argparse.ArgumentParser(prog="hashbench")
    figures.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args, list(argv))


def _command(*argv: str) -> int:
    """The user's path: ``hashbench.cli.main`` once cli.py wires ``report``, else :func:`_cli`."""
    from hashbench.cli import build_parser, main

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return main(list(argv)) if argv[0] in sub.choices else _cli(*argv)


def test_report_without_records_names_the_fix(tmp_path):
    with pytest.raises(InvalidInput, match="hashbench run --out"):
        _cli("report", "--out", str(tmp_path))
    assert not (tmp_path / "report.html").exists()


def find_chromium() -> str | None:
    """A Chromium binary: ``$HASHBENCH_CHROMIUM`` or the usual names on PATH."""
    env = os.environ.get("HASHBENCH_CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        reason = (
            f"no Chromium binary found (looked for $HASHBENCH_CHROMIUM and {', '.join(CHROMIUM_NAMES)} on "
            "PATH); install it with `apt-get install -y chromium` to run the browser test"
        )
        pytest.skip(reason)
    return binary


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done


#: appended to a copy of the report (never to the report itself, which has no script): after load,
#: write each image's decoded width and the page's horizontal overflow into the DOM for --dump-dom.
PROBE = """<script>
window.addEventListener("load", function () {
  var widths = Array.prototype.map.call(document.images, function (im) { return im.complete ? im.naturalWidth : 0; });
  var p = document.createElement("pre");
  p.id = "probe";
  p.textContent = JSON.stringify({widths: widths, scrollWidth: document.documentElement.scrollWidth,
                                  innerWidth: window.innerWidth});
  document.body.appendChild(p);
});
</script>"""


@pytest.fixture(scope="module")
def digits_report(digits_lsh_itq_run, tmp_path_factory) -> Path:
    """A real report: `hashbench run` on digits, 2 methods x 2 code lengths x 2 seeds, then `report`."""
    import shutil

    out = tmp_path_factory.mktemp("report-digits")
    shutil.copytree(digits_lsh_itq_run, out, dirs_exist_ok=True)
    assert _command("report", "--out", str(out)) == 0
    return out


def test_report_in_headless_chromium(chromium, digits_report, tmp_path):
    """Rendered by a real browser: the DOM holds the tables' numbers, every image decoded, the page
    fits a small laptop's width without horizontal scrolling, and the screenshot is not blank."""
    from hashbench.results.tables import load_frame, select

    html_path = digits_report / "report.html"
    text = html_path.read_text()
    assert "<script" not in text

    dom = parse(run_chromium(chromium, tmp_path / "p1", "--dump-dom", html_path.as_uri()).stdout)
    df, _ = select(load_frame(digits_report / "digits"))
    for method in ("itq", "lsh"):
        for bits in (16, 32):
            v = df[(df.method == method) & (df.n_bits == bits)]["map"]
            assert len(v) == 2
            want = f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"
            assert cell(dom, "ds-digits-map", method, f"{bits} bits") == want
    splits = [r[2] for r in dom.tables["ds-digits-splits"][1:]]
    assert splits == [df[df.split_seed == s]["split_checksum"].iloc[0] for s in (0, 1)]
    assert "hashbench run --methods lsh,itq --dataset digits" in "".join(dom.text)
    versions = dom.tables["ds-digits-versions"]
    assert versions[0][:4] == ["hashbench", "torch", "faiss", "device"] and versions[1][3] == "cpu"
    n_images = len(dom.imgs)
    assert n_images == 5  # MAP vs bits, PR curves, precision@N, MAP vs train time, MAP vs query time

    probe_page = tmp_path / "probe.html"
    probe_page.write_text(text.replace("</body>", PROBE + "</body>"))
    probed = parse(
        run_chromium(
            chromium,
            tmp_path / "p2",
            "--window-size=1024,768",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe_page.as_uri(),
        ).stdout
    )
    facts = json.loads(probed.pre["probe"])
    assert len(facts["widths"]) == n_images and all(w > 0 for w in facts["widths"]), facts
    assert facts["scrollWidth"] <= facts["innerWidth"], f"page wider than a 1024 px window: {facts}"

    shot = tmp_path / "report.png"
    run_chromium(chromium, tmp_path / "p3", f"--screenshot={shot}", "--window-size=1280,2000", html_path.as_uri())
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (2000, 1280, 3)
    colours = np.unique(pixels.reshape(-1, 3)[::7], axis=0)
    ink = (pixels.min(axis=2) < 200).mean()  # text, rules, plot lines: clearly darker than the page
    assert len(colours) > 50 and ink > 0.01, (len(colours), ink)
    keep = os.environ.get("HASHBENCH_SCREENSHOT_DIR")  # for a person (or CI artifact) to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
