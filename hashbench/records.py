"""One record per trained cell of the grid: configuration, split, labels, packed codes, timings.

A record is a single ``.npz`` file written atomically (:mod:`hashbench.io`), so a killed run never
leaves a half record. It holds ``meta`` (JSON: the cell's configuration and key, split sizes,
timings, data-derived parameter values, a collapse diagnosis, versions, the command), the packed
codes of queries and database (:mod:`hashbench.bits` order), the split's index arrays and the
query and database labels. Scores are not part of a record: :mod:`hashbench.run.scoring` computes
them from the stored codes and labels and caches them per metric specification, as
ann-benchmarks does, so a new metric or cut-off needs no retraining.

The record key is a digest of the configuration: dataset content checksum, protocol and split
checksum, representation (with its version) and weights, track, method name, method version and
parameters, code length and seeds. Anything that changes the codes changes the key.
"""

from __future__ import annotations

import io
import json
import platform
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import bits
from .digests import canonical_json, json_digest, update_with_array
from .errors import InvalidInput
from .io import atomic_write_bytes

#: version 2: little-endian packed codes (faiss order), labels stored, scores kept apart.
RECORD_VERSION = 2
#: the member holding the sha256 of every other member (records written before it have none and
#: are read as before: the zip's own CRC is then their only check)
CHECKSUM = "sha256"


def members_digest(members: dict[str, np.ndarray]) -> str:
    """sha256 (64 hex digits) of named arrays: each name, dtype, shape and bytes, in name order."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(members):
        if name == CHECKSUM:
            continue
        h.update(name.encode() + b"\0")
        update_with_array(h, np.asarray(members[name]))
    return h.hexdigest()


def cell_key(config: dict[str, Any]) -> str:
    """The cache key of a cell: a short digest of its canonical JSON configuration."""
    return json_digest(config)


def record_path(records_dir: str | Path, config: dict[str, Any]) -> Path:
    """Where a cell's record lives: ``<method>-<bits>b-s<seed>-<key>.npz``, readable and unique."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(config["method"]))
    return Path(records_dir) / f"{safe}-{config['n_bits']}b-s{config['seed']}-{cell_key(config)}.npz"


def versions(device: str | None = None) -> dict[str, str]:
    """Versions of what produced a number (hashbench, python, numpy, torch, faiss) and the device."""
    from . import __version__

    out = {
        "hashbench": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    for mod in ("torch", "faiss", "sklearn"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional at read time
            out[mod] = "absent"
    if device is not None:
        out["device"] = device
    return out


@dataclass
class Record:
    """A stored cell: ``meta`` plus the codes (bool, unpacked), split indices and labels."""

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def n_bits(self) -> int:
        return int(self.meta["config"]["n_bits"])

    @property
    def query_codes(self) -> np.ndarray:
        return bits.unpack(self.arrays["query_codes"], self.n_bits)

    @property
    def db_codes(self) -> np.ndarray:
        return bits.unpack(self.arrays["db_codes"], self.n_bits)

    @property
    def query_labels(self) -> np.ndarray:
        return self.arrays["query_labels"]

    @property
    def db_labels(self) -> np.ndarray:
        return self.arrays["db_labels"]


def write_record(
    path: str | Path,
    meta: dict[str, Any],
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    split: dict[str, np.ndarray],
    query_labels: np.ndarray,
    db_labels: np.ndarray,
) -> Path:
    """Write a record atomically. Codes are bool (n, n_bits); they are stored bit-packed."""
    meta = {"record_version": RECORD_VERSION, **meta}
    members = {
        "meta": np.array(canonical_json(meta)),
        "query_codes": bits.pack(query_codes),
        "db_codes": bits.pack(db_codes),
        "query_labels": np.asarray(query_labels),
        "db_labels": np.asarray(db_labels),
        **{f"split_{k}": np.asarray(v, dtype=np.int64) for k, v in split.items()},
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, **members, **{CHECKSUM: np.array(members_digest(members))})
    return atomic_write_bytes(path, buf.getvalue())


class CorruptRecord(InvalidInput):
    """A record file that cannot be read, or is not a hashbench record of this version."""


def _check_meta(path: Path, meta: Any) -> dict[str, Any]:
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise CorruptRecord(f"{path} is not a hashbench record (no configuration in its metadata)")
    if meta.get("record_version") != RECORD_VERSION:
        raise CorruptRecord(
            f"{path} is a record of format version {meta.get('record_version')!r}, "
            f"not {RECORD_VERSION}; re-run its cell (hashbench run ... --force) to replace it"
        )
    return meta


def _unreadable(path: Path, exc: BaseException) -> CorruptRecord:
    return CorruptRecord(
        f"record {path} is unreadable ({type(exc).__name__}); delete it or re-run its cell, which replaces it"
    )


def _foreign(path: Path) -> CorruptRecord:
    return CorruptRecord(f"{path} is not a hashbench record (no 'meta' member); move it out of the records folder")


def load_members(path: str | Path) -> dict[str, np.ndarray]:
    """Every member of a record file, its checksum verified when it has one (no pickles)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise _foreign(path)
            members = {k: z[k] for k in z.files}
    except CorruptRecord:
        raise
    except Exception as exc:
        raise _unreadable(path, exc) from None
    stored = members.pop(CHECKSUM, None)
    if stored is not None and str(stored) != members_digest(members):
        raise CorruptRecord(
            f"record {path} fails its checksum (its content changed after it was written); "
            "it is not used: re-run its cell, which replaces it"
        )
    return members


def record_checksum(path: str | Path) -> str | None:
    """The stored checksum of a record (None for a record written before checksums), not verified."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            return str(z[CHECKSUM]) if CHECKSUM in z.files else None
    except Exception as exc:
        raise _unreadable(Path(path), exc) from None


def read_record(path: str | Path) -> Record:
    """Read a record, verifying its checksum; a corrupt or foreign file raises :class:`CorruptRecord` naming it."""
    path = Path(path)
    arrays = load_members(path)
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as exc:
        raise _unreadable(path, exc) from None
    return Record(path=path, meta=_check_meta(path, meta), arrays=arrays)


def verify_record(path: str | Path) -> dict[str, Any]:
    """Read every member of a record and check its checksum; returns its metadata or raises CorruptRecord."""
    return read_record(path).meta


def read_meta(path: str | Path) -> dict[str, Any]:
    """Only the metadata of a record (cheap: the codes are not decompressed, the checksum not verified)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise _foreign(path)
            meta = json.loads(str(z["meta"]))
    except CorruptRecord:
        raise
    except Exception as exc:
        raise _unreadable(path, exc) from None
    return _check_meta(path, meta)


def is_finished(path: str | Path) -> bool:
    """True when ``path`` holds a record whose every member reads back and matches its checksum; a
    corrupt one warns by name and counts as unfinished (its cell runs again and replaces it)."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        verify_record(path)
    except CorruptRecord as exc:
        warnings.warn(f"{exc}; its cell runs again", stacklevel=2)
        return False
    return True


def iter_record_paths(records_dir: str | Path) -> list[Path]:
    """Every record file in a records folder, sorted (temporary files of running writers excluded)."""
    folder = Path(records_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.npz") if not p.name.startswith("."))


def iter_metas(records_dir: str | Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(path, meta) of every readable record; corrupt and foreign files are skipped with a one-line warning."""
    for p in iter_record_paths(records_dir):
        try:
            yield p, read_meta(p)
        except CorruptRecord as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
