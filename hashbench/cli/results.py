"""``hashbench tables``, ``rescore`` and ``compare``: work on the records a run left, training nothing."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from ..errors import InvalidInput
from ..io import atomic_write_text
from ..records import CorruptRecord, iter_metas, iter_record_paths
from ..results import markdown, stats
from ..results.ci_output import to_json
from ..results.conventions import CONVENTIONS, convention_scores
from ..results.tables import (
    compare_published,
    dataset_folders,
    default_spec,
    load_frame,
    pivot,
    select,
    to_markdown,
    write_tables,
)
from ..run.scoring import PRECISION_AT, load_scores, metric_spec, score_all, score_record
from .common import HelpFormatter, add_json_arg, command_line, write_outputs


def add_parsers(sub) -> None:
    fmt = HelpFormatter
    p = sub.add_parser("tables", help="rebuild tables from the records under --out", formatter_class=fmt)
    p.add_argument("--out", default="runs", help="the folder `hashbench run --out` wrote")
    p.add_argument("--dataset", help="only this dataset's folder")
    p.add_argument("--recompute", action="store_true", help="recompute every record's scores from its codes first")
    p.add_argument("--no-plots", action="store_true", help="write tables only, no figures")
    _convention_arg(p)
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
    _convention_arg(p)
    p.set_defaults(func=cmd_rescore)


def add_compare_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="paired comparison of two methods or configurations (interval, p-values), "
        "or ours beside published numbers (--published)",
        formatter_class=HelpFormatter,
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
    add_json_arg(p)
    p.set_defaults(func=cmd_compare)


def _convention_arg(p) -> None:
    p.add_argument(
        "--convention",
        choices=[c for c in CONVENTIONS if c != "hashbench"],
        help="also print MAP as another tool computes it from the same codes (docs/METRICS.md, section 8)",
    )


def _show_convention(folder: Path, convention: str | None, topk: int | None = None) -> None:
    """Print the folder's MAP under a peer's convention, saying which (the tables keep hashbench's)."""
    if not convention:
        return
    df, _ = select(load_frame(folder))
    scored = convention_scores(df, convention, topk)
    cut = f"MAP@{topk}" if topk else "MAP"
    print(f"{cut} as {convention} computes it, from the stored codes of {folder}:")
    print(to_markdown(pivot(scored, f"map[{convention}]", ".4f", spread=True)))


def cmd_tables(args, argv) -> int:
    for folder in dataset_folders(Path(args.out), args.dataset):
        if args.recompute:
            for path, meta in iter_metas(folder / "records"):
                score_all([path], default_spec(meta["config"]["protocol"]), force=True)
        if not iter_record_paths(folder / "records"):
            continue
        paths = write_outputs(folder, command_line(argv), plots=not args.no_plots)
        if paths:
            print("wrote " + ", ".join(str(p) for p in paths))
        _show_convention(folder, getattr(args, "convention", None))
    return 0


def cmd_rescore(args, argv) -> int:
    pa = PRECISION_AT
    if args.precision_at:
        try:
            pa = tuple(int(x) for x in args.precision_at.split(",") if x.strip())
        except ValueError:
            raise InvalidInput(f"--precision-at {args.precision_at!r}: give integers, e.g. 100,1000") from None

    for folder in dataset_folders(Path(args.out), args.dataset):
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
                warnings.warn(f"skipping {exc}", stacklevel=1)
                skipped += 1
                continue
            n += 1
        note = f"; skipped {skipped} unreadable record(s) (`hashbench run` re-runs their cells)" if skipped else ""
        print(f"rescored {n} record(s) in {folder}{note}")
        if args.topk is None and not args.precision_at:
            write_tables(folder, command=command_line(argv))
        else:
            df, _ = select(load_frame(folder, spec))
            cut = f"MAP@{spec['topk']}" if spec.get("topk") else "MAP (whole ranking)"
            pat = ",".join(str(n) for n in spec.get("precision_at", ()))
            print(f"{cut} (precision@N for N = {pat}) from the stored codes of {folder}:")
            print(to_markdown(pivot(df, "map", ".4f", spread=True)))
        _show_convention(folder, getattr(args, "convention", None), args.topk)
    return 0


def cmd_compare(args, argv) -> int:
    from ..run.plan import dataset_dirname, parse_bits, parse_seeds  # the method registry: scikit-learn

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
    frame, _ = select(load_frame(folder))
    if args.bits:
        frame = frame[frame["n_bits"].isin(parse_bits(args.bits))]
    seeds = parse_seeds(args.seeds) if args.seeds else None
    t = stats.compare_table(frame, load_scores, args.a, args.b, seeds=seeds, n_boot=args.n_boot, n_perm=args.n_perm)
    text = stats.render_compare_markdown(t, args.a, args.b)
    if getattr(args, "json", False):
        print(to_json(t, a=args.a, b=args.b, dataset=args.dataset))
    else:
        print(text)
    stem = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in f"{args.a}-vs-{args.b}")
    produced = markdown.command("Produced by", command_line(argv))
    atomic_write_text(folder / "compare" / f"{stem}.md", markdown.wrap(f"{text}\n{produced}") + "\n")
    atomic_write_text(folder / "compare" / f"{stem}.csv", t.to_csv(index=False, float_format="%.6f"))
    return 0
