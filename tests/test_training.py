"""The deep-learning machinery every deep method shares: devices, seeding (hashbench.device), the epoch loop and
checkpoints (hashbench.methods.loop)."""

import numpy as np
import pytest
import torch

from hashbench.device import resolve_device, seeded, torch_generator
from hashbench.errors import HashbenchError, InvalidInput
from hashbench.methods.loop import index_batches, split_validation, train_epochs


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InvalidInput, match="unknown device"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(InvalidInput, match="no GPU"):
        resolve_device("cuda")


def test_seeded_repeats_and_leaves_global_rng_untouched():
    # Two seeded blocks draw the same numbers; the caller's stream continues as if nothing happened.
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        a = torch.rand(4)
    with seeded(7):
        b = torch.rand(4)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(3), expected_next)
    assert not torch.are_deterministic_algorithms_enabled()


def test_split_validation_is_a_seeded_partition_of_the_training_items():
    tr, va = split_validation(100, 0.2, torch_generator(0))
    assert len(va) == 20 and len(tr) == 80
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(100))
    tr2, va2 = split_validation(100, 0.2, torch_generator(0))
    assert np.array_equal(va, va2)
    tr0, va0 = split_validation(10, 0.0, torch_generator(0))
    assert len(va0) == 0 and np.array_equal(tr0, np.arange(10))
    with pytest.raises(InvalidInput, match="validation_fraction"):
        split_validation(10, 1.0, torch_generator(0))


def test_index_batches_cover_each_item_once():
    items = np.array([3, 5, 7, 9, 11, 13, 15])
    batches = index_batches(items, 3, torch_generator(0))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert sorted(torch.cat(batches).tolist()) == items.tolist()


def _regression(seed=0):
    """A one-weight least-squares problem: w -> 2, so the loss falls and the optimum is known."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 1, generator=g)
    y = 2.0 * x
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def step(idx):
        opt.zero_grad()
        loss = ((net(x[idx]) - y[idx]) ** 2).mean()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return net, opt, step, x, y


def test_train_epochs_records_a_falling_loss_per_epoch():
    net, opt, step, _, _ = _regression()
    hist = train_epochs(
        step, np.arange(40), epochs=5, batch_size=8, generator=torch_generator(0), state={"net": net, "optimizer": opt}
    )
    assert hist.epochs_run == 5 and len(hist.loss) == 5
    assert hist.loss[-1] < hist.loss[0]
    assert net.weight.item() == pytest.approx(2.0, abs=0.05)
    assert not net.training  # left in eval mode, ready to encode


def test_validation_selects_the_best_epoch_and_patience_stops():
    # The validation loss is rigged to be best at epoch 2: the weights of epoch 2 must come back.
    net, opt, step, _, _ = _regression()
    weights, vals = [], iter([3.0, 1.0, 2.0, 2.5, 4.0, 5.0])

    def validate():
        weights.append(net.weight.item())
        return next(vals)

    hist = train_epochs(
        step,
        np.arange(40),
        epochs=6,
        batch_size=8,
        generator=torch_generator(0),
        state={"net": net, "optimizer": opt},
        validate=validate,
        patience=2,
    )
    assert hist.best_epoch == 2
    assert hist.stopped_early and hist.epochs_run == 4
    assert net.weight.item() == weights[1]


def test_a_diverging_loss_is_an_error():
    with pytest.raises(HashbenchError, match="nan"):
        train_epochs(lambda idx: float("nan"), np.arange(4), epochs=1, batch_size=2, generator=torch_generator(0))


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    # Kill the run during epoch 4 (checkpoints each epoch), resume: same weights as never stopping,
    # because the checkpoint restores the shuffling generator along with model and optimiser.
    net, opt, step, _, _ = _regression()
    train_epochs(
        step, np.arange(40), epochs=6, batch_size=8, generator=torch_generator(1), state={"net": net, "optimizer": opt}
    )
    reference = net.weight.item()

    path = tmp_path / "ck.pt"
    net, opt, step, _, _ = _regression()
    calls = {"n": 0}

    def dying_step(idx):
        calls["n"] += 1
        if calls["n"] > 17:  # 5 batches per epoch: dies in epoch 4, after 3 checkpoints
            raise KeyboardInterrupt
        return step(idx)

    with pytest.raises(KeyboardInterrupt):
        train_epochs(
            dying_step,
            np.arange(40),
            epochs=6,
            batch_size=8,
            generator=torch_generator(1),
            state={"net": net, "optimizer": opt},
            checkpoint_path=path,
            checkpoint_key="k",
        )
    assert path.exists() and not list(tmp_path.glob("*.tmp"))

    net, opt, step, _, _ = _regression()
    hist = train_epochs(
        step,
        np.arange(40),
        epochs=6,
        batch_size=8,
        generator=torch_generator(1),
        state={"net": net, "optimizer": opt},
        checkpoint_path=path,
        checkpoint_key="k",
    )
    assert hist.resumed_from == 3 and hist.epochs_run == 6 and len(hist.loss) == 6
    assert net.weight.item() == reference

    # A different configuration key ignores the checkpoint and trains from scratch.
    net, opt, step, _, _ = _regression()
    hist = train_epochs(
        step,
        np.arange(40),
        epochs=1,
        batch_size=8,
        generator=torch_generator(1),
        state={"net": net, "optimizer": opt},
        checkpoint_path=path,
        checkpoint_key="other",
    )
    assert hist.resumed_from == 0
