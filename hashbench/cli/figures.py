"""``hashbench plot`` and ``hashbench report``: figures and the HTML report from the records under
--out (the drawing is :func:`hashbench.figures.plots.plot_dataset`'s, the report
:func:`hashbench.figures.report.build_report`'s)."""

from __future__ import annotations

from ..figures.plots import plot_dataset
from ..figures.report import build_report
from ..results.tables import dataset_folders
from .common import command_line


def add_parsers(sub) -> None:
    p = sub.add_parser("plot", help="draw figures (PNG and SVG) from the records under --out")
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote")
    p.add_argument("--dataset", help="only this dataset's folder (default: every folder with records)")
    p.add_argument(
        "--curves",
        metavar="METHODS",
        help="the methods of the learning-curve figure (validation MAP against epoch and training seconds), "
        "comma-separated, e.g. ssdh,ssdh+ga (default: every deep method whose records hold a curve)",
    )
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "report",
        help="write one self-contained HTML report (DIR/report.html) of the records under --out: tables, "
        "figures, protocol, provenance",
    )
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote; report.html goes there")
    p.add_argument("--dataset", help="only this dataset's folder (default: every folder with records)")
    p.set_defaults(func=cmd_report)


def cmd_plot(args, argv) -> int:
    """Draw every figure of each dataset folder under ``--out`` into ``<folder>/plots/``."""
    curve_methods = [m.strip() for m in args.curves.split(",") if m.strip()] if args.curves else None
    for folder in dataset_folders(args.out, args.dataset):
        paths = plot_dataset(folder, curve_methods=curve_methods)
        if curve_methods and not any(p.stem == "learning_curves" for p in paths):
            print(
                f"{folder}: no learning curves in the records of {', '.join(curve_methods)} (deep methods "
                "record them with --set METHOD.validation_fraction=0.1 or so; curve_every sets how often)"
            )
        print(f"wrote {len(paths)} files to {folder / 'plots'}" if paths else f"{folder}: no records to plot")
    return 0


def cmd_report(args, argv) -> int:
    """Write ``--out``/report.html and print its path."""
    path = build_report(args.out, args.dataset, command=command_line(argv))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, self-contained: open it in any browser)")
    return 0
