"""Shared fixtures: the real data copies in ../shared/data (skipped where absent)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR10_TAR = SHARED_DATA / "cifar10" / "CIFAR-10-images.tar"
COMPLETE = ".complete"


def test_cache_root() -> Path:
    """Per-machine cache for unpacked test data: ``$HASHBENCH_TEST_CACHE`` or ``~/.cache/hashbench-test``."""
    env = os.environ.get("HASHBENCH_TEST_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hashbench-test"


test_cache_root.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data copies (../shared/data from the repository root)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data copies not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cifar10_jpeg_root() -> Path:
    """CIFAR-10's JPEG copy unpacked once per machine (``train/<class>/*.jpg``, ``test/<class>/*.jpg``).

    The tar is unpacked into a temporary sibling folder that is renamed into place after a complete
    unpack, with a marker file inside, so an interrupted unpack is never mistaken for a complete one
    and concurrent test sessions do not see half a folder.
    """
    if not CIFAR10_TAR.is_file():
        pytest.skip(f"CIFAR-10 JPEG copy not present at {CIFAR10_TAR}")
    dest = test_cache_root() / "cifar10-jpeg"
    if (dest / COMPLETE).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix="cifar10-jpeg.partial-"))
    try:
        subprocess.run(["tar", "-xf", str(CIFAR10_TAR), "-C", str(tmp)], check=True)
        (tmp / COMPLETE).write_text(f"unpacked from {CIFAR10_TAR}\n")
        if dest.exists() and not (dest / COMPLETE).is_file():
            shutil.rmtree(dest)  # a partial unpack left by an older, interrupted run
        try:
            os.rename(tmp, dest)
        except OSError:  # another session finished first
            if not (dest / COMPLETE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


@pytest.fixture(scope="session")
def digits_lsh_itq_run(tmp_path_factory) -> Path:
    """One real run shared by the figure and report tests (they copy it): lsh, itq x 16, 32 bits x seeds
    0, 1 on the embedded digits, tables only."""
    from hashbench.cli import main

    out = tmp_path_factory.mktemp("digits-lsh-itq")
    argv = ["run", "--methods", "lsh,itq", "--dataset", "digits", "--bits", "16,32", "--seeds", "0,1"]
    assert main([*argv, "--out", str(out), "--no-progress", "--threads", "1", "--no-plots"]) == 0
    return out
