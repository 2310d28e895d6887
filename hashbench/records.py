"""One record per run (a cell of the grid): configuration, split checksum, packed codes, scores, times.

A record is a single ``.npz`` file written atomically (temporary file in the same folder, then
``os.replace``), so a killed run never leaves a half record. It holds ``meta`` (JSON: the cell's
configuration, split checksum and sizes, scores, timings, versions) and the packed codes of
queries and database plus the split's index arrays, so new metrics can be computed from stored
codes without retraining (as ann-benchmarks does).
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInput
from .io import atomic_write_bytes, atomic_write_text  # noqa: F401

RECORD_VERSION = 1


def cell_key(config: dict[str, Any]) -> str:
    """The cache key of a cell: a short hash of its canonical JSON configuration."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def record_path(records_dir: str | Path, config: dict[str, Any]) -> Path:
    """Where a cell's record lives: ``<method>-<bits>b-s<seed>-<key>.npz``, readable and unique."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(config["method"]))
    return Path(records_dir) / f"{safe}-{config['n_bits']}b-s{config['seed']}-{cell_key(config)}.npz"


def versions(device: str | None = None) -> dict[str, str]:
    """Versions of what produced a number (hashbench, python, numpy, torch, faiss) and the device."""
    from . import __version__

    out = {"hashbench": __version__, "python": platform.python_version(), "numpy": np.__version__,
           "machine": platform.machine()}
    for mod in ("torch", "faiss", "sklearn"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - optional at read time
            out[mod] = "absent"
    if device is not None:
        out["device"] = device
    return out


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


@dataclass
class Record:
    """A stored run: ``meta`` plus the codes (bool, unpacked) and split indices."""

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def query_codes(self) -> np.ndarray:
        return np.unpackbits(self.arrays["query_codes"], axis=1, count=self.meta["config"]["n_bits"]).astype(bool)

    @property
    def db_codes(self) -> np.ndarray:
        return np.unpackbits(self.arrays["db_codes"], axis=1, count=self.meta["config"]["n_bits"]).astype(bool)


def write_record(path: str | Path, meta: dict[str, Any], query_codes: np.ndarray, db_codes: np.ndarray,
                 split: dict[str, np.ndarray]) -> Path:
    """Write a record atomically. Codes are bool (n, n_bits); they are stored bit-packed."""
    meta = {"record_version": RECORD_VERSION, **meta}
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        meta=np.array(json.dumps(meta, default=_json_default, sort_keys=True)),
        query_codes=np.packbits(np.asarray(query_codes, dtype=bool), axis=1),
        db_codes=np.packbits(np.asarray(db_codes, dtype=bool), axis=1),
        **{f"split_{k}": np.asarray(v, dtype=np.int64) for k, v in split.items()},
    )
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def read_record(path: str | Path) -> Record:
    """Read a record; a corrupt file raises InvalidInput naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except Exception as exc:
        raise InvalidInput(f"record {path} is unreadable ({exc}); delete it and re-run with --force") from None
    return Record(path=path, meta=meta, arrays=arrays)


def read_meta(path: str | Path) -> dict[str, Any]:
    """Only the metadata of a record (cheap: the codes are not decompressed)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except Exception as exc:
        raise InvalidInput(f"record {path} is unreadable ({exc}); delete it and re-run with --force") from None


def iter_record_paths(root: str | Path) -> list[Path]:
    """Every record file below a folder, sorted."""
    return sorted(p for p in Path(root).rglob("*.npz") if not p.name.startswith("."))
