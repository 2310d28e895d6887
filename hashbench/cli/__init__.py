"""The ``hashbench`` command: one module per command (or group) parses, the library does the work.

Every error a user can cause is a ``HashbenchError``: printed as one line, exit status 2, no
traceback. ``check`` exits 1 when a MAP fell below its reference.

Layout: :mod:`.common` (the help formatter, the grid's options, a RunConfig from them, what a run
writes), :mod:`.runs` (run), :mod:`.results` (tables, rescore, compare), :mod:`.check`, :mod:`.paper`,
:mod:`.figures` (plot, report), :mod:`.byom` (split, import, evaluate), :mod:`.install` (doctor,
verify, datasets, methods). Modules that train import torch on first use, so listing methods or
printing help stays fast.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .. import __version__
from ..errors import HashbenchError
from ..io import STORAGE_ERRNOS, storage_error
from . import byom, check, figures, install, paper, results, runs
from .common import EPILOG, HelpFormatter, command_line

__all__ = ["EPILOG", "HelpFormatter", "build_parser", "main"]


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as the CLI prints its errors: one line, no source location or code line."""
    return f"hashbench: warning: {message}\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashbench",
        description="Benchmark learning-to-hash methods for image retrieval with exact, reproducible MAP.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"hashbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runs.add_parser(sub)
    results.add_parsers(sub)
    check.add_parser(sub)
    paper.add_parser(sub)
    results.add_compare_parser(sub)
    figures.add_parsers(sub)
    install.add_doctor_parser(sub)
    install.add_verify_parser(sub)
    byom.add_parsers(sub)
    install.add_catalog_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = command_line(argv)
    formatwarning, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        return int(args.func(args, argv) or 0)
    except HashbenchError as exc:
        print(f"hashbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hashbench: interrupted; finished cells are kept, re-run to resume", file=sys.stderr)
        return 130
    except OSError as exc:  # a full or unwritable folder met outside hashbench's own writers (figures)
        if exc.errno in STORAGE_ERRNOS and exc.filename:
            print(f"hashbench: error: {storage_error(exc.filename, exc)}", file=sys.stderr)
            return 2
        raise
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
