"""``hashbench split``, ``import`` and ``evaluate``: bring your own model (the work:
:mod:`hashbench.run.export` and :mod:`hashbench.results.conventions`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InvalidInput
from ..results.conventions import CONVENTIONS, evaluate_files
from ..results.tables import default_spec, load_frame, pivot, select, to_markdown, write_tables
from ..run.export import PARTS, ProtocolSplit, files_sha256, import_codes, protocol_split, read_codes, write_split
from ..run.scoring import score_record


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="see `hashbench datasets` (digits, cifar10, imagefolder:DIR, ...)")
    p.add_argument("--data-root", help="folder holding the dataset's files")
    p.add_argument("--download", action="store_true", help="download the dataset where torchvision can")
    p.add_argument("--protocol", help="split protocol (default: the dataset's own)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seed", type=int, help="the seed of `run --seeds` (draws the split; default 0)")
    g.add_argument("--split-seed", type=int, help="the seed of `run --split-seed` (same draw)")


def add_parsers(sub) -> None:
    """``split``, ``import`` and ``evaluate``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser(
        "split",
        help="write a protocol's split (indices, labels, paths, checksum) for training elsewhere",
        formatter_class=fmt,
    )
    _common(p)
    p.add_argument("--out", required=True, help="the file to write: .npz or .csv (docs/PROTOCOLS.md, section 7)")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser(
        "import",
        help="record codes computed elsewhere, so tables, compare, report and check use them",
        formatter_class=fmt,
    )
    _common(p)
    p.add_argument("--name", required=True, help="the name the external model gets in tables (e.g. mynet)")
    p.add_argument(
        "--codes",
        required=True,
        help="an .npz / .pt / .mat with arrays 'query' and 'database' in the split's order, or Q.npy",
    )
    p.add_argument("--db-codes", help="the database codes (.npy) when --codes is the query codes (.npy)")
    p.add_argument("--signed", action="store_true", help="codes are -1/+1 (default: bool or 0/1)")
    p.add_argument("--packed", action="store_true", help="codes are uint8 bytes in faiss's bit order (needs --bits)")
    p.add_argument("--bits", type=int, help="the code length of --packed codes")
    p.add_argument("--out", default="runs", help="records go to OUT/<dataset>/records")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "evaluate",
        help="score codes computed anywhere: every metric, optionally another tool's MAP convention",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--query-codes", required=True, help="(nq, B) bool or 0/1 codes: .npy, .npz, .csv or .txt")
    p.add_argument("--db-codes", required=True, help="(nd, B) codes, the same format")
    p.add_argument("--query-labels", required=True, help="(nq,) class ids or (nq, C) multi-hot")
    p.add_argument("--db-labels", required=True, help="(nd,) class ids or (nd, C) multi-hot")
    p.add_argument("--signed", action="store_true", help="codes are -1/+1")
    p.add_argument("--topk", type=int, help="MAP@K instead of MAP over the whole database")
    p.add_argument("--precision-at", default="100,1000", help="the N of precision@N, comma separated")
    p.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="hashbench",
        help="also report MAP as this tool computes it (docs/METRICS.md, section 8)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_evaluate)


def _split_of(args) -> ProtocolSplit:
    seed = args.split_seed if args.split_seed is not None else (args.seed if args.seed is not None else 0)
    return protocol_split(args.dataset, seed, protocol=args.protocol, data_root=args.data_root, download=args.download)


def cmd_split(args, argv) -> int:
    ps = _split_of(args)
    if Path(args.out).suffix.lower() not in (".npz", ".csv"):
        raise InvalidInput(f"--out {args.out}: give a file ending in .npz or .csv")
    path = write_split(ps, args.out)
    sizes = ", ".join(f"{len(ps.split[k])} {k}" for k in PARTS)
    paths = "with paths" if ps.relative_paths() else "no paths (the dataset has no files)"
    print(
        f"wrote {path}: {ps.name}, protocol {ps.protocol}, split seed {ps.split_seed}, {sizes}, "
        f"{paths}; split checksum {ps.checksum}"
    )
    return 0


def cmd_import(args, argv) -> int:
    if args.packed != (args.bits is not None):
        raise InvalidInput("--packed and --bits go together: packed bytes need the code length, e.g. --bits 64")
    q, db, check, files = read_codes(args.codes, args.db_codes, signed=args.signed, packed_bits=args.bits)
    ps = _split_of(args)
    path = import_codes(
        ps,
        args.name,
        q,
        db,
        args.out,
        sha256=files_sha256(files),
        files=[f.name for f in files],
        file_checksum=check,
        seed=args.seed,
        command=getattr(args, "command_line", ""),
    )
    folder = path.parent.parent
    score_record(path, default_spec(ps.protocol))
    write_tables(folder, command=getattr(args, "command_line", ""))
    df, _ = select(load_frame(folder))
    mine = df[df["method"] == str(args.name).lower()]
    print(to_markdown(pivot(mine, "map", ".4f", spread=True)))
    print(f"wrote {path} ({q.shape[1]} bits, split {ps.checksum}) and the tables in {folder}")
    return 0


def cmd_evaluate(args, argv) -> int:
    scores = evaluate_files(
        args.query_codes,
        args.db_codes,
        args.query_labels,
        args.db_labels,
        signed=args.signed,
        topk=args.topk,
        precision_at=args.precision_at,
        convention=args.convention,
    )
    if args.json:
        print(json.dumps(scores, indent=1, sort_keys=True))
        return 0
    label = f"@{scores['topk']}" if scores.get("topk") else " (whole database)"
    rows = [(k, v) for k, v in scores.items() if isinstance(v, float)]
    width = max(len(k) for k, _ in rows)
    print(f"{scores['n_queries']} queries; MAP{label}; metric version {scores['metric_version']}")
    for k, v in rows:
        print(f"{k:<{width}}  {v:.6f}")
    pr = scores.get("pr", {})
    if pr:
        print("radius  precision  recall")
        for r, p, rc in zip(pr["radius"], pr["precision"], pr["recall"], strict=True):
            print(f"{r:>6}  {p:9.4f}  {rc:6.4f}")
    return 0
