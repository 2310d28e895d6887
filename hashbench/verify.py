"""``hashbench verify``: check every stored artifact a number depends on, and say what was found.

A results folder (``--out``: its records and cached scores) and the cache (features, decoded
images, resumable chunks) are read whole and checked against their checksums
(:func:`hashbench.records.verify_record`, :func:`hashbench.scoring.load_scores`,
:func:`hashbench.cache.verify_entry`). Nothing is changed: a run or ``tables`` already refuses a
corrupt artifact and recomputes it; ``verify`` is how to find one beforehand. Exit status 2 when
something is corrupt, 0 otherwise. Artifacts written before checksums existed are counted as
"no checksum" (read as before; a cache entry gets its checksum at its next read).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Found:
    """What one kind of artifact held: how many were fine, had no checksum, or are corrupt."""

    ok: int = 0
    unchecked: int = 0
    corrupt: list[str] = field(default_factory=list)

    def line(self, what: str) -> str:
        total = self.ok + self.unchecked + len(self.corrupt)
        extra = f", {self.unchecked} without a checksum (written before checksums)" if self.unchecked else ""
        return f"{what}: {total} checked, {self.ok + self.unchecked} fine{extra}, {len(self.corrupt)} corrupt"


def result_folders(out: Path) -> list[Path]:
    if (out / "records").is_dir():
        return [out]
    return sorted(p.parent for p in out.glob("*/records") if p.is_dir())


def verify_results(out: str | Path) -> tuple[Found, Found]:
    """(records, scores) found under a results folder (a ``--out`` root or one dataset's folder)."""
    from .records import CorruptRecord, iter_record_paths, record_checksum, verify_record
    from .scoring import SCORES_DIR, load_scores

    records, scores = Found(), Found()
    for folder in result_folders(Path(out)):
        for p in iter_record_paths(folder / "records"):
            try:
                verify_record(p)
                has = record_checksum(p) is not None
            except CorruptRecord as exc:
                records.corrupt.append(str(exc))
                continue
            if has:
                records.ok += 1
            else:
                records.unchecked += 1
        for p in sorted((folder / SCORES_DIR).glob("*.npz")) if (folder / SCORES_DIR).is_dir() else []:
            if p.name.startswith("."):
                continue
            try:
                s = load_scores(p)
            except CorruptRecord as exc:
                scores.corrupt.append(str(exc))
                continue
            if s.get("record_sha256"):
                scores.ok += 1
            else:
                scores.unchecked += 1
    return records, scores


def verify_cache(cache_dir: str | Path) -> Found:
    """Every ``.npy`` entry under a cache folder, checked against its ``.sha256`` sidecar."""
    from .cache import verify_entry

    found = Found()
    folder = Path(cache_dir)
    if not folder.is_dir():
        return found
    for p in sorted(folder.rglob("*.npy")):
        if p.name.startswith(".") or not p.is_file():
            continue
        try:
            state = verify_entry(p)
        except OSError as exc:
            found.corrupt.append(f"cache entry {p} is unreadable ({exc.strerror or exc})")
            continue
        if state == "ok":
            found.ok += 1
        elif state == "unchecked":
            found.unchecked += 1
        else:
            found.corrupt.append(f"cache entry {p} fails its checksum; the next run that needs it recomputes it")
    return found
