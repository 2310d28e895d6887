"""Learning curves of deep methods: per-epoch loss and training seconds, validation MAP every
``curve_every`` epochs, in the record, drawn by ``hashbench plot`` (issue 26, point 2).

The curve observes only: a fit with it gives bitwise the codes of a fit without it, and
``curve_every`` names no record or checkpoint.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hashbench_baselines.ssdh import SSDH
from hashbench_baselines.ssdh_ga import SSDHGA
from hashbench_baselines.uhga import UHGA
from hashbench_baselines.usdh import USDH

from hashbench.device import torch_generator
from hashbench.errors import InvalidInput
from hashbench.methods.loop import load_checkpoint, run_isolated, save_checkpoint, split_validation, train_epochs
from hashbench.metrics import evaluate

TINY = {"n_bits": 16, "epochs": 4, "batch_size": 32, "hidden": 32, "validation_fraction": 0.2, "device": "cpu"}


@pytest.fixture(scope="module")
def digits():
    """digits as pixel features in [0, 1] (the pixels representation), 240 items, with labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:240] / 16.0).astype(np.float32), y[:240]


def _val_map_of(method, X, y) -> float:
    """The MAP of the fitted network's codes, validation part against the training part, recomputed
    independently: the split from the seed, the codes from ``encode``."""
    fit, val = split_validation(len(X), method.validation_fraction, torch_generator(method.random_state))
    return float(evaluate(method.encode(X[val]), method.encode(X[fit]), y[val], y[fit], precision_at=())["map"])


@pytest.mark.parametrize("cls", [SSDH, UHGA])
def test_monitoring_leaves_the_codes_bitwise_unchanged(cls, digits):
    X, y = digits
    plain = cls(**TINY, curve_every=0).fit(X)
    watched = cls(**TINY, curve_every=1).fit(X, curve_labels=y)
    assert plain.curve_["val_map"] == [] and len(watched.curve_["val_map"]) == TINY["epochs"]
    np.testing.assert_array_equal(plain.project(X), watched.project(X))  # logits, so codes too
    assert plain.history_["loss"] == watched.history_["loss"]
    assert plain.history_["val_loss"] == watched.history_["val_loss"]
    assert not watched.net_.training


def test_monitoring_leaves_gradient_attention_unchanged(digits):
    # GA draws a second shuffled batch from the fit's generator every step: a monitor that drew from
    # it would shift every later batch.
    X, y = digits
    kw = {**TINY, "epochs": 2}
    plain = SSDHGA(**kw, curve_every=0).fit(X)
    watched = SSDHGA(**kw, curve_every=1).fit(X, curve_labels=y)
    np.testing.assert_array_equal(plain.project(X), watched.project(X))


def test_last_validation_map_is_that_of_the_final_network(digits):
    X, y = digits
    m = SSDH(**{**TINY, "epochs": 5}, curve_every=2).fit(X, curve_labels=y)
    c = m.curve_
    assert c["epochs"] == [1, 2, 3, 4, 5] and len(c["loss"]) == 5 and len(c["seconds"]) == 5
    assert c["val_epochs"] == [2, 4, 5]  # every 2 epochs and after the last
    assert all(b >= a > 0 for a, b in zip(c["seconds"], c["seconds"][1:], strict=False))
    assert (c["n_val"], c["n_fit"]) == (48, 192)
    want = _val_map_of(m, X, y)
    assert 0 < want <= 1
    assert c["final_val_map"] == want  # the network the fit returns (model selection included)
    every = SSDH(**{**TINY, "epochs": 5}, curve_every=1).fit(X, curve_labels=y).curve_
    assert every["final_val_map"] == want  # same codes whatever curve_every
    # the returned weights are those of the best epoch: its recorded MAP is the final one
    assert every["val_map"][every["val_epochs"].index(every["best_epoch"])] == want
    assert every["val_map"][1::2] == c["val_map"][:2]


def test_usdh_passes_curve_labels_through(digits):
    X, y = digits
    m = USDH(**{**TINY, "epochs": 2}, curve_every=1, w_rot=0.0).fit(X, curve_labels=y)
    assert m.curve_["final_val_map"] == _val_map_of(m, X, y)


def test_no_validation_part_or_labels_gives_loss_and_seconds_only(digits):
    X, y = digits
    m = SSDH(**{**TINY, "validation_fraction": 0.0, "epochs": 2}).fit(X, curve_labels=y)
    assert not m.curve_monitored and m.curve_["val_map"] == [] and m.curve_["final_val_map"] is None
    assert len(m.curve_["loss"]) == len(m.curve_["seconds"]) == 2
    m = SSDH(**{**TINY, "epochs": 2}).fit(X)  # monitored by default, but no labels: nothing to score
    assert m.curve_monitored and m.curve_["val_map"] == []
    with pytest.raises(InvalidInput, match="curve_labels"):
        SSDH(**TINY).fit(X, curve_labels=y[:10])
    with pytest.raises(InvalidInput, match="curve_every"):
        SSDH(**TINY, curve_every=-1).fit(X)


def test_curve_every_names_no_record_and_no_checkpoint():
    from hashbench.deep import config_key

    a, b = SSDH(curve_every=0), SSDH(curve_every=7)
    assert a.key_params() == b.key_params() and "curve_every" not in a.key_params()
    x = np.zeros((3, 2), np.float32)
    assert config_key(a.get_params(), x) == config_key(b.get_params(), x)
    for cls in (SSDH, SSDHGA, UHGA, USDH):
        assert cls(curve_every=3).get_params()["curve_every"] == 3


def test_run_isolated_restores_modes_and_random_states():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    net.train()
    net[0].eval()  # a submodule in another mode than its parent (frozen batch norm does this)
    gen = torch_generator(0)
    torch.manual_seed(5)
    np.random.seed(5)
    expected = (torch.rand(2), torch.rand(2, generator=gen), np.random.rand())
    torch.manual_seed(5)
    np.random.seed(5)
    gen = torch_generator(0)

    def greedy():
        assert not net.training and not torch.is_grad_enabled()
        torch.rand(10), torch.rand(10, generator=gen), np.random.rand(3)
        return 0.5

    assert run_isolated(greedy, gen, {"net": net, "opt": object()}) == 0.5
    assert net.training and not net[0].training and net[1].training
    assert torch.equal(torch.rand(2), expected[0]) and torch.equal(torch.rand(2, generator=gen), expected[1])
    assert np.random.rand() == expected[2]


def test_train_epochs_monitor_schedule_and_resume(tmp_path):
    w = torch.nn.Linear(1, 1, bias=False)
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    x = torch.linspace(-1, 1, 16)[:, None]

    def step(idx):
        opt.zero_grad()
        loss = ((w(x[idx]) - 2 * x[idx]) ** 2).mean()
        loss.backward()
        opt.step()
        return float(loss.detach())

    calls = []

    def monitor():
        calls.append(float(w.weight))
        return None if len(calls) == 2 else float(w.weight)

    kw = {"batch_size": 4, "state": {"net": w, "optimizer": opt}, "monitor": monitor, "monitor_every": 3}
    h = train_epochs(step, np.arange(16), epochs=7, generator=torch_generator(0), **kw)
    assert len(calls) == 3 and h.monitor_epochs == [3, 7] and len(h.seconds) == 7  # epoch 6 said None
    # a checkpoint written before seconds existed resumes with the unknown times as NaN
    ckpt = tmp_path / "c.pt"
    kw = {**kw, "monitor": None, "checkpoint_path": ckpt}
    train_epochs(step, np.arange(16), epochs=2, generator=torch_generator(0), **kw)
    payload = load_checkpoint(ckpt)
    for k in ("seconds", "monitor_epochs", "monitor"):
        del payload["history"][k]
    save_checkpoint(ckpt, payload)
    h = train_epochs(step, np.arange(16), epochs=4, generator=torch_generator(0), **kw)
    assert h.resumed_from == 2 and len(h.seconds) == 4 and all(np.isnan(h.seconds))
    with pytest.raises(InvalidInput, match="monitor_every"):
        train_epochs(step, np.arange(16), epochs=1, batch_size=4, generator=torch_generator(0), monitor_every=-1)


# -- records, figures, report ---------------------------------------------------------------------
SSDH_SET = {"validation_fraction": [0.2], "epochs": [3], "curve_every": [1], "hidden": [32], "batch_size": [50]}


@pytest.fixture(scope="module")
def curve_run(tmp_path_factory):
    """A real run on the embedded digits (pixels): ssdh with a learning curve and lsh (none), 16 bits,
    seeds 0 and 1."""
    from hashbench.run.runner import RunConfig, run_grid

    out = tmp_path_factory.mktemp("curves")
    cfg = RunConfig(
        dataset="digits",
        methods=["ssdh", "lsh"],
        bits=[16],
        seeds=[0, 1],
        params={"ssdh": SSDH_SET},
        device="cpu",
        out=str(out),
        progress=False,
    )
    result = run_grid(cfg, log=lambda _: None)
    result.raise_for_failures()
    return out, result, cfg


def test_records_hold_one_curve_per_seed_ending_at_the_final_network(curve_run):
    """The record's last validation MAP is that of the network the cell trained, recomputed here by
    refitting the cell (same kwargs, same training features: the same codes) and scoring its validation
    part independently."""
    from hashbench.methods import get_method
    from hashbench.records import read_record
    from hashbench.run.execute import dataset_of, features_of
    from hashbench.run.runner import context

    _, result, cfg = curve_run
    p = result.plan
    ssdh_tasks = [t for t in p.tasks if t.method == "ssdh"]
    assert len(ssdh_tasks) == 2
    ctx = context(cfg, p.protocol, p.representation, "cpu")
    dataset = dataset_of(ctx)
    X = features_of(ctx, dataset)
    for t in ssdh_tasks:
        r = read_record(t.path)
        curve = r.meta["curve"]
        assert curve["val_epochs"] == [1, 2, 3] and len(curve["seconds"]) == 3
        train = r.arrays["split_train"]
        m = get_method("ssdh")(**t.kwargs).fit(X[train])
        np.testing.assert_array_equal(m.encode(X[r.arrays["split_query"]]), r.query_codes)
        want = _val_map_of(m, X[train], dataset.labels[train])
        assert curve["final_val_map"] == want
        assert curve["val_map"][curve["val_epochs"].index(curve["best_epoch"])] == want
    assert all("curve" not in read_record(t.path).meta for t in p.tasks if t.method == "lsh")


def test_plot_draws_the_mean_curve_over_seeds(curve_run, capsys):
    from hashbench.cli import main
    from hashbench.figures import plots
    from hashbench.results.tables import load_frame, select

    out, _, _ = curve_run
    df, _ = select(load_frame(out / "digits"))
    c = plots.curve_frame(df)
    assert set(c["method"]) == {"ssdh"}
    assert c.groupby("seed").size().to_dict() == {0: 3, 1: 3}  # one curve per seed
    d = plots.learning_curves(df)
    by_epoch, by_time = d.figure.axes[0], d.figure.axes[1]
    (line,) = by_epoch.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(line.get_ydata(), c.groupby("epoch")["val_map"].mean().to_numpy())
    (tline,) = by_time.get_lines()
    np.testing.assert_allclose(tline.get_xdata(), c.groupby("epoch")["seconds"].mean().to_numpy())
    assert plots.learning_curves(df, methods=["lsh"]) is None

    assert main(["plot", "--out", str(out), "--curves", "ssdh"]) == 0
    assert (out / "digits" / "plots" / "learning_curves.png").is_file()
    assert main(["plot", "--out", str(out), "--curves", "lsh"]) == 0
    assert "no learning curves in the records of lsh" in capsys.readouterr().out
    assert not (out / "digits" / "plots" / "learning_curves.png").exists()  # a stale figure goes


def test_report_shows_the_learning_curves(curve_run):
    from hashbench.figures.report import build_report

    out, _, _ = curve_run
    html = build_report(out).read_text()
    assert "digits: learning curves" in html and "validation part of the training set" in html
