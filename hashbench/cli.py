"""The ``hashbench`` command: run, tables, check, datasets, methods.

Every error a user can cause is a ``HashbenchError``: printed as one line, exit status 2, no
traceback. ``check`` exits 1 when a MAP fell below its reference.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from . import __version__
from .errors import HashbenchError, InvalidInput

EPILOG = "Docs: README.md. Metric conventions: tie-aware MAP unless a table says otherwise."


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in help texts once: not for options without one, nor where the text states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as the CLI prints its errors: one line, no source location or code line."""
    return f"hashbench: warning: {message}\n"


def _add_grid_args(p: argparse.ArgumentParser, need_methods: bool = True) -> None:
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
        type=_train_stages,
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashbench",
        description="Benchmark learning-to-hash methods for image retrieval with exact, reproducible MAP.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"hashbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fmt = HelpFormatter
    p = sub.add_parser("run", help="run methods on a dataset and write tables", epilog=EPILOG, formatter_class=fmt)
    _add_grid_args(p)
    p.add_argument(
        "--json", action="store_true", help="print the results as JSON on stdout (progress and notes go to stderr)"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("tables", help="rebuild tables from the records under --out", formatter_class=fmt)
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote")
    p.add_argument("--dataset", help="only this dataset's folder")
    p.add_argument("--recompute", action="store_true", help="recompute every record's scores from its codes first")
    p.add_argument("--no-plots", action="store_true", help="write tables only, no figures")
    p.set_defaults(func=cmd_tables)

    p = sub.add_parser("rescore", help="recompute scores from the stored codes (no retraining)", formatter_class=fmt)
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote")
    p.add_argument("--dataset", help="only this dataset's folder")
    p.add_argument(
        "--topk",
        type=int,
        help="score MAP@K instead of the protocol's cut-off (tables keep the "
        "protocol's; the scores are cached beside it)",
    )
    p.add_argument("--precision-at", help="the N of precision@N, comma separated (default 100,500,1000,2000,5000)")
    p.set_defaults(func=cmd_rescore)

    p = sub.add_parser("check", help="exit 1 when a MAP falls below a reference (for CI)", formatter_class=fmt)
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
    _add_grid_args(p, need_methods=False)
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML: one test case per cell, failures for drops")
    p.add_argument(
        "--json", action="store_true", help="print the results as JSON on stdout (progress and notes go to stderr)"
    )
    p.set_defaults(func=cmd_check, out="runs/check")

    p = sub.add_parser(
        "paper",
        help="regenerate a paper's tables and claims (e.g. uhga2020) beside the published numbers",
        formatter_class=fmt,
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

    p = sub.add_parser(
        "compare",
        help="paired comparison of two methods or configurations (interval, p-values), "
        "or ours beside published numbers (--published)",
        formatter_class=fmt,
    )
    p.add_argument("a", nargs="?", help="a method or configuration: itq, itq[n_iter=10], ssdh@gist/features")
    p.add_argument("b", nargs="?", help="the other one")
    p.add_argument("--published", help="instead of A B: a CSV with columns method,bits,map[,source]")
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote")
    p.add_argument("--dataset", required=True)
    p.add_argument("--seeds", help="only these seeds (default: every seed both have)")
    p.add_argument("--bits", help="only these code lengths")
    p.add_argument("--n-boot", type=int, default=10000, help="bootstrap resamples for the interval")
    p.add_argument("--n-perm", type=int, default=10000, help="sign flips for the randomisation test")
    p.add_argument(
        "--json", action="store_true", help="print the results as JSON on stdout (progress and notes go to stderr)"
    )
    p.set_defaults(func=cmd_compare)

    from .doctor import add_doctor_parser
    from .plots import add_plot_parser
    from .report import add_report_parser
    from .verify import add_verify_parser

    add_plot_parser(sub)
    add_report_parser(sub)
    add_doctor_parser(sub)
    add_verify_parser(sub, HelpFormatter)

    from .conventions import add_evaluate_parser
    from .export import add_byom_parsers

    add_byom_parsers(sub)
    add_evaluate_parser(sub)

    p = sub.add_parser("datasets", help="list datasets and how to get each")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("methods", help="list registered methods")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'ssdh*'")
    p.set_defaults(func=cmd_methods)
    return parser


def _run_config(args):
    from .device import keep_freed_memory, limit_threads
    from .runner import RunConfig, parse_bits, parse_params, parse_seeds

    limit_threads(getattr(args, "threads", None))
    keep_freed_memory()  # this process trains the cells when --jobs is 1
    methods = args.methods if args.methods is not None else "all"
    return RunConfig(
        dataset=args.dataset,
        methods=[methods],
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


def _executor(args):
    from .runner import get_executor

    return get_executor(args.executor, jobs=args.jobs, address=args.address)


def _command_line(argv) -> str:
    return "hashbench " + shlex.join(argv)


def _write_outputs(folder: Path, argv, plots: bool) -> list[Path]:
    from .tables import write_tables

    paths = write_tables(folder, command=_command_line(argv))
    if not paths:  # no readable record: tables from earlier records must not outlive them
        for name in ("map.csv", "summary.csv", "results.csv", "map.md"):
            if (folder / name).is_file():
                (folder / name).unlink()
                print(f"removed {folder / name}: no readable record is left to support it")
    if plots and paths:
        try:
            from .plots import plot_dataset
        except ImportError:  # pragma: no cover - plots land with their own module
            return paths
        paths += plot_dataset(folder)
    return paths


def _quiet(on: bool):
    """With ``--json``, what a command prints besides its JSON goes to stderr."""
    import contextlib

    return contextlib.redirect_stdout(sys.stderr) if on else contextlib.nullcontext()


def cmd_run(args, argv) -> int:
    from .runner import run_grid
    from .tables import load_frame, pivot, select, to_markdown

    cfg = _run_config(args)
    with _quiet(getattr(args, "json", False)):
        result = run_grid(cfg, executor=_executor(args))
        paths = _write_outputs(result.folder, argv, plots=not args.no_plots)
    ours = set(str(p) for p in result.record_paths)
    df, _ = select(load_frame(result.folder))
    if getattr(args, "json", False):
        from .ci_output import to_json

        cols = ["dataset", "protocol", "method", "variant", "representation", "track", "n_bits", "seed"]
        cols += ["map", "map_index", "map_min", "map_max", "train_s", "collapsed", "record_path"]
        mine = df[df["record_path"].isin(ours)] if not df.empty else df
        print(to_json(mine[[c for c in cols if c in mine]], files=[str(p) for p in paths]))
        result.raise_for_failures()
        return 0
    if not df.empty:
        print(to_markdown(pivot(df[df["record_path"].isin(ours)], "map", ".4f", spread=True)))
    print(
        "wrote " + ", ".join(str(p) for p in paths[:4]) + (f" and {len(paths) - 4} figures" if len(paths) > 4 else "")
    )
    result.raise_for_failures()
    return 0


def _dataset_folders(root: Path, dataset: str | None) -> list[Path]:
    from .tables import dataset_folders  # the one rule, shared with `plot` and `report`

    return dataset_folders(root, dataset)


def cmd_tables(args, argv) -> int:
    from .records import iter_record_paths
    from .scoring import score_all
    from .tables import default_spec

    for folder in _dataset_folders(Path(args.out), args.dataset):
        if args.recompute:
            from .records import iter_metas

            for path, meta in iter_metas(folder / "records"):
                score_all([path], default_spec(meta["config"]["protocol"]), force=True)
        if not iter_record_paths(folder / "records"):
            continue
        paths = _write_outputs(folder, argv, plots=not args.no_plots)
        if paths:
            print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_rescore(args, argv) -> int:
    from .records import iter_metas
    from .scoring import PRECISION_AT, metric_spec, score_record
    from .tables import default_spec, write_tables

    pa = PRECISION_AT
    if args.precision_at:
        try:
            pa = tuple(int(x) for x in args.precision_at.split(",") if x.strip())
        except ValueError:
            raise InvalidInput(f"--precision-at {args.precision_at!r}: give integers, e.g. 100,1000") from None
    from .records import CorruptRecord

    for folder in _dataset_folders(Path(args.out), args.dataset):
        n, skipped = 0, 0
        for path, meta in iter_metas(folder / "records"):
            proto = meta["config"]["protocol"]
            spec = (
                default_spec(proto)
                if args.topk is None and not args.precision_at
                else metric_spec(args.topk if args.topk is not None else default_spec(proto)["topk"], pa)
            )
            try:
                score_record(path, spec, force=True)
            except CorruptRecord as exc:  # one bad record never stops the others
                import warnings

                warnings.warn(f"skipping {exc}", stacklevel=1)
                skipped += 1
                continue
            n += 1
        note = f"; skipped {skipped} unreadable record(s) (`hashbench run` re-runs their cells)" if skipped else ""
        print(f"rescored {n} record(s) in {folder}{note}")
        if args.topk is None and not args.precision_at:
            write_tables(folder, command=_command_line(argv))
        else:
            from .tables import load_frame, pivot, select, to_markdown

            df, _ = select(load_frame(folder, spec))
            cut = f"MAP@{spec['topk']}" if spec.get("topk") else "MAP (whole ranking)"
            pat = ",".join(str(n) for n in spec.get("precision_at", ()))
            print(f"{cut} (precision@N for N = {pat}) from the stored codes of {folder}:")
            print(to_markdown(pivot(df, "map", ".4f", spread=True)))
    return 0


def _cell_text(v) -> str:
    """A CSV cell as text: empty for NaN, ``0`` for a seed pandas read as 0.0."""
    if pd.isna(v):
        return ""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _read_reference(path: str) -> pd.DataFrame:
    try:
        ref = pd.read_csv(path)
    except FileNotFoundError:
        raise InvalidInput(
            f"reference file {path} does not exist; create one with `hashbench check --reference "
            f"{path} --write --dataset digits --methods lsh,itq --bits 16,32,64`"
        ) from None
    except Exception as exc:
        raise InvalidInput(f"reference file {path} is not a readable CSV ({exc})") from None
    missing = {"dataset", "method", "bits", "map"} - set(ref.columns)
    if missing:
        raise InvalidInput(
            f"reference file {path} lacks column(s) {', '.join(sorted(missing))}; expected dataset,method,bits,map"
        )
    if ref.empty:
        raise InvalidInput(f"reference file {path} has no rows")
    for col in ("bits", "map"):
        values = pd.to_numeric(ref[col], errors="coerce")
        bad = ref.index[values.isna()]
        if len(bad):
            raise InvalidInput(f"reference file {path}, row {bad[0] + 2}: {col} {ref[col][bad[0]]!r} is not a number")
        ref[col] = values
    ref["bits"] = ref["bits"].astype(int)
    ref["method"] = ref["method"].astype(str).str.strip().str.lower()
    for col in ("seeds", "protocol", "representation", "track"):
        ref[col] = ref[col].map(_cell_text) if col in ref else ""
    return ref


def _run_frame(cfg):
    """Run a grid and return the frame of exactly its records."""
    from .runner import run_grid
    from .tables import load_frame

    result = run_grid(cfg)
    result.raise_for_failures()
    df = load_frame(result.folder)
    return df[df["record_path"].isin({str(p) for p in result.record_paths})]


def _check_tolerance(value) -> float:
    """``--tolerance``: a finite number >= 0 (NaN would pass every drop, a negative one fail every cell)."""
    import math

    if not (isinstance(value, float) and math.isfinite(value) and value >= 0):
        raise InvalidInput(f"--tolerance {value!r}: give a finite number >= 0, e.g. --tolerance 0.01")
    return value


def cmd_check(args, argv) -> int:
    from .tables import mean_map

    args.tolerance = _check_tolerance(args.tolerance)
    if args.write:
        if not args.dataset:
            raise InvalidInput("check --write needs --dataset (and --methods, --bits) to know what to run")
        if args.params:
            raise InvalidInput("check --write runs default hyperparameters only; a reference cannot store --set values")
        cfg = _run_config(args)
        frame = _run_frame(cfg)
        df = mean_map(frame).rename(columns={"n_bits": "bits"})
        df["dataset"] = cfg.dataset  # the name `check` runs again, not the output folder's
        df["seeds"] = ",".join(map(str, cfg.seeds))
        df["protocol"] = frame["protocol"].iloc[0]
        df["representation"] = cfg.representation or ""
        df["track"] = cfg.track or ""
        from .io import atomic_write_text

        atomic_write_text(
            args.reference,
            df[["dataset", "method", "bits", "map", "seeds", "protocol", "representation", "track"]].to_csv(
                index=False, float_format="%.6f"
            ),
        )
        print(f"wrote reference {args.reference} ({len(df)} rows)")
        return 0

    ref = _read_reference(args.reference)
    rows = []
    group_cols = ["dataset", "seeds", "protocol", "representation", "track"]
    for (dataset, seeds, protocol, representation, track), group in ref.groupby(group_cols, sort=False):
        args.dataset = dataset
        args.methods = ",".join(dict.fromkeys(group["method"]))
        args.bits = ",".join(str(b) for b in sorted(set(group["bits"].astype(int))))
        args.seeds = str(seeds) if str(seeds) else "0"
        args.protocol = protocol or None
        args.representation = representation or None
        args.track = track or None
        from .ci_output import recorded_map
        from .methods import list_methods

        methods = list(dict.fromkeys(group["method"]))
        external = [m for m in methods if m not in set(list_methods("*"))]  # imported codes: read, not run
        got = {}
        if len(external) < len(methods):
            args.methods = ",".join(m for m in methods if m not in external)
            with _quiet(getattr(args, "json", False)):
                frame = mean_map(_run_frame(_run_config(args)))
            got = {(r.method, int(r.n_bits)): r.map for r in frame.itertuples()}
        if external:
            from .plan import parse_seeds

            got.update(recorded_map(args.out, dataset, external, parse_seeds(args.seeds)))
        for r in group.itertuples():
            ours = got.get((r.method, int(r.bits)))
            delta = None if ours is None else ours - float(r.map)
            status = "MISSING" if ours is None else ("DROP" if delta < -args.tolerance else "ok")
            rows.append(
                {
                    "dataset": dataset,
                    "method": r.method,
                    "bits": int(r.bits),
                    "reference": float(r.map),
                    "ours": ours,
                    "delta": delta,
                    "status": status,
                }
            )
    report = pd.DataFrame(rows)
    from .ci_output import to_json, write_junit, write_step_summary

    write_step_summary(report, args.tolerance, args.reference)
    if getattr(args, "junit", None):
        write_junit(args.junit, report, args.tolerance, args.reference)
    drops = report[report["status"] != "ok"]
    if getattr(args, "json", False):
        print(to_json(report, reference=args.reference, tolerance=args.tolerance, passed=not len(drops)))
        return 1 if len(drops) else 0
    print(report.to_markdown(index=False, floatfmt=".4f"))
    if len(drops):
        print(f"\n{len(drops)} of {len(report)} MAP value(s) fell more than {args.tolerance} below {args.reference}")
        return 1
    print(f"\nall {len(report)} MAP values within {args.tolerance} of {args.reference} or above")
    return 0


def cmd_paper(args, argv) -> int:
    from . import reproductions
    from .io import atomic_write_text
    from .plan import dataset_dirname
    from .runner import parse_seeds
    from .scoring import load_scores
    from .tables import load_frame

    repro = reproductions.get(args.name)
    seeds = parse_seeds(args.seeds)
    folder = Path(args.out) / dataset_dirname(args.dataset)
    representation = args.representation or repro.DEFAULT_REPRESENTATION
    track = args.track or repro.DEFAULT_TRACK

    def frame():
        return load_frame(folder) if (folder / "records").is_dir() else pd.DataFrame()

    extra = [
        *(["--threads", str(args.threads)] if args.threads else []),
        *(["--jobs", str(args.jobs)] if args.jobs else []),
    ]
    lines = repro.commands(
        args.dataset,
        args.out,
        frame=frame(),
        seeds=seeds,
        representation=representation,
        track=track,
        data_root=args.data_root,
        extra=extra,
    )
    if lines and not args.run:
        print("Missing cells; run these (or add --run):\n" + "\n".join(lines))
    for line in lines if args.run else []:
        print(f"running: {line}", flush=True)
        rc = main([a for a in shlex.split(line)[1:]])
        if rc:
            return rc
    df = frame()
    if df.empty:
        raise InvalidInput(
            f"no records under {folder}; run the commands above (or `hashbench paper {repro.NAME} "
            f"--dataset {args.dataset} --out {args.out} --run`)"
        )
    files = repro.render_outputs(
        df, load_scores, args.dataset, seeds, command=_command_line(argv), representation=representation, track=track
    )
    out = folder / "paper" / repro.NAME
    if track != repro.DEFAULT_TRACK:  # another regime's tables go beside the default's, not over them
        out = out / str(track).replace(":", "-")
    for name, text in files.items():
        atomic_write_text(out / name, text)
    print(files.get("claims.md", files.get("table4.md", "")))
    print(f"wrote {len(files)} files to {out}")
    return 0


def cmd_compare(args, argv) -> int:
    from .plan import dataset_dirname, parse_bits, parse_seeds
    from .tables import compare_published, load_frame, select

    folder = Path(args.out) / dataset_dirname(args.dataset)
    if not (folder / "records").is_dir():
        raise InvalidInput(f"no records under {folder}; run `hashbench run --dataset {args.dataset} --out {args.out}`")
    if args.published:
        if args.a or args.b:
            raise InvalidInput("give either two methods (compare A B) or --published FILE, not both")
        try:
            published = pd.read_csv(args.published)
        except FileNotFoundError:
            raise InvalidInput(f"published table {args.published} does not exist") from None
        missing = {"method", "bits", "map"} - set(published.columns)
        if missing:
            raise InvalidInput(
                f"{args.published} lacks column(s) {', '.join(sorted(missing))}; expected method,bits,map"
            )
        t = compare_published(select(load_frame(folder))[0], published, args.dataset)
        t = t.dropna(subset=["ours"])
        t["source"] = t["source"].astype(str).str.split(" ").str[0]
        print(t.to_markdown(index=False, floatfmt=".4f"))
        print("\ngap = ours with ties by index (the published code's convention) - published")
        return 0
    if not (args.a and args.b):
        raise InvalidInput(
            "compare needs two methods or configurations, e.g. `hashbench compare itq lsh --dataset "
            "digits`, or --published FILE"
        )
    from . import stats
    from .io import atomic_write_text
    from .scoring import load_scores

    frame, _ = select(load_frame(folder))
    if args.bits:
        frame = frame[frame["n_bits"].isin(parse_bits(args.bits))]
    seeds = parse_seeds(args.seeds) if args.seeds else None
    t = stats.compare_table(frame, load_scores, args.a, args.b, seeds=seeds, n_boot=args.n_boot, n_perm=args.n_perm)
    text = stats.render_compare_markdown(t, args.a, args.b)
    if getattr(args, "json", False):
        from .ci_output import to_json

        print(to_json(t, a=args.a, b=args.b, dataset=args.dataset))
    else:
        print(text)
    stem = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in f"{args.a}-vs-{args.b}")
    atomic_write_text(folder / "compare" / f"{stem}.md", text + f"\nProduced by `{_command_line(argv)}`.\n")
    atomic_write_text(folder / "compare" / f"{stem}.csv", t.to_csv(index=False, float_format="%.6f"))
    return 0


def cmd_datasets(args, argv) -> int:
    from .datasets import describe_datasets

    rows = [{"dataset": k, "what and how to get it": v} for k, v in describe_datasets().items()]
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


def cmd_methods(args, argv) -> int:
    from .methods import get_method, list_methods

    rows = []
    for name in list_methods(args.pattern):
        try:
            cls = get_method(name)
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            inp = "images" if cls().input == "images" else ("features or images" if cls.deep else "features")
        except Exception as exc:  # a broken third-party entry point should not hide the others
            doc, inp = f"(cannot load: {exc})", "?"
        rows.append({"method": name, "input": inp, "description": doc})
    print(pd.DataFrame(rows).to_markdown(index=False))
    return 0


def _train_stages(text: str) -> int | str:
    """``--train-stages`` values: a count >= 0, or ``all``."""
    t = str(text).strip().lower()
    if t == "all":
        return "all"
    if t.isdigit():
        return int(t)
    raise argparse.ArgumentTypeError(f"{text!r}: give a number of stages (0, 1, 2, ...) or 'all'")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command_line = _command_line(argv)
    import warnings

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
        from .io import STORAGE_ERRNOS, storage_error

        if exc.errno in STORAGE_ERRNOS and exc.filename:
            print(f"hashbench: error: {storage_error(exc.filename, exc)}", file=sys.stderr)
            return 2
        raise
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
