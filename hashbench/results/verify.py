"""``hashbench verify``: check every stored artifact a number depends on, and say what was found.

A results folder (``--out``: its records and cached scores), the cache (features, decoded
images, resumable chunks, exported ONNX graphs) and deep methods' resumable checkpoints are read
whole and checked against their checksums (:func:`hashbench.records.verify_record`,
:func:`hashbench.run.scoring.load_scores`, :func:`hashbench.cache.verify_entry`). Checkpoints
(``*.pt``, written by :func:`hashbench.methods.loop.save_checkpoint` into a method's ``checkpoint_dir``)
are looked for under the results folder, the cache, every ``checkpoint_dir`` that the records'
commands name (``--set METHOD.checkpoint_dir=DIR``) and any folder given with
``--checkpoint-dir``, and checked by :func:`hashbench.cache.verify_entry`, as
:func:`hashbench.methods.loop.load_checkpoint` does before it resumes a fit. Nothing is changed: a run or
``tables`` already refuses a corrupt artifact and recomputes it (a fit does not resume from a
corrupt checkpoint: it trains from scratch); ``verify`` is how to find one beforehand. Exit
status 2 when something is corrupt, 0 otherwise. Artifacts written before checksums existed are
counted as "no checksum" (read as before; a cache entry gets its checksum at its next read).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

#: what the cache holds with a checksum sidecar: arrays, and exported ONNX graphs
CACHE_SUFFIXES = (".npy", ".onnx")
#: the file name ending of a checkpoint (:func:`hashbench.methods.loop.save_checkpoint`)
CHECKPOINT_SUFFIX = ".pt"


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
    from ..records import CorruptRecord, iter_record_paths, record_checksum, verify_record
    from ..run.scoring import SCORES_DIR, load_scores

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
    """Every entry (``.npy``, ``.onnx``) under a cache folder, checked against its ``.sha256`` sidecar."""
    found = Found()
    folder = Path(cache_dir)
    if not folder.is_dir():
        return found
    for p in sorted(folder.rglob("*")):
        if p.suffix not in CACHE_SUFFIXES or p.name.startswith(".") or not p.is_file():
            continue
        _tally(found, p, "cache entry", "the next run that needs it recomputes it")
    return found


def checkpoint_dirs_of_records(out: str | Path) -> list[Path]:
    """The ``checkpoint_dir`` folders named in the commands of the records under ``out`` (``--set
    METHOD.checkpoint_dir=DIR``; a relative one taken from here), those that exist."""
    from ..records import CorruptRecord, iter_record_paths, read_meta

    commands: set[str] = set()
    for folder in result_folders(Path(out)):
        for p in iter_record_paths(folder / "records"):
            try:
                commands.add(str(read_meta(p).get("command") or ""))
            except CorruptRecord:
                continue  # verify_results reports it
    found: dict[Path, None] = {}
    for command in sorted(commands):
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        for word in words:
            name, eq, value = word.removeprefix("--set=").partition("=")
            if name.rsplit(".", 1)[-1] == "checkpoint_dir" and eq:
                for part in value.split(","):
                    if part and Path(part).expanduser().is_dir():
                        found[Path(part).expanduser()] = None
    return list(found)


def verify_checkpoints(folders: Iterable[str | Path]) -> Found:
    """Every checkpoint (``*.pt``) under ``folders``, each file once, checked against its ``.sha256``
    sidecar by :func:`hashbench.cache.verify_entry`: the check :func:`hashbench.methods.loop.load_checkpoint`
    makes before a fit resumes from it."""
    found = Found()
    seen: set[Path] = set()
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob(f"*{CHECKPOINT_SUFFIX}")):
            if p.name.startswith(".") or not p.is_file() or p.resolve() in seen:
                continue
            seen.add(p.resolve())
            _tally(
                found,
                p,
                "checkpoint",
                "the fit that would resume from it deletes it and trains from scratch (or delete it now)",
            )
    return found


def _tally(found: Found, path: Path, kind: str, fix: str) -> None:
    """Check one checksummed file (:func:`~hashbench.cache.verify_entry`) and count it in ``found``:
    fine, unchecked (no checksum beside it), or corrupt with the sentence that says what happens."""
    from ..cache import verify_entry

    try:
        state = verify_entry(path)
    except OSError as exc:
        found.corrupt.append(f"{kind} {path} is unreadable ({exc.strerror or exc})")
        return
    if state == "ok":
        found.ok += 1
    elif state == "unchecked":
        found.unchecked += 1
    else:
        found.corrupt.append(f"{kind} {path} fails its checksum; {fix}")
