"""``hashbench check``: exit 1 when a MAP fell below its reference (the work: :mod:`hashbench.results.reference`)."""

from __future__ import annotations

from ..errors import InvalidInput
from ..results.ci_output import to_json, write_junit, write_step_summary
from .common import HelpFormatter, add_grid_args, add_json_arg, quiet, run_config


def add_parser(sub) -> None:
    p = sub.add_parser(
        "check", help="exit 1 when a MAP falls below a reference (for CI)", formatter_class=HelpFormatter
    )
    p.add_argument(
        "--reference",
        required=True,
        help="CSV with columns dataset,method,bits,map[,seeds,protocol,representation,track]",
    )
    p.add_argument(
        "--tolerance", type=float, default=0.01, help="allowed drop below the reference, a finite number >= 0"
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="run --dataset/--methods/--bits and write their MAP as the reference instead of checking",
    )
    add_grid_args(p, need_methods=False)
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML: one test case per cell, failures for drops")
    add_json_arg(p)
    p.set_defaults(func=cmd_check, out="runs/check")


def cmd_check(args, argv) -> int:
    from ..results import reference  # runs grids: torch

    tolerance = reference.check_tolerance(args.tolerance)
    if args.write:
        if not args.dataset:
            raise InvalidInput("check --write needs --dataset (and --methods, --bits) to know what to run")
        if args.params:
            raise InvalidInput("check --write runs default hyperparameters only; a reference cannot store --set values")
        n = reference.write_reference(args.reference, run_config(args))
        print(f"wrote reference {args.reference} ({n} rows)")
        return 0

    ref = reference.read_reference(args.reference)
    base = run_config(args)
    with quiet(args.json):
        report = reference.check_against_reference(ref, base, tolerance)
    write_step_summary(report, tolerance, args.reference)
    if args.junit:
        write_junit(args.junit, report, tolerance, args.reference)
    drops = report[report["status"] != "ok"]
    if args.json:
        print(to_json(report, reference=args.reference, tolerance=tolerance, passed=not len(drops)))
        return 1 if len(drops) else 0
    print(report.to_markdown(index=False, floatfmt=".4f"))
    if len(drops):
        print(f"\n{len(drops)} of {len(report)} MAP value(s) fell more than {tolerance} below {args.reference}")
        return 1
    print(f"\nall {len(report)} MAP values within {tolerance} of {args.reference} or above")
    return 0
