"""``hashbench run``: run methods on a dataset, write tables and figures, show the MAP table."""

from __future__ import annotations

from ..results.ci_output import to_json
from ..results.tables import load_frame, pivot, select, to_markdown
from .common import (
    EPILOG,
    HelpFormatter,
    add_grid_args,
    add_json_arg,
    command_line,
    executor,
    quiet,
    run_config,
    write_outputs,
)

JSON_COLUMNS = ["dataset", "protocol", "method", "variant", "representation", "track", "n_bits", "seed"]
JSON_COLUMNS += ["map", "map_index", "map_min", "map_max", "train_s", "collapsed", "record_path"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run", help="run methods on a dataset and write tables", epilog=EPILOG, formatter_class=HelpFormatter
    )
    add_grid_args(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_run)


def run_and_show(
    cfg, runner_executor, command: str, plots: bool = True, as_json: bool = False, bar=None, show: bool = True
) -> int:
    """Run ``cfg``'s grid, write its folder's tables (and figures) and print this run's MAP table (or
    JSON); a failed cell raises once the others are written. ``paper --run`` runs its cells this way,
    with one progress ``bar`` over all its runs and without the tables (``show=False``)."""
    from ..run.runner import run_grid  # torch

    with quiet(as_json):
        result = run_grid(cfg, executor=runner_executor, bar=bar)
        paths = write_outputs(result.folder, command, plots=plots)
    ours = set(str(p) for p in result.record_paths)
    df, _ = select(load_frame(result.folder))
    if as_json:
        mine = df[df["record_path"].isin(ours)] if not df.empty else df
        print(to_json(mine[[c for c in JSON_COLUMNS if c in mine]], files=[str(p) for p in paths]))
        result.raise_for_failures()
        return 0
    if not df.empty and show:
        print(to_markdown(pivot(df[df["record_path"].isin(ours)], "map", ".4f", spread=True)))
    print(
        "wrote " + ", ".join(str(p) for p in paths[:4]) + (f" and {len(paths) - 4} figures" if len(paths) > 4 else "")
    )
    result.raise_for_failures()
    return 0


def cmd_run(args, argv) -> int:
    cfg = run_config(args)
    exe = executor(args.executor, jobs=args.jobs, address=args.address)
    return run_and_show(cfg, exe, command_line(argv), plots=not args.no_plots, as_json=args.json)
