"""Bring your own model: the protocol's split exported, codes computed elsewhere imported as records.

``hashbench split`` writes a protocol's frozen split (:func:`protocol_split`, :func:`write_split`) so
that another tool trains on exactly hashbench's training part and encodes exactly its queries and
database. ``hashbench import`` reads the codes that tool produced (:func:`read_codes`), checks them
against the same split and writes an ordinary record (:func:`import_codes`), so ``tables``,
``compare``, ``plot``, ``report`` and ``check`` treat the external model like any shipped method.
The formats are specified in docs/PROTOCOLS.md, section 7.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, check_n_bits

#: version of the split file format (docs/PROTOCOLS.md, section 7)
SPLIT_FORMAT = 1
PARTS = ("query", "train", "database")
#: what an imported record names as its representation and track
EXTERNAL = "external"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]*$")


@dataclass
class ProtocolSplit:
    """A dataset, the protocol drawn on it, the split and its checksum (as records carry it)."""

    dataset: Any
    name: str
    protocol: str
    split_seed: int
    split: dict[str, np.ndarray]
    checksum: str

    def relative_paths(self) -> list[str] | None:
        """Each pool item's file path relative to the data root, where the dataset knows it."""
        paths = self.dataset.extra.get("paths")
        if not paths:
            return None
        root = self.dataset.extra.get("root")
        out = []
        for p in paths:
            path = Path(p)
            if root and path.is_absolute():
                try:
                    path = path.relative_to(Path(root))
                except ValueError:
                    pass
            out.append(path.as_posix())
        return out


def protocol_split(
    dataset: str,
    seed: int = 0,
    *,
    protocol: str | None = None,
    data_root: str | None = None,
    download: bool = False,
) -> ProtocolSplit:
    """The split a run with ``--seeds seed`` (or ``--split-seed seed``) draws on ``dataset``."""
    from ..datasets import load_dataset
    from ..datasets.protocols import GIVEN, get_protocol, given_split, make_split, split_checksum
    from .plan import _seed

    split_seed = _seed(str(seed))
    ds = load_dataset(dataset, data_root=data_root, download=download)
    name = protocol or ds.protocol or (GIVEN if ds.given_split is not None else "generic")
    if name == GIVEN:
        if ds.given_split is None:
            raise InvalidInput(f"protocol 'given' needs a dataset with fixed lists; {dataset} has none")
        split = given_split(ds.given_split, len(ds))
    else:
        get_protocol(name)
        split = make_split(name, ds.labels, split_seed)
    return ProtocolSplit(ds, dataset, name, split_seed, split, split_checksum(split))


def split_meta(ps: ProtocolSplit) -> dict[str, Any]:
    """The split file's metadata: what it is and the checksum records carry."""
    from .plan import dataset_dirname

    return {
        "format": "hashbench-split",
        "format_version": SPLIT_FORMAT,
        "dataset": ps.name,
        "dataset_folder": dataset_dirname(ps.name),
        "dataset_checksum": ps.dataset.checksum or ps.dataset.source,
        "protocol": ps.protocol,
        "split_seed": ps.split_seed,
        "split_checksum": ps.checksum,
        "sizes": {k: int(len(ps.split[k])) for k in PARTS},
        "n_items": len(ps.dataset),
        "labels": "multi-hot" if ps.dataset.labels.ndim == 2 else "class",
    }


def _label_text(label: np.ndarray) -> str:
    label = np.asarray(label)
    if label.ndim == 0:
        return str(int(label))
    return " ".join(str(int(c)) for c in np.flatnonzero(label))


def write_split(ps: ProtocolSplit, out: str | Path) -> Path:
    """Write the split as ``.npz`` or ``.csv`` (by suffix), atomically; docs/PROTOCOLS.md section 7."""
    from ..digests import canonical_json
    from ..io import atomic_write_bytes, atomic_write_text

    out = Path(out)
    meta = split_meta(ps)
    paths = ps.relative_paths()
    suffix = out.suffix.lower()
    if suffix == ".npz":
        members: dict[str, np.ndarray] = {"meta": np.array(canonical_json(meta))}
        for part in PARTS:
            idx = ps.split[part]
            members[part] = idx
            members[f"{part}_labels"] = np.asarray(ps.dataset.labels[idx])
            if paths is not None:
                members[f"{part}_paths"] = np.array([paths[i] for i in idx], dtype=str)
        buf = io.BytesIO()
        np.savez_compressed(buf, **members)
        return atomic_write_bytes(out, buf.getvalue())
    if suffix == ".csv":
        text = io.StringIO()
        for k, v in meta.items():
            text.write(f"# {k}: {json.dumps(v) if isinstance(v, dict) else v}\n")
        w = csv.writer(text, lineterminator="\n")
        w.writerow(["part", "position", "index", "label", "path"])
        for part in PARTS:
            for pos, i in enumerate(ps.split[part]):
                w.writerow([part, pos, int(i), _label_text(ps.dataset.labels[i]), paths[i] if paths else ""])
        return atomic_write_text(out, text.getvalue())
    raise InvalidInput(f"--out {out}: give a file ending in .npz or .csv")


# -- external codes --------------------------------------------------------------------------------
def files_sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _pair(obj: Any, where: str) -> tuple[Any, Any]:
    missing = [k for k in ("query", "database") if k not in obj]
    if missing:
        have = ", ".join(sorted(str(k) for k in obj if not str(k).startswith("__"))) or "none"
        raise InvalidInput(
            f"{where} lacks array(s) {', '.join(missing)} (it holds: {have}); "
            "save the query codes as 'query' and the database codes as 'database'"
        )
    return obj["query"], obj["database"]


def _load_file(path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(query, database, split checksum or None) from an .npz, .pt or .mat file."""
    if not path.is_file():
        raise InvalidInput(f"codes file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                files = {k: z[k] for k in z.files}
        elif suffix in (".pt", ".pth"):
            import torch

            obj = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(obj, dict):
                raise InvalidInput(f"{path} holds a {type(obj).__name__}, not a dict of 'query' and 'database'")
            files = {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in obj.items()}
        elif suffix == ".mat":
            import scipy.io

            try:
                files = scipy.io.loadmat(path)
            except NotImplementedError:
                raise InvalidInput(
                    f"{path} is a MATLAB v7.3 (HDF5) file; save it with save(..., '-v7') or as .npz"
                ) from None
        else:
            raise InvalidInput(f"codes file {path}: give an .npz, .pt or .mat file (or --codes Q.npy --db-codes D.npy)")
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"codes file {path} is unreadable ({type(exc).__name__}: {exc})") from None
    q, db = _pair(files, str(path))
    check = files.get("split_checksum")
    return np.asarray(q), np.asarray(db), None if check is None else str(np.asarray(check).reshape(-1)[0])


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise InvalidInput(f"codes file {path} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InvalidInput(f"{path} is not a readable .npy array ({type(exc).__name__})") from None


def as_bits(codes: np.ndarray, what: str, *, signed: bool = False, packed_bits: int | None = None) -> np.ndarray:
    """Codes as bool (n, B): bool or 0/1 (default), ±1 (``signed``), or faiss-order packed bytes."""
    from .. import bits

    c = np.asarray(codes)
    if c.ndim != 2:
        raise InvalidInput(f"{what} codes must be 2-D (n, bits); got shape {c.shape}")
    if c.shape[0] == 0 or c.shape[1] == 0:
        raise InvalidInput(f"{what} codes are empty (shape {c.shape})")
    if packed_bits is not None:
        if c.dtype != np.uint8:
            raise InvalidInput(f"{what} codes: --packed expects uint8 bytes, got {c.dtype}")
        if c.shape[1] != -(-packed_bits // 8):
            raise InvalidInput(
                f"{what} codes: {c.shape[1]} bytes per code, but --bits {packed_bits} packs into {-(-packed_bits // 8)}"
            )
        return bits.unpack(c, packed_bits)
    if c.dtype == np.bool_:
        if signed:
            raise InvalidInput(f"{what} codes are bool, but --signed expects -1/+1 values; drop --signed")
        return c
    if not np.issubdtype(c.dtype, np.number):
        raise InvalidInput(f"{what} codes have dtype {c.dtype}; give bool, 0/1 or (with --signed) -1/+1 numbers")
    if np.issubdtype(c.dtype, np.floating) and np.isnan(c).any():
        raise InvalidInput(f"{what} codes contain NaN ({int(np.isnan(c).sum())} values); binarise them first")
    allowed = (-1, 1) if signed else (0, 1)
    ok = (c == allowed[0]) | (c == allowed[1])
    if not ok.all():
        bad = c[~ok].reshape(-1)[0].item()
        hint = "" if signed else "; for -1/+1 codes add --signed"
        raise InvalidInput(
            f"{what} codes are not binary: value {bad!r} ({int((~ok).sum())} values outside "
            f"{allowed[0]}/{allowed[1]}){hint}"
        )
    return c == 1


def read_codes(
    codes: str | Path,
    db_codes: str | Path | None = None,
    *,
    signed: bool = False,
    packed_bits: int | None = None,
) -> tuple[np.ndarray, np.ndarray, str | None, list[Path]]:
    """(query bool codes, database bool codes, the file's split checksum or None, the files read)."""
    path = Path(codes)
    if db_codes is not None:
        files = [path, Path(db_codes)]
        q, db, check = _load_npy(files[0]), _load_npy(files[1]), None
    else:
        if path.suffix.lower() == ".npy":
            raise InvalidInput(f"{path} is one array; give the database codes too with --db-codes FILE.npy")
        files = [path]
        q, db, check = _load_file(path)
    if packed_bits is not None:
        packed_bits = check_n_bits(packed_bits)
    qb = as_bits(q, "query", signed=signed, packed_bits=packed_bits)
    dbb = as_bits(db, "database", signed=signed, packed_bits=packed_bits)
    if qb.shape[1] != dbb.shape[1]:
        raise InvalidInput(
            f"query codes have {qb.shape[1]} bits but database codes {dbb.shape[1]}; both must have the same width"
        )
    check_n_bits(qb.shape[1])
    return qb, dbb, check, files


def import_codes(
    ps: ProtocolSplit,
    name: str,
    query: np.ndarray,
    database: np.ndarray,
    out: str | Path,
    *,
    sha256: str,
    files: list[str],
    file_checksum: str | None = None,
    seed: int | None = None,
    command: str = "",
) -> Path:
    """Check external codes against the split and write them as a record under ``out``; returns its path.

    ``query`` and ``database`` are bool (n, B) in the split's order (the ``query`` and ``database``
    index arrays, ascending). Nothing is written when a check fails.
    """
    from .. import records as rec
    from .execute import collapse_diagnosis, label_note
    from .plan import dataset_dirname

    key = str(name).strip().lower()
    if not _NAME.match(key):
        raise InvalidInput(
            f"--name {name!r}: use lower-case letters, digits and _ . + - (starting with a letter or digit)"
        )
    if file_checksum is not None and file_checksum != ps.checksum:
        raise InvalidInput(
            f"the codes file was made for split {file_checksum}, but {ps.name} seed {ps.split_seed} "
            f"(protocol {ps.protocol}) is split {ps.checksum}; encode the split `hashbench split` writes"
        )
    for part, codes in (("query", query), ("database", database)):
        want = len(ps.split[part])
        if len(codes) != want:
            raise InvalidInput(
                f"{len(codes)} {part} codes, but the split of {ps.name} (protocol {ps.protocol}, seed "
                f"{ps.split_seed}) has {want} {part} items; encode them in the order `hashbench split` writes"
            )
    n_bits = int(query.shape[1])
    seed = ps.split_seed if seed is None else int(seed)
    config = {
        "dataset": dataset_dirname(ps.name),
        "dataset_checksum": ps.dataset.checksum or ps.dataset.source,
        "protocol": ps.protocol,
        "split_seed": ps.split_seed,
        "split_checksum": ps.checksum,
        "representation": {"name": EXTERNAL, "version": 1},
        "weights": None,
        "track": EXTERNAL,
        "method": key,
        "method_version": 1,
        "params": {"codes_sha256": sha256},
        "n_bits": n_bits,
        "seed": seed,
    }
    ql, dl = ps.dataset.labels[ps.split["query"]], ps.dataset.labels[ps.split["database"]]
    meta = {
        "config": config,
        "key": rec.cell_key(config),
        "variant": "",
        "resolved_params": {},
        "dataset_source": ps.dataset.source,
        "split_sizes": {k: int(len(v)) for k, v in ps.split.items()},
        "collapse": collapse_diagnosis(database),
        "label_note": label_note(ql, dl),
        "timings": {},
        "bytes_per_code": (n_bits + 7) // 8,
        "provenance": {"source": EXTERNAL, "name": key, "sha256": sha256, "files": files, "n_bits": n_bits},
        "versions": rec.versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "created_ns": time.time_ns(),
        "command": command,
    }
    records_dir = Path(out) / dataset_dirname(ps.name) / "records"
    path = rec.record_path(records_dir, config)
    return rec.write_record(path, meta, query, database, ps.split, ql, dl)
