"""Gradient attention (baselines/gradient_attention.py) and SSDH+GA (baselines/ssdh_ga.py): preprocessing,
the re-weighted step, the look-ahead meta-gradient."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from hashbench_baselines.gradient_attention import (
    GradientAttention,
    attention_weights,
    functional_step,
    preprocess_gradient,
    reweighted_code_gradients,
)
from hashbench_baselines.ssdh import SSDH, ssdh_loss, ssdh_pair_loss
from hashbench_baselines.ssdh_ga import SSDHGA
from torch import nn


def likelihood_loss(P, S, gamma=0.5):
    """GA's pairwise likelihood loss without positive weighting, for tests."""
    t = gamma * P
    return (torch.nn.functional.softplus(t) - S * t).mean()


def tiny_net(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    layers = [nn.Linear(4, 6), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(6, 3), nn.Tanh()]
    return nn.Sequential(*layers).double()


def batch(seed=1, n=5, m=4):
    g = torch.Generator().manual_seed(seed)
    xa = torch.randn(n, 4, generator=g, dtype=torch.float64)
    xb = torch.randn(m, 4, generator=g, dtype=torch.float64)
    S = (torch.rand(n, m, generator=g) < 0.4).double()
    return xa, xb, S


def neutral_attention(ga):
    """Zero the last layer so both logits are equal and alpha^A = alpha^B = 1/2 exactly."""
    with torch.no_grad():
        last = ga.attention.net[-1]
        last.weight.zero_()
        last.bias.zero_()
    for q in ga.attention.parameters():  # keep phi fixed over the steps of a test
        q.requires_grad_(False)


def test_preprocess_gradient_both_branches():
    # |x| >= e^-10 gives (log(|x| + 1e-6) / 10, sign x); smaller values give (-1, e^10 x).
    x = torch.tensor([1.0, -math.exp(-5), 1e-6, 0.0, -2e-5], dtype=torch.float64)
    got = preprocess_gradient(x, p=10, eps=1e-6)
    expected = torch.tensor(
        [
            [math.log(1 + 1e-6) / 10, 1.0],
            [math.log(math.exp(-5) + 1e-6) / 10, -1.0],
            [-1.0, math.exp(10) * 1e-6],
            [-1.0, 0.0],
            [-1.0, -math.exp(10) * 2e-5],
        ],
        dtype=torch.float64,
    )
    assert got.shape == (5, 2)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    # The switch is at |x| = e^-p: exactly there the log branch applies.
    edge = preprocess_gradient(torch.tensor([math.exp(-10)], dtype=torch.float64))
    assert edge[0, 1] == 1.0


def test_attention_softmax_sums_to_one_and_half_gives_plain_code_gradient():
    torch.manual_seed(0)
    U, V, G = torch.randn(3, 2).tanh(), torch.randn(4, 2).tanh(), torch.randn(3, 4)
    ga_net = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 1))
    a, b = attention_weights(lambda z: ga_net(z).squeeze(-1), U, V, G)
    assert a.shape == (3, 4, 2)
    torch.testing.assert_close(a + b, torch.ones_like(a))
    half = torch.full((3, 4, 2), 0.5)
    dU, dV = reweighted_code_gradients(half, half, G, U, V)
    # With alpha = 1/2 the re-weighted gradients are those of P = U V^T: G V and G^T U.
    torch.testing.assert_close(dU, G @ V)
    torch.testing.assert_close(dV, G.T @ U)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
@pytest.mark.parametrize("same_batch", [False, True])
def test_neutral_attention_equals_plain_gradient_step(opt, same_batch):
    # alpha = 1/2 everywhere is GA's "no attention": three GA steps must equal three ordinary
    # autograd steps of the same optimiser, to float64 round-off.
    def make_opt(net):
        if opt == "sgd":
            return torch.optim.SGD(
                [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.3}],
                lr=0.1,
                momentum=0.9,
                nesterov=True,
                weight_decay=5e-4,
            )
        return torch.optim.Adam(net.parameters(), lr=0.05, eps=1e-3)

    net_ga, net_plain = tiny_net(), tiny_net()
    ga = GradientAttention(net_ga, make_opt(net_ga))
    neutral_attention(ga)
    opt_plain = make_opt(net_plain)
    for s in range(3):
        xa, xb, S = batch(seed=s)
        if same_batch:
            xb, S = None, (torch.rand(5, 5, generator=torch.Generator().manual_seed(s)) < 0.4).double()
        ga.step(xa, xb, S, likelihood_loss)
        U = net_plain(xa)
        V = U if xb is None else net_plain(xb)
        opt_plain.zero_grad()
        likelihood_loss(U @ V.T, S).backward()
        opt_plain.step()
    for q_ga, q_plain in zip(net_ga.parameters(), net_plain.parameters(), strict=True):
        torch.testing.assert_close(q_ga, q_plain, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.5, dampening=0.1),
        lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=1.0, weight_decay=1e-3),
        lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    ],
)
def test_functional_step_replays_the_torch_optimizer(make_opt):
    # The look-ahead theta' must be the step the optimiser really takes, including its state.
    torch.manual_seed(0)
    ps = [
        torch.randn(3, 2, dtype=torch.float64, requires_grad=True),
        torch.randn(4, dtype=torch.float64, requires_grad=True),
    ]
    opt = make_opt(ps)
    for _ in range(3):
        grads = [torch.randn_like(q) for q in ps]
        predicted = functional_step(opt, ps, grads)
        for q, g in zip(ps, grads, strict=True):
            q.grad = g.clone()
        opt.step()
        for q, new in zip(ps, predicted, strict=True):
            torch.testing.assert_close(q.detach(), new.detach(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_lookahead_gradient_matches_finite_differences(opt):
    # dL(theta - step(g~(phi)))/dphi from autograd against central differences on phi (float64).
    net = tiny_net()
    if opt == "sgd":
        optimizer = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9, nesterov=True)
    else:
        optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    torch.manual_seed(3)
    ga = GradientAttention(net, optimizer, hidden=4)
    ga.attention.double()
    xa, xb, S = batch()
    # Give the optimiser some state so the look-ahead replays a non-trivial step.
    ga.step(xa, xb, S, likelihood_loss)
    _, la, _, _ = ga.lookahead(xa, xb, S, likelihood_loss)
    phi = list(ga.attention.parameters())
    grads = torch.autograd.grad(la, phi)
    h = 1e-6
    for q, g in zip(phi, grads, strict=True):
        flat, gflat = q.data.view(-1), g.view(-1)
        for idx in range(min(flat.numel(), 6)):
            orig = flat[idx].item()
            flat[idx] = orig + h
            up = ga.lookahead(xa, xb, S, likelihood_loss)[1].item()
            flat[idx] = orig - h
            down = ga.lookahead(xa, xb, S, likelihood_loss)[1].item()
            flat[idx] = orig
            fd = (up - down) / (2 * h)
            assert abs(fd - gflat[idx].item()) <= 1e-6 * max(1.0, abs(fd)), (q.shape, idx, fd, gflat[idx].item())
    assert any(g.abs().sum() > 0 for g in grads)


def test_lookahead_replays_dropout_masks():
    # With lr = 0, theta' = theta; the look-ahead loss equals the loss only if the same masks are drawn.
    net = tiny_net(dropout=0.5)
    net.train()
    ga = GradientAttention(net, torch.optim.SGD(net.parameters(), lr=0.0))
    xa, xb, S = batch()
    torch.manual_seed(7)
    loss, la, _, _ = ga.lookahead(xa, xb, S, likelihood_loss)
    assert la.item() == pytest.approx(loss.item(), rel=1e-12)
    # ...and the global RNG moved on as if the look-ahead had not drawn anything.
    after = torch.rand(1)
    torch.manual_seed(7)
    net(xa), net(xb)
    assert torch.rand(1).item() == after.item()


def test_adam_meta_gradient_is_finite_with_zero_gradients():
    # A parameter whose gradient is exactly 0 (unused bias here) has Adam second moment 0 on the first
    # step; the derivative of sqrt there must not turn the meta-gradient into NaN.
    net = tiny_net()
    extra = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    net.register_parameter("unused_scale", extra)

    def forward(values, x):
        return torch.func.functional_call(net, values, (x,)) + 0.0 * values["unused_scale"]

    ga = GradientAttention(net, torch.optim.Adam(net.parameters(), lr=0.01), forward=forward)
    ga.attention.double()
    xa, xb, S = batch()
    ga.step(xa, xb, S, likelihood_loss)
    assert all(torch.isfinite(q).all() for q in ga.attention.parameters())
    assert all(torch.isfinite(q).all() for q in net.parameters())


def test_ga_training_is_deterministic_under_a_seed():
    def run():
        net = tiny_net(seed=5, dropout=0.2)
        torch.manual_seed(11)
        ga = GradientAttention(net, torch.optim.Adam(net.parameters(), lr=0.01))
        losses = [ga.step(*batch(seed=s), likelihood_loss).lookahead_loss for s in range(4)]
        return losses, [q.detach().clone() for q in net.parameters()], copy.deepcopy(ga.attention.state_dict())

    l1, p1, a1 = run()
    l2, p2, a2 = run()
    assert l1 == l2
    for x, y in zip(p1, p2, strict=True):
        assert torch.equal(x, y)
    for k in a1:
        assert torch.equal(a1[k], a2[k])


def test_code_loss_term_is_added_unweighted():
    # With alpha = 1/2 and an extra quantisation term, the step equals plain autograd on the sum.
    def quant(U, V):
        return ((U.abs() - 1) ** 2).mean() + ((V.abs() - 1) ** 2).mean()

    net_ga, net_plain = tiny_net(), tiny_net()
    ga = GradientAttention(net_ga, torch.optim.SGD(net_ga.parameters(), lr=0.2), code_loss_fn=quant)
    neutral_attention(ga)
    xa, xb, S = batch()
    out = ga.step(xa, xb, S, likelihood_loss)
    U, V = net_plain(xa), net_plain(xb)
    total = likelihood_loss(U @ V.T, S) + quant(U, V)
    assert out.loss == pytest.approx(total.item(), rel=1e-12)
    total.backward()
    with torch.no_grad():
        for q in net_plain.parameters():
            q -= 0.2 * q.grad
    for q_ga, q_plain in zip(net_ga.parameters(), net_plain.parameters(), strict=True):
        torch.testing.assert_close(q_ga, q_plain, rtol=1e-12, atol=1e-14)


# -- SSDH + GA -----------------------------------------------------------------------------------
def _digits(n=120):
    from sklearn.datasets import load_digits

    X, _ = load_digits(return_X_y=True)
    return (X[:n] / 16.0).astype(np.float32)


SSDH_FAST = {"epochs": 2, "hidden": 16, "batch_size": 16, "device": "cpu"}


def test_ssdh_pair_loss_is_ssdh_loss_of_the_inner_products():
    # SSDH+GA must minimise exactly SSDH's loss, written as a function of P = U V^T.
    torch.manual_seed(0)
    U, V = torch.randn(5, 8).tanh(), torch.randn(7, 8).tanh()
    S = torch.randint(-1, 2, (5, 7), dtype=torch.int8)
    torch.testing.assert_close(ssdh_pair_loss(U @ V.T, S, 8), ssdh_loss(U, S, V))


class _NeutralSSDHGA(SSDHGA):
    def training_state(self, ctx):
        state = super().training_state(ctx)
        neutral_attention(ctx.extra["ga"])
        return state


def test_ssdh_ga_with_neutral_attention_and_one_batch_trains_like_ssdh():
    # alpha = 1/2 with SSDH's own pairing (A x A) is SSDH: same batches, masks and Adam steps.
    X = _digits()
    plain = SSDH(n_bits=8, **SSDH_FAST).fit(X).project(X)
    neutral = _NeutralSSDHGA(n_bits=8, paired_batches=False, **SSDH_FAST).fit(X).project(X)
    np.testing.assert_allclose(neutral, plain, rtol=1e-4, atol=1e-4)


def test_ssdh_ga_fits_and_encodes():
    # (determinism under a seed is checked for every method by tests/test_check_method.py)
    X = _digits()
    a = SSDHGA(n_bits=8, random_state=1, **SSDH_FAST).fit(X[:100])
    codes = a.encode(X[100:])
    assert codes.dtype == bool and codes.shape == (20, 8)
    assert len(a.history_["loss"]) == 2 and all(np.isfinite(a.history_["loss"]))


# ----------------------------------------------------------------------------------------------
# The chunked attention net (the fast path) against the plain eager formulation
# ----------------------------------------------------------------------------------------------
def _codes_and_gradient(n, m, K, seed, scale=1e-3):
    g = torch.Generator().manual_seed(seed)
    U = torch.tanh(torch.randn(n, K, generator=g))
    V = torch.tanh(torch.randn(m, K, generator=g))
    # a spread of magnitudes, so both branches of the preprocessing occur
    G = torch.randn(n, m, generator=g) * scale * torch.exp(4 * torch.randn(n, m, generator=g))
    return U, V, G


@pytest.mark.parametrize("n,m,K", [(5, 4, 3), (24, 24, 16), (33, 17, 40)])
def test_chunked_attention_weights_equal_the_eager_reference(n, m, K):
    from hashbench_baselines.gradient_attention import AttentionNet, attention_weights_reference

    torch.manual_seed(n + K)
    net = AttentionNet().double()  # float64: round-off far below the differences that matter
    U, V, G = (t.double() for t in _codes_and_gradient(n, m, K, seed=K))
    w = torch.randn(n, m, K, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = {}
    for name, fn in [("reference", attention_weights_reference), ("chunked", attention_weights)]:
        a, b = fn(net, U, V, G)
        grads = torch.autograd.grad((a * w).sum() + (b * w**2).sum(), list(net.parameters()))
        out[name] = (a.detach(), b.detach(), grads)
    (a0, b0, g0), (a1, b1, g1) = out["reference"], out["chunked"]
    torch.testing.assert_close(a1, a0, rtol=0, atol=1e-12)
    torch.testing.assert_close(b1, b0, rtol=0, atol=1e-12)
    # the meta-gradients of phi (W1, b1, W2): equal to round-off of their sums; the output bias
    # cancels between the two sides (its true gradient is 0), so only its size is checked
    for x, y in zip(g1[:3], g0[:3], strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-10 * float(y.abs().max()))
    assert float(g1[3].abs()) < 1e-10


@pytest.mark.parametrize("chunk", [1, 7, 2048])
def test_attention_mlp_chunks_give_the_module_values_and_gradients(chunk):
    from hashbench_baselines.gradient_attention import AttentionNet, attention_logits

    torch.manual_seed(0)
    net = AttentionNet(hidden=9).double()
    z = torch.randn(301, 5, dtype=torch.float64)
    g = torch.randn(301, dtype=torch.float64)
    ref = net(z)
    got = attention_logits(net, z, chunk=chunk)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    gr = torch.autograd.grad((ref * g).sum(), list(net.parameters()))
    gg = torch.autograd.grad((got * g).sum(), list(net.parameters()))
    for x, y in zip(gg, gr, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


def test_attention_logits_fall_back_to_other_modules():
    from hashbench_baselines.gradient_attention import attention_logits

    calls = []

    def custom(z):
        calls.append(z.shape)
        return z.sum(-1)

    z = torch.randn(2, 3, 5)
    torch.testing.assert_close(attention_logits(custom, z), z.sum(-1))
    assert calls == [(2, 3, 5)]


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_ga_step_with_chunked_attention_equals_the_reference_step(opt):
    """One full GA iteration (hash-net step and attention step) from the same state: theta and phi
    after the step agree with the eager formulation to float round-off."""
    from hashbench_baselines.gradient_attention import attention_weights_reference

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(12, 20), nn.ReLU(), nn.Linear(20, 16), nn.Tanh()).double()
    g = torch.Generator().manual_seed(5)
    xa = torch.randn(24, 12, generator=g, dtype=torch.float64)
    xb = torch.randn(24, 12, generator=g, dtype=torch.float64)
    S = (torch.rand(24, 24, generator=g) < 0.3).double()
    after = []
    for fn in (attention_weights_reference, attention_weights):
        model = copy.deepcopy(net)
        params = list(model.parameters())
        optimizer = (
            torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True)
            if opt == "sgd"
            else torch.optim.Adam(params, lr=1e-2)
        )
        ga = GradientAttention(model, optimizer, seed=3)
        ga.weights_fn = fn
        for _ in range(2):
            ga.step(xa, xb, S, likelihood_loss)
        state = [q.detach().clone() for q in model.parameters()]
        after.append(state + [q.detach().clone() for q in ga.attention.parameters()])
    assert len(after[0]) == len(after[1]) == 4 + 4
    for x, y in zip(after[1], after[0], strict=True):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)
    # and the steps did move theta (the comparison is not between two untouched copies)
    assert not torch.equal(after[0][0], net[0].weight)
