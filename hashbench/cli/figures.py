"""``hashbench report`` (and ``plot``, whose parser :mod:`hashbench.plots` still defines while its
learning-curve options are in progress): the HTML report from the records under --out."""

from __future__ import annotations

from ..plots import add_plot_parser
from ..report import build_report
from .common import command_line


def add_parsers(sub) -> None:
    add_plot_parser(sub)

    p = sub.add_parser(
        "report",
        help="write one self-contained HTML report (DIR/report.html) of the records under --out: tables, "
        "figures, protocol, provenance",
    )
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote; report.html goes there")
    p.add_argument("--dataset", help="only this dataset's folder (default: every folder with records)")
    p.set_defaults(func=cmd_report)


def cmd_report(args, argv) -> int:
    """Write ``--out``/report.html and print its path."""
    path = build_report(args.out, args.dataset, command=command_line(argv))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained: open it in any browser)")
    return 0
