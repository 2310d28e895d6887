"""``hashbench paper NAME``: a reproduction's tables and claims beside the published numbers; with
``--run``, its missing cells first (each planned run as a RunConfig through ``run``'s path)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import reproductions
from ..errors import InvalidInput
from ..io import atomic_write_text
from ..results.tables import load_frame, portable
from ..run.scoring import load_scores
from .common import HelpFormatter, command_line, executor, train_stages
from .runs import run_and_show


def add_parser(sub) -> None:
    p = sub.add_parser(
        "paper",
        help="regenerate a paper's tables and claims (e.g. uhga2020) beside the published numbers",
        formatter_class=HelpFormatter,
    )
    p.add_argument("name", nargs="?", default="uhga2020", help="the reproduction (see hashbench.reproductions)")
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote")
    p.add_argument("--dataset", default="cifar10", help="cifar10 or nuswide21")
    p.add_argument("--run", action="store_true", help="run the missing cells (otherwise print their commands)")
    p.add_argument("--seeds", default="0", help="seeds the tables and claims use, e.g. 0,1,2")
    p.add_argument(
        "--features",
        dest="representation",
        help="input of the feature methods (default: the reproduction's, cnn:efficientnet-lite0)",
    )
    p.add_argument("--track", default=None, help="track of the deep methods (default: the reproduction's)")
    p.add_argument("--data-root", help="the dataset's folder, passed to the runs")
    p.add_argument("--threads", type=int, help="passed to the runs")
    p.add_argument("--jobs", type=int, help="passed to the runs")
    p.set_defaults(func=cmd_paper)


def run_planned(run, threads: int | None = None, jobs: int | None = None, bar=None) -> int:
    """Run one :class:`~hashbench.reproductions.base.PlannedRun` as ``hashbench run`` with its
    options would: the same RunConfig (its command line stored in the records), tables and figures.
    ``bar``: the plan's progress bar (the run advances it instead of drawing its own)."""
    from ..device import keep_freed_memory, limit_threads  # torch
    from ..run.runner import RunConfig, parse_params

    limit_threads(threads)
    keep_freed_memory()
    cfg = RunConfig(
        dataset=run.dataset,
        methods=[",".join(run.methods)],
        bits=list(run.bits),
        seeds=list(run.seeds),
        data_root=run.data_root,
        representation=run.representation,
        track=None if run.train_stages is not None else run.track,
        train_stages=None if run.train_stages is None else train_stages(run.train_stages),
        params=parse_params(run.set_items),  # as --set parses it: 0 stays an int
        out=run.out,
        jobs=jobs or 1,
        command=run.command_line(),
    )
    return run_and_show(cfg, executor("local", jobs=jobs or 1), run.command_line(), bar=bar, show=bar is None)


def plan_bar(n_cells: int, n_runs: int):
    """One progress bar over every cell of a ``paper --run`` plan (its ETA covers the whole plan);
    None when there is nothing to run."""
    if n_cells == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=n_cells, unit="cell", desc=f"paper: {n_cells} cells in {n_runs} runs", leave=True)


def run_command_of(argv: list[str]) -> str:
    """The command that runs a reproduction's missing cells: this one with ``--run`` (and a data
    folder), without machine paths (committed outputs name it)."""
    args = [a for a in argv if a != "--run"] + ["--run"]
    if not any(a == "--data-root" or a.startswith("--data-root=") for a in args):
        args += ["--data-root", "DIR"]
    return portable(command_line(args))


def cmd_paper(args, argv) -> int:
    from ..run.plan import dataset_dirname, parse_seeds  # the method registry: scikit-learn

    repro = reproductions.reproduction(args.name)
    seeds = parse_seeds(args.seeds)
    folder = Path(args.out) / dataset_dirname(args.dataset)
    representation = args.representation or repro.default_representation
    track = args.track or repro.default_track

    def frame():
        return load_frame(folder) if (folder / "records").is_dir() else pd.DataFrame()

    extra = [
        *(["--threads", str(args.threads)] if args.threads else []),
        *(["--jobs", str(args.jobs)] if args.jobs else []),
    ]
    runs = repro.runs(
        args.dataset,
        args.out,
        frame=frame(),
        seeds=seeds,
        representation=representation,
        track=track,
        data_root=args.data_root,
        extra=extra,
    )
    if runs and not args.run:
        print("Missing cells; run these (or add --run):\n" + "\n".join(r.command_line() for r in runs))
    if runs and args.run:
        kw = {"representation": representation, "track": track}
        n_cells = sum(len(c["missing_seeds"]) for c in repro.missing_cells(frame(), args.dataset, seeds, **kw))
        print(f"plan: {n_cells} cells in {len(runs)} runs (interrupt at any time: the same command resumes)")
        bar = plan_bar(n_cells, len(runs))
        try:
            for i, run in enumerate(runs, 1):
                message = f"run {i} of {len(runs)}: {run.command_line()}"
                (bar.write if bar is not None else print)(message)
                run_planned(run, threads=args.threads or None, jobs=args.jobs, bar=bar)
        finally:
            if bar is not None:
                bar.close()
    df = frame()
    if df.empty:
        raise InvalidInput(
            f"no records under {folder}; run the commands above (or `hashbench paper {repro.name} "
            f"--dataset {args.dataset} --out {args.out} --run`)"
        )
    files = repro.render_outputs(
        df,
        load_scores,
        args.dataset,
        seeds,
        command=portable(command_line(argv)),  # committed outputs carry no machine path
        representation=representation,
        track=track,
        run_command=run_command_of(list(argv)),
    )
    out = folder / "paper" / repro.name
    if track != repro.default_track:  # another regime's tables go beside the default's, not over them
        out = out / str(track).replace(":", "-")
    for name, text in files.items():
        atomic_write_text(out / name, text)
    print(repro.summary_file(files))
    print(f"wrote {len(files)} files to {out}")
    if "claims.md" in files:
        print(f"tables: {out / 'table*.md'}; claims: {out / 'claims.md'}")
    return 0
