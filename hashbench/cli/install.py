"""``hashbench doctor``, ``verify``, ``datasets`` and ``methods``: what this installation has and holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from ..cache import resolve_cache_dir
from ..datasets import describe_datasets
from ..doctor import collect, render
from ..errors import InvalidInput
from ..results.verify import (
    checkpoint_dirs_of_records,
    result_folders,
    verify_cache,
    verify_checkpoints,
    verify_results,
)
from .common import HelpFormatter


def add_verify_parser(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="check records, cached scores, the cache and checkpoints against their checksums (exit 2 when corrupt)",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote")
    p.add_argument("--cache-dir", help="the cache to check (default $HASHBENCH_CACHE or ~/.cache/hashbench)")
    p.add_argument("--no-cache", action="store_true", help="check the results folder only")
    p.add_argument(
        "--checkpoint-dir",
        action="append",
        metavar="DIR",
        help="another folder of deep methods' checkpoints to check (repeatable); those under --out, the cache "
        "and the checkpoint_dir the records' commands name are checked anyway",
    )
    p.set_defaults(func=cmd_verify)


def add_catalog_parsers(sub) -> None:
    p = sub.add_parser("datasets", help="list datasets and how to get each")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("methods", help="list registered methods")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'ssdh*'")
    p.set_defaults(func=cmd_methods)


def add_doctor_parser(subparsers) -> argparse.ArgumentParser:
    """The ``doctor`` subcommand (``func=cmd_doctor``)."""
    p = subparsers.add_parser(
        "doctor",
        help="report versions, GPUs, the faiss build, weights, cache and extras",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--cache-dir", help="the cache folder to report (default $HASHBENCH_CACHE or ~/.cache/hashbench)")
    p.add_argument(
        "--no-gpu-check",
        action="store_true",
        help="do not run the tiny torch and faiss computations that check the installed builds carry code for the GPU",
    )
    p.set_defaults(func=cmd_doctor)
    return p


def cmd_doctor(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """``hashbench doctor [--json]``: print the report; always exit 0 (it reports, it does not judge)."""
    info = collect(getattr(args, "cache_dir", None), check_gpu=not getattr(args, "no_gpu_check", False))
    print(json.dumps(info, indent=1, default=str) if args.json else render(info))
    return 0


def cmd_verify(args, argv) -> int:
    out = Path(args.out)
    if not out.is_dir():
        raise InvalidInput(f"--out {out} is not a folder; give the folder `hashbench run --out` wrote")
    if not result_folders(out):
        raise InvalidInput(f"no records under {out}; give the folder `hashbench run --out` wrote")
    records, scores = verify_results(out)
    cache_dir = None if args.no_cache else resolve_cache_dir(args.cache_dir)
    cache = verify_cache(cache_dir) if cache_dir is not None else None
    ckpt_dirs = [out, *([cache_dir] if cache_dir is not None else []), *checkpoint_dirs_of_records(out)]
    for d in args.checkpoint_dir or []:
        if not Path(d).is_dir():
            raise InvalidInput(f"--checkpoint-dir {d} is not a folder; give the folder of --set METHOD.checkpoint_dir")
        ckpt_dirs.append(Path(d))
    checkpoints = verify_checkpoints(ckpt_dirs)
    problems = records.corrupt + scores.corrupt + (cache.corrupt if cache else []) + checkpoints.corrupt
    for line in problems:
        print(f"CORRUPT {line}")
    print(records.line(f"records under {out}"))
    print(scores.line(f"cached scores under {out}"))
    if cache is not None:
        print(cache.line(f"cache entries under {cache_dir}"))
    print(checkpoints.line(f"checkpoints under {', '.join(str(d) for d in dict.fromkeys(ckpt_dirs))}"))
    if problems:
        print(
            f"{len(problems)} corrupt artifact(s): none of them is used; `hashbench run` re-runs a corrupt "
            "record's cell, a corrupt cache entry or scores file is recomputed when next needed, and a fit "
            "trains from scratch instead of resuming from a corrupt checkpoint"
        )
        return 2
    print("no corrupt artifact found")
    return 0


def cmd_datasets(args, argv) -> int:
    rows = [{"dataset": k, "what and how to get it": v} for k, v in describe_datasets().items()]
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


def cmd_methods(args, argv) -> int:
    from ..methods import get_method, list_methods, regimes_of  # the registry loads scikit-learn

    rows = []
    for name in list_methods(args.pattern):
        try:
            cls = get_method(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            inp = ", ".join(regimes_of(cls))
        except Exception as exc:  # a broken third-party entry point should not hide the others
            doc, inp = f"(cannot load: {exc})", "?"
        rows.append({"method": name, "trains on": inp, "description": doc})
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0
