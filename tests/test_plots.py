"""Figures: what each one shows is read back from the matplotlib objects, files are deterministic,
and real records from a tiny ``hashbench run`` on digits draw into ``<dataset>/plots/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection

from hashbench.cli import main
from hashbench.figures import plots
from hashbench.methods import get_method, list_methods
from hashbench.results import display


def synthetic_frame(methods=("lsh", "itq"), bits=(16, 32), seeds=(0, 1), dataset="digits"):
    """A frame in the contract's columns plus scores a loader returns (PR curves), made by hand."""
    rows, scores = [], {}
    for mi, m in enumerate(methods):
        for b in bits:
            for s in seeds:
                base = 0.3 + 0.2 * mi + 0.05 * np.log2(b / 16) + 0.02 * s
                path = f"/nowhere/{m}-{b}b-s{s}.npz"
                r = np.arange(b + 1)
                recall = np.minimum(1.0, r / (b / 2))
                precision = np.clip(base + 0.3 * np.exp(-r / 4) - 0.01 * s, 0, 1)
                scores[path] = {"pr": {"radius": r, "precision": precision, "recall": recall}}
                rows.append(
                    {
                        "dataset": dataset,
                        "protocol": dataset,
                        "representation": "pixels",
                        "track": "features",
                        "method": m,
                        "variant": "",
                        "n_bits": b,
                        "seed": s,
                        "split_seed": s,
                        "split_checksum": f"c{s}",
                        "record_path": path,
                        "scores_path": path,
                        "map": base,
                        "map_index": base - 0.01,
                        "map_min": base - 0.05,
                        "map_max": base + 0.03,
                        "p@100": base + 0.2,
                        "p@500": base + 0.1,
                        "p@1000": base,
                        "p@5000": np.nan,
                        "p@r2": base,
                        "metric_topk": np.nan,
                        "n_queries": 100,
                        "train_s": 0.001 * 10 ** (2 * mi) * (1 + s),
                        "query_us_per_query": 10.0 * (mi + 1),
                        "collapsed": False,
                        "collapse_note": "",
                        "command": f"hashbench run --methods {m}",
                        "created": 1,
                    }
                )
    return pd.DataFrame(rows), scores


def test_colour_per_method_is_fixed_and_distinct():
    """A method keeps its colour in every figure and dataset: what its class declares
    (``display_style``; all different for the registered methods), a digest of the name for others
    (the same on every call)."""
    registered = list_methods()
    colours = [plots.method_color(m) for m in registered]
    assert len(set(colours)) == len(colours)
    assert plots.method_color("ITQ") == plots.method_color("itq") == get_method("itq").display_style[0]
    other = plots.method_style("my-new-method")
    assert other == plots.method_style("my-new-method")
    assert other[0] in display.EXTRA_COLOURS


def _legend_clear_of_axes(fig) -> None:
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        if ax.get_visible():
            assert not legend.overlaps(ax.get_window_extent(renderer)), "legend covers an axes"


def test_map_vs_bits_shows_mean_std_and_tie_range():
    """Each line is the mean over seeds with the std as error bars; the tie range is a bar from the
    mean map_min to the mean map_max; the legend (outside the axes) says n when above 1."""
    df, _ = synthetic_frame()
    d = plots.map_vs_bits(df)
    ax = d.figure.axes[0]
    itq = df[(df.method == "itq") & (df.n_bits == 32)]
    mean = itq["map"].mean()
    lines = [ln for ln in ax.get_lines() if ln.get_marker() == plots.method_style("itq")[1]]
    assert lines and np.isclose(lines[0].get_ydata()[1], mean)
    assert np.isclose(lines[0].get_xdata()[1], 32, rtol=0.1)  # nudged a little along x, not moved
    spans = [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    lo, hi = itq["map_min"].mean(), itq["map_max"].mean()
    assert any(np.allclose(sorted(seg[:, 1]), [lo, hi]) for seg in spans), "tie range bar missing"
    std = itq["map"].std(ddof=1)
    assert any(np.allclose(sorted(seg[:, 1]), [mean - std, mean + std]) for seg in spans), "std error bar missing"
    labels = [t.get_text() for t in d.figure.legends[0].get_texts()]
    assert "itq (n=2)" in labels and any("tie range" in t for t in labels)
    assert "protocol digits" in d.figure._suptitle.get_text() and "MAP" in d.figure._suptitle.get_text()
    _legend_clear_of_axes(d.figure)


def test_pr_curves_one_panel_per_length_mean_over_seeds():
    df, scores = synthetic_frame(bits=(16, 32, 64))
    d = plots.pr_curves(df, scores.__getitem__)
    panels = [ax for ax in d.figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["16 bits", "32 bits", "64 bits"]
    rows = df[(df.method == "lsh") & (df.n_bits == 32)]
    want = np.mean([scores[p]["pr"]["precision"] for p in rows["scores_path"]], axis=0)
    curve = next(
        ln for ln in panels[1].get_lines() if ln.get_color() == plots.method_color("lsh") and len(ln.get_ydata()) == 33
    )
    np.testing.assert_allclose(curve.get_ydata(), want)
    _legend_clear_of_axes(d.figure)


def test_precision_at_n_uses_the_columns_that_have_values():
    """p@5000 is NaN (the database is smaller): the x axis stops at 1,000."""
    df, _ = synthetic_frame()
    d = plots.precision_at_n(df)
    ax = d.figure.axes[0]
    assert list(ax.get_xticks()) == [100, 500, 1000]
    itq = df[(df.method == "itq") & (df.n_bits == 16)]
    line = next(ln for ln in ax.get_lines() if ln.get_color() == plots.method_color("itq") and len(ln.get_xdata()) == 3)
    np.testing.assert_allclose(line.get_ydata(), [itq[c].mean() for c in ("p@100", "p@500", "p@1000")])


def test_cost_figures_log_x_at_the_mean_time():
    df, _ = synthetic_frame()
    d = plots.map_vs_cost(df, "cost_train")
    ax = d.figure.axes[0]
    assert ax.get_xscale() == "log"
    itq = df[(df.method == "itq") & (df.n_bits == 16)]
    pts = [ln for ln in ax.get_lines() if ln.get_color() == plots.method_color("itq")]
    assert np.isclose(pts[0].get_xdata()[0], itq["train_s"].mean()) and np.isclose(
        pts[0].get_ydata()[0], itq["map"].mean()
    )
    assert plots.map_vs_cost(df.drop(columns="query_us_per_query"), "cost_query") is None


def test_published_vs_ours_points_and_diagonal():
    t = pd.DataFrame(
        {
            "method": ["ITQ", "ITQ", "SH", "UHGA+GA"],
            "bits": [16, 32, 16, 16],
            "published": [0.30, 0.35, 0.20, 0.50],
            "ours": [0.32, 0.33, np.nan, 0.41],
        }
    )
    d = plots.published_vs_ours(t)
    ax = d.figure.axes[0]
    points = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None"]
    assert sorted((float(p.get_xdata()[0]), float(p.get_ydata()[0])) for p in points) == [
        (0.30, 0.32),
        (0.35, 0.33),
        (0.50, 0.41),
    ]  # SH has no number of ours: left out
    diagonal = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert diagonal and np.allclose(diagonal[0].get_xdata(), diagonal[0].get_ydata())
    assert points[0].get_color() in {plots.method_color("itq"), plots.method_color("uhga+ga")}
    assert plots.published_vs_ours(t.assign(ours=np.nan)) is None


def test_swept_table_is_drawn_against_the_swept_value(tmp_path):
    """Table 2 (a sweep): MAP against the value, ours solid and published dashed, per code length;
    found by the dataset's figures where `hashbench paper` left it."""
    rows = [
        {"table": 2, "method": "UHGA+GA", "param": v, "bits": b, "published": 0.1 + v / 10 + b / 1000,
         "ours": np.nan if (v, b) == (0.9, 32) else 0.2 + v / 10, "ours_std": 0.01, "n_seeds": 2}
        for v in (0.0, 0.5, 0.9) for b in (16, 32)
    ]  # fmt: skip
    t = pd.DataFrame(rows)
    d = plots.published_vs_ours_sweep(t, "Table 2", column="threshold")
    lines = d.figure.axes[0].get_lines()
    solid = [ln for ln in lines if ln.get_linestyle() == "-" and len(ln.get_xdata())]
    dashed = [ln for ln in lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert len(solid) == 2 and len(dashed) == 2
    assert list(solid[0].get_xdata()) == [0.0, 0.5, 0.9] and np.allclose(solid[0].get_ydata(), [0.2, 0.25, 0.29])
    assert list(solid[1].get_xdata()) == [0.0, 0.5]  # the cell not run is left out
    assert np.allclose(dashed[1].get_ydata(), [0.132, 0.182, 0.222])
    assert d.figure.axes[0].get_xlabel() == "threshold"
    assert plots.published_vs_ours_sweep(t.assign(param=np.nan), "x") is None
    folder = tmp_path / "cifar10"
    (folder / "paper" / "uhga2020").mkdir(parents=True)
    t.to_csv(folder / "paper" / "uhga2020" / "table2.csv", index=False)
    (drawn,) = plots._paper_tables(folder)
    assert drawn.name == "published_vs_ours_uhga2020_table2" and "swept value" in drawn.caption
    assert drawn.figure.axes[0].get_xlabel() == "threshold"  # the reproduction names its swept value


def test_plot_dataset_writes_png_and_svg_and_removes_stale_figures(tmp_path):
    df, scores = synthetic_frame()
    stale = tmp_path / "plots" / "pr_128b.png"  # a figure of records that are gone
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    keep = tmp_path / "plots" / "notes.txt"  # not a figure of ours: left alone
    keep.write_text("mine")
    paper = tmp_path / "paper" / "uhga2020" / "table4.csv"  # as `hashbench paper uhga2020` writes it
    paper.parent.mkdir(parents=True)
    paper.write_text("method,bits,published,ours,track\nITQ,16,0.30,0.32,pixels/features\nSH,16,0.20,,\n")
    paths = plots.plot_dataset(tmp_path, df, scores_loader=scores.__getitem__)
    stems = (
        "map_vs_bits",
        "pr_curves",
        "precision_at_n",
        "cost_train",
        "cost_query",
        "published_vs_ours_uhga2020_table4",
    )
    assert sorted(p.name for p in paths) == sorted(f"{n}.{ext}" for n in stems for ext in ("png", "svg"))
    assert not stale.exists() and keep.exists()
    assert (tmp_path / "plots" / "map_vs_bits.png").read_bytes().startswith(b"\x89PNG")
    svg = (tmp_path / "plots" / "map_vs_bits.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<dc:date>" not in svg


def test_drawing_the_same_records_twice_gives_identical_files():
    """Fixed SVG hash salt, no date: a re-run leaves committed figures byte-identical (no git noise)."""
    df, scores = synthetic_frame()
    for draw in (plots.map_vs_bits, lambda f: plots.pr_curves(f, scores.__getitem__)):
        a, b = draw(df).figure, draw(df).figure
        assert plots.figure_bytes(a, "svg") == plots.figure_bytes(b, "svg")
        assert plots.figure_bytes(a, "png") == plots.figure_bytes(b, "png")


@pytest.fixture(scope="module")
def digits_run(digits_lsh_itq_run, tmp_path_factory) -> Path:
    """Real records: 2 methods x 2 code lengths x 2 seeds on the embedded digits (tables, no figures),
    a private copy of the session's run."""
    import shutil

    out = tmp_path_factory.mktemp("plots-digits")
    shutil.copytree(digits_lsh_itq_run, out, dirs_exist_ok=True)
    return out


def test_plot_command_on_real_records(digits_run, capsys):
    """`hashbench plot --out D` draws from records only: the MAP line of itq is the frame's mean."""
    from hashbench.results.tables import load_frame, select

    assert main(["plot", "--out", str(digits_run), "--dataset", "digits"]) == 0
    folder = digits_run / "digits"
    assert (folder / "plots" / "map_vs_bits.svg").is_file() and (folder / "plots" / "pr_curves.png").is_file()
    assert "wrote 10 files" in capsys.readouterr().out
    df, _ = select(load_frame(folder))
    d = plots.map_vs_bits(df)
    line = next(ln for ln in d.figure.axes[0].get_lines() if ln.get_marker() == plots.method_style("itq")[1])
    want = df[df.method == "itq"].groupby("n_bits")["map"].mean().to_numpy()
    np.testing.assert_allclose(line.get_ydata(), want)
    pr = plots.pr_table(df)  # the real scores files: radius 0..B, recall ends at 1
    assert set(pr["n_bits"]) == {16, 32} and all(np.isclose(r["recall"][-1], 1.0) for _, r in pr.iterrows())


def test_plot_command_without_records_names_the_fix(tmp_path, capsys):
    assert main(["plot", "--out", str(tmp_path)]) == 2
    assert "hashbench run --out" in capsys.readouterr().err
    assert main(["plot", "--out", str(tmp_path), "--dataset", "mnist"]) == 2
    assert "no records under" in capsys.readouterr().err


def test_importing_plots_and_report_leaves_matplotlib_unloaded():
    """The CLI imports these modules at its top: `hashbench methods` must not pay for matplotlib."""
    import subprocess
    import sys

    code = "import sys, hashbench.figures.plots, hashbench.figures.report; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
