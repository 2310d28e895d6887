"""What several commands share: the help formatter, the grid's options, a RunConfig from them,
the command line as records store it, and the tables and figures a run writes."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

from ..figures.plots import plot_dataset  # matplotlib itself loads on the first figure
from ..results.tables import write_tables

EPILOG = "Docs: README.md. Metric conventions: tie-aware MAP unless a table says otherwise."


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in help texts once: not for options without one, nor where the text states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def train_stages(text: str) -> int | str:
    """``--train-stages`` values: a count >= 0, or ``all``."""
    t = str(text).strip().lower()
    if t == "all":
        return "all"
    if t.isdigit():
        return int(t)
    raise argparse.ArgumentTypeError(f"{text!r}: give a number of stages (0, 1, 2, ...) or 'all'")


def add_grid_args(p: argparse.ArgumentParser, need_methods: bool = True) -> None:
    """The options of ``run`` (and ``check``): what to run, on what, where the results go."""
    p.add_argument(
        "--methods",
        default="all" if not need_methods else None,
        required=need_methods,
        help="'all', a comma list (itq,lsh) or wildcards ('ssdh*'); see `hashbench methods`",
    )
    p.add_argument(
        "--dataset",
        required=need_methods,
        help="see `hashbench datasets` (e.g. digits, cifar10, mnist, nuswide21, features:FILE, imagefolder:DIR)",
    )
    p.add_argument("--data-root", help="folder holding the dataset's files")
    p.add_argument("--download", action="store_true", help="download the dataset where torchvision can")
    p.add_argument("--protocol", help="split protocol (default: the dataset's own; 'generic', 'given')")
    p.add_argument(
        "--features",
        dest="representation",
        help="representation for vector methods: pixels, gist, cnn:efficientnet-lite0, cnn:alexnet, "
        "cnn:vgg16, cnn:timm/NAME (default: pixels for digits/mnist, cnn:efficientnet-lite0 for cifar10)",
    )
    p.add_argument("--weights", help="pretrained backbone weights file (state_dict .pth) for cnn:* and end2end")
    p.add_argument(
        "--track",
        choices=["features", "end2end"],
        help="deep methods: train hash layers on features (fast, CPU) or end to end on images",
    )
    p.add_argument(
        "--train-stages",
        type=train_stages,
        help="deep methods: fine-tune the last K stages of the CNN representation's backbone with the "
        "features track's head (0: the features track; all: the whole backbone); same as --set M.train_stages=K",
    )
    p.add_argument("--bits", default="16,32,64", help="code lengths, comma separated, each in 1..1024")
    p.add_argument(
        "--seeds", default="0", help="seeds, e.g. 0 or 0,1,2 or 0-4; a seed draws the split and initialises the method"
    )
    p.add_argument(
        "--split-seed",
        type=int,
        help="draw every cell's split with this seed, so --seeds varies only the methods' initialisation",
    )
    p.add_argument(
        "--set",
        dest="params",
        action="append",
        default=[],
        metavar="METHOD.PARAM=VALUE",
        help="a method parameter, e.g. --set itq.n_iter=20; a comma list or START:STOP:STEP sweeps "
        "(one table row per value); repeatable",
    )
    p.add_argument("--device", default="auto", help="auto (cuda when torch sees a GPU), cpu or cuda")
    p.add_argument("--out", default="runs", help="output folder: DIR/<dataset>/{map.csv,map.md,results.csv,records/}")
    p.add_argument("--cache-dir", help="feature cache (default $HASHBENCH_CACHE or ~/.cache/hashbench)")
    p.add_argument(
        "--force", action="store_true", help="re-run cells that already have a record, and recompute their features"
    )
    p.add_argument("--refresh-features", action="store_true", help="recompute cached features (implied by --force)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-plots", action="store_true", help="write tables only, no figures")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch, BLAS and the metric kernel (default: all cores); the codes do not depend on it",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="cells run in parallel on this machine (local executor), each with cores/jobs threads",
    )
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="where cells run: this machine, or a Ray cluster (pip install 'hashbench[ray]')",
    )
    p.add_argument("--address", help="Ray cluster address for --executor ray (default: a local Ray instance)")


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json", action="store_true", help="print the results as JSON on stdout (progress and notes go to stderr)"
    )


def run_config(args, methods: str | None = None, **given):
    """The :class:`~hashbench.run.runner.RunConfig` of the grid options in ``args`` (``methods`` and
    ``given`` fields override them: ``check`` runs each reference group). Limits this process's
    threads as ``--threads`` asks."""
    from ..device import keep_freed_memory, limit_threads  # torch: loaded only by commands that train
    from ..run.runner import RunConfig, parse_bits, parse_params, parse_seeds

    limit_threads(getattr(args, "threads", None))
    keep_freed_memory()  # this process trains the cells when --jobs is 1
    fields = dict(
        dataset=args.dataset,
        methods=[methods or (args.methods if args.methods is not None else "all")],
        bits=parse_bits(args.bits),
        seeds=parse_seeds(args.seeds),
        split_seed=args.split_seed,
        data_root=args.data_root,
        download=args.download,
        protocol=args.protocol,
        representation=args.representation,
        weights=args.weights,
        track=args.track,
        train_stages=getattr(args, "train_stages", None),
        params=parse_params(args.params),
        device=args.device,
        out=args.out,
        force=args.force,
        refresh_features=args.refresh_features or args.force,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        jobs=args.jobs,
        command=getattr(args, "command_line", ""),
    )
    fields.update(given)
    return RunConfig(**fields)


def executor(name: str = "local", jobs: int = 1, address: str | None = None):
    from ..run.runner import get_executor  # torch

    return get_executor(name, jobs=jobs, address=address)


def command_line(argv) -> str:
    return "hashbench " + shlex.join(argv)


def write_outputs(folder: Path, command: str, plots: bool) -> list[Path]:
    """A dataset folder's tables (and figures): what ``run`` and ``tables`` write after the records."""
    paths = write_tables(folder, command=command)
    if not paths:  # no readable record: tables from earlier records must not outlive them
        for name in ("map.csv", "summary.csv", "results.csv", "map.md"):
            if (folder / name).is_file():
                (folder / name).unlink()
                print(f"removed {folder / name}: no readable record is left to support it")
    if plots and paths:
        paths += plot_dataset(folder)
    return paths


def quiet(on: bool):
    """With ``--json``, what a command prints besides its JSON goes to stderr."""
    return contextlib.redirect_stdout(sys.stderr) if on else contextlib.nullcontext()
