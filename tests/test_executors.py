"""The local executor's parallel path: cells longest first, the allocator setting of its workers, and
records that do not depend on ``--jobs``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from hashbench.cli import main
from hashbench.run.plan import Task, expected_cost, longest_first


def _task(method: str, bits: int, seed: int = 0, **kwargs) -> Task:
    return Task(method, kwargs, bits, seed, 0, {}, "", f"{method}-{bits}-{seed}")


def test_longest_first_puts_image_methods_then_deep_then_shallow_longer_codes_first():
    tasks = [
        _task("lsh", 16),
        _task("itq", 128),
        _task("uhga+ga", 16),
        _task("hashgan", 16, track="end2end"),
        _task("usdh", 128),
        _task("ssdh", 32, track="end2end"),
        _task("hashgan", 128, track="end2end"),
        _task("uhga+ga", 128, seed=1),
        _task("uhga+ga", 128, seed=0),
    ]
    order = [(t.method, t.n_bits, t.seed) for t in longest_first(tasks)]
    assert order == [
        ("hashgan", 128, 0),
        ("ssdh", 32, 0),  # end to end: trains on images
        ("hashgan", 16, 0),
        ("usdh", 128, 0),
        ("uhga+ga", 128, 1),  # ties keep the plan's order
        ("uhga+ga", 128, 0),
        ("uhga+ga", 16, 0),
        ("itq", 128, 0),
        ("lsh", 16, 0),
    ]
    assert (
        expected_cost(_task("hashgan", 16, track="end2end"))
        > expected_cost(_task("uhga+ga", 128))
        > expected_cost(_task("sh", 128))
    )
    # the features track's HashGAN is a deep method on features, ranked with the others
    assert expected_cost(_task("hashgan", 64)) == expected_cost(_task("usdh", 64))


def test_jobs_2_gives_the_records_of_jobs_1(tmp_path):
    """Worker processes (spawned, longest cell first, malloc keeping freed memory) write the same codes."""
    from hashbench.records import read_record

    grid = ["--methods", "itq,lsh,hashgan", "--dataset", "digits", "--bits", "16,32", "--no-progress", "--no-plots"]
    grid += ["--set", "hashgan.epochs=1", "--set", "hashgan.g_width=4", "--set", "hashgan.d_width=4"]
    for jobs in ("1", "2"):
        assert main(["run", *grid, "--out", str(tmp_path / jobs), "--jobs", jobs]) == 0
    a = sorted((tmp_path / "1" / "digits" / "records").glob("*.npz"))
    b = sorted((tmp_path / "2" / "digits" / "records").glob("*.npz"))
    assert len(a) == 6 and [p.name for p in a] == [p.name for p in b]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(read_record(x).db_codes, read_record(y).db_codes), x.name


def test_keep_freed_memory_sets_glibc_and_changes_no_number():
    """A HashGAN fit gives bitwise the same projections with and without the setting (fresh processes)."""
    script = textwrap.dedent(
        """
        import sys, hashlib
        import numpy as np
        from hashbench.device import keep_freed_memory
        from hashbench_baselines.hashgan import HashGAN
        if sys.argv[1] == "keep":
            assert keep_freed_memory() is True
        X = np.random.default_rng(0).integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
        m = HashGAN(n_bits=16, epochs=1, batch_size=16, g_width=8, d_width=8, hidden=32, device="cpu",
                    track="end2end").fit(X)
        print(hashlib.sha256(np.ascontiguousarray(m.project(X), dtype=np.float32).tobytes()).hexdigest())
        """
    )
    digests = {
        subprocess.run([sys.executable, "-c", script, mode], check=True, capture_output=True, text=True).stdout.strip()
        for mode in ("default", "keep")
    }
    assert len(digests) == 1, digests
