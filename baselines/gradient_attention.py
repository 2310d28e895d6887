"""GA: gradient attention for deep hashing (Huang, Chen, Pan, "Accelerate Learning of Deep Hashing with
Gradient Attention", ICCV 2019), as a reusable training technique.

The technique, not a method: :class:`GradientAttention` (one GA iteration), its pure pieces
(gradient preprocessing, the attention net, attention weights, re-weighted code gradients, the
differentiable optimiser step :func:`functional_step`) and :class:`AttentionTrained`, the mixin
that adds GA to a :class:`hashbench.deep.DeepHashMethod`. The methods that use it live beside their
base methods: ``ssdh+ga`` in :mod:`hashbench_baselines.ssdh_ga`, ``uhga+ga`` in
:mod:`hashbench_baselines.uhga`.

GA applies to any deep hashing method whose loss is a pairwise function of continuous codes through
their inner products P = U V^T (U: codes of batch A, V: codes of batch B). Reconstructed from the
authors' code (Long-Kai/GradAttnHash@50e4451, docs/METHODS.md section 9); paper equation numbers are
unknown. One iteration:

1. forward both batches through the hash net theta, P = U V^T, loss L = loss_fn(P, S);
2. G = dL/dP; per pair (i, j) and bit k the code gradients g^A_ijk = G_ij v_jk, g^B_ijk = G_ij u_ik
   and their batch totals gbar^A_ik = sum_j g^A_ijk, gbar^B_jk = sum_i g^B_ijk;
3. the attention net phi (Linear(5,100) -> ReLU -> Linear(100,1)) scores z^A = [u_ik, pre(g^A_ijk),
   pre(gbar^A_ik)] and z^B = [v_jk, pre(g^B_ijk), pre(gbar^B_jk)]; a softmax over the two logits gives
   alpha^A + alpha^B = 1 (pre: Andrychowicz et al. 2016 gradient preprocessing);
4. re-weighted code gradients dL~/du_ik = sum_j 2 alpha^A_ijk G_ij v_jk and
   dL~/dv_jk = sum_i 2 alpha^B_ijk G_ij u_ik (alpha = 1/2 gives the plain gradient); back-propagated
   to theta with the graph kept, g~(phi);
5. look-ahead theta' = step(theta, g~(phi)), a differentiable function of phi; the attention net is
   updated by Adam on dL(theta')/dphi, L(theta') computed on the same batches with the same dropout
   masks; theta takes the step theta' (the real update).

Choices and departures from the reference code:

- **The look-ahead step is the base method's own optimiser step, written functionally.** The
  reference steps theta with Nesterov SGD (momentum 0.9, weight decay 5e-4, x10 lr on the hash
  layer) and the look-ahead is that same step. Here :func:`functional_step` replays one step of the
  torch optimiser the base method uses (``SGD`` with momentum/Nesterov/weight decay/dampening,
  ``Adam``, ``AdamW``; per-parameter-group learning rates, so lr multipliers work), reading its
  state without changing it. The real update then calls ``optimizer.step()`` with
  ``p.grad = g~`` (detached); it equals theta' to float round-off (tested), so the attention net is
  trained on exactly the step that is taken, as in the reference, whatever optimiser the base
  method uses. With SSDH's Adam this means the attention net learns through Adam's normalisation
  (sqrt of the second moment); the derivative of sqrt at 0 is guarded for parameters whose
  gradient is exactly zero.
- **Same dropout masks**: the reference stores dropout masks (``MyDropout``). Here the RNG state
  (CPU and the model's CUDA device) is captured before the first forward and replayed for the
  look-ahead forward inside ``torch.random.fork_rng``, so any dropout draws the same masks as long
  as the forward draws random numbers in the same order; the global RNG continues as if the
  look-ahead had not run.
- **Batches**: like the reference, a step takes two batches A and B (the caller draws two
  independently shuffled batches and gives S_AB, the similarity block between them). ``x_b=None``
  uses A with itself (P = U U^T, one forward); then U plays both roles and its gradient is the sum
  of both re-weighted sides.
- **Losses beyond P**: ``loss_fn(P, S)`` carries the pairwise part, whose code gradients are
  re-weighted. An optional ``code_loss_fn(U, V)`` (e.g. a quantisation term) is added to the loss;
  its gradient reaches theta unweighted and it is part of the look-ahead loss.
- The inputs of the attention net (codes, G) are detached: the meta-gradient is taken with respect
  to phi only, for which they are constants, so this is exact (the reference also feeds data).
- The reference's unused ``weight_loss`` and its first-step momentum quirk are not reproduced; its
  fixed initial weights (``saved_model/init``) are replaced by seeded default initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from hashbench.deep import FitContext
from hashbench.methods import Interval

PairwiseLoss = Callable[[Tensor, Tensor], Tensor]
CodeLoss = Callable[[Tensor, Tensor], Tensor]


# ----------------------------------------------------------------------------------------------
# Pure pieces
# ----------------------------------------------------------------------------------------------
def preprocess_gradient(x: Tensor, p: float = 10.0, eps: float = 1e-6) -> Tensor:
    """Andrychowicz et al. (NIPS 2016, appendix A) gradient preprocessing; output shape ``(*x.shape, 2)``.

    pre(x) = (log(|x| + eps) / p, sign(x)) if |x| >= e^{-p}, else (-1, e^{p} x). The first
    coordinate carries the magnitude on a log scale, the second the sign; tiny values switch to a
    linear branch so both stay bounded. ``eps`` (1e-6 as in the GA reference) keeps log finite.
    """
    big = x.abs() >= math.exp(-p)
    # log is evaluated on both branches by torch.where; abs + eps keeps it finite and its gradient too.
    first = torch.where(big, torch.log(x.abs() + eps) / p, torch.full_like(x, -1.0))
    second = torch.where(big, torch.sign(x), x * math.exp(p))
    return torch.stack([first, second], dim=-1)


class AttentionNet(nn.Module):
    """GA's attention MLP phi: Linear(5, hidden) -> ReLU -> Linear(hidden, 1), applied to the last axis."""

    def __init__(self, hidden: int = 100):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).squeeze(-1)


class _AttentionMLP(torch.autograd.Function):
    """phi's logits relu(z W1^T + b1) W2^T + b2 for rows z (N, 5), in cache-sized row chunks.

    The same values as ``AttentionNet.net(z)`` (each row's two small products are the same
    arithmetic; only the order of the sums over rows in the weight gradients differs, at float
    round-off). What it saves is memory traffic: eager autograd writes, re-reads and keeps the
    (N, hidden) activation (N = 2 n m K: 420 MB at batch 128 and 64 bits), here each chunk's activation
    stays in cache and is recomputed in backward rather than stored. ``z`` needs no gradient (GA's
    attention inputs are constants for the meta-gradient); backward is first order, which is all the
    look-ahead meta-gradient takes.
    """

    @staticmethod
    def forward(ctx, z: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor, chunk: int) -> Tensor:  # type: ignore[override]
        out = torch.empty(z.shape[0], dtype=z.dtype, device=z.device)
        W1t, W2t = W1.t(), W2.t()
        for s in range(0, z.shape[0], chunk):
            h = torch.addmm(b1, z[s : s + chunk], W1t).relu_()
            out[s : s + chunk] = torch.addmm(b2, h, W2t).squeeze(1)
        ctx.save_for_backward(z, W1, b1, W2)
        ctx.chunk = chunk
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        z, W1, b1, W2 = ctx.saved_tensors
        chunk = ctx.chunk
        # With a = z W1^T + b1, h = relu(a), M = [a > 0] and g the logits' gradient:
        # dW2 = g^T h, and dA = M * (g w2^T) gives dW1 = dA^T z = w2 * (M^T (g z)), db1 = w2 * (M^T g),
        # so one product [g z, g]^T M (6 x hidden) replaces forming dA (chunk x hidden).
        dW2 = torch.zeros_like(W2)
        YtM = torch.zeros((z.shape[1] + 1, W1.shape[0]), dtype=z.dtype, device=z.device)
        W1t = W1.t()
        for s in range(0, z.shape[0], chunk):
            zc, gc = z[s : s + chunk], grad[s : s + chunk]
            h = torch.addmm(b1, zc, W1t).relu_()
            dW2.addmm_(gc[None, :], h)
            Y = torch.cat([zc * gc[:, None], gc[:, None]], dim=1)
            YtM.addmm_(Y.t(), h.sign_())
        w2 = W2.squeeze(0)
        dW1 = (w2[None, :] * YtM[:-1]).t().contiguous()
        db1 = w2 * YtM[-1]
        return None, dW1, db1, dW2, grad.sum().reshape(1), None


#: rows of z per chunk of :class:`_AttentionMLP` (x hidden 100 x 4 bytes = 0.8 MB of activation; the
#: fastest of 1024-8192 measured on a 2-core x86 CPU)
ATTENTION_CHUNK = 2048


def attention_logits(attention: nn.Module, z: Tensor, chunk: int = ATTENTION_CHUNK) -> Tensor:
    """``attention(z)`` for rows z (..., 5); for an :class:`AttentionNet` through the chunked
    :class:`_AttentionMLP` (same values, a fraction of the memory traffic), else the module itself."""
    if not isinstance(attention, AttentionNet) or z.requires_grad:
        return attention(z)
    first, _, second = attention.net
    flat = z.reshape(-1, z.shape[-1])
    out = _AttentionMLP.apply(flat, first.weight, first.bias, second.weight, second.bias, int(chunk))
    return out.reshape(z.shape[:-1])


def attention_inputs(U: Tensor, V: Tensor, G: Tensor, *, p: float = 10.0, eps: float = 1e-6) -> Tensor:
    """GA's attention inputs z (2, n, m, K, 5): side A's z^A_ijk = [u_ik, pre(G_ij v_jk), pre(sum_j G_ij
    v_jk)] at [0], side B's z^B_ijk = [v_jk, pre(G_ij u_ik), pre(sum_i G_ij u_ik)] at [1].

    Written into one buffer (no concatenation copies); the batch totals are preprocessed once per
    (i, k) / (j, k) and broadcast, which gives the same values as preprocessing the expanded tensor.
    """
    n, K = U.shape
    m = V.shape[0]
    gA = G[:, :, None] * V[None, :, :]  # (n, m, K)
    gB = G[:, :, None] * U[:, None, :]
    z = torch.empty((2, n, m, K, 5), dtype=U.dtype, device=U.device)
    z[0, ..., 0] = U[:, None, :]
    z[0, ..., 1:3] = preprocess_gradient(gA, p, eps)
    z[0, ..., 3:5] = preprocess_gradient(gA.sum(dim=1, keepdim=True), p, eps)
    z[1, ..., 0] = V[None, :, :]
    z[1, ..., 1:3] = preprocess_gradient(gB, p, eps)
    z[1, ..., 3:5] = preprocess_gradient(gB.sum(dim=0, keepdim=True), p, eps)
    return z


def attention_weights(
    attention: nn.Module, U: Tensor, V: Tensor, G: Tensor, *, p: float = 10.0, eps: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """alpha^A, alpha^B (n, m, K) for codes U (n, K), V (m, K) and G = dL/dP (n, m).

    z^A_ijk = [u_ik, pre(G_ij v_jk), pre(sum_j G_ij v_jk)], z^B_ijk = [v_jk, pre(G_ij u_ik),
    pre(sum_i G_ij u_ik)] (:func:`attention_inputs`); the two logits go through a softmax so
    alpha^A + alpha^B = 1 (to round-off). Equal to :func:`attention_weights_reference` (the plain eager
    formulation, kept for tests and ``python -m benchmarks.ga``) to float round-off.
    """
    logits = attention_logits(attention, attention_inputs(U, V, G, p=p, eps=eps))
    # the softmax of two logits is the sigmoid of their difference (torch's softmax over a last axis
    # of length 2 is several times slower)
    diff = logits[0] - logits[1]
    return torch.sigmoid(diff), torch.sigmoid(-diff)


def attention_weights_reference(
    attention: nn.Module, U: Tensor, V: Tensor, G: Tensor, *, p: float = 10.0, eps: float = 1e-6
) -> tuple[Tensor, Tensor]:
    """:func:`attention_weights` as first written: expanded inputs concatenated, the module applied
    to each side with eager autograd (stores the (n, m, K, hidden) activations)."""
    n, K = U.shape
    m = V.shape[0]
    gA = G[:, :, None] * V[None, :, :]  # (n, m, K)
    gB = G[:, :, None] * U[:, None, :]
    gbarA = gA.sum(dim=1, keepdim=True).expand(n, m, K)
    gbarB = gB.sum(dim=0, keepdim=True).expand(n, m, K)
    zA = torch.cat(
        [U[:, None, :].expand(n, m, K)[..., None], preprocess_gradient(gA, p, eps), preprocess_gradient(gbarA, p, eps)],
        dim=-1,
    )
    zB = torch.cat(
        [V[None, :, :].expand(n, m, K)[..., None], preprocess_gradient(gB, p, eps), preprocess_gradient(gbarB, p, eps)],
        dim=-1,
    )
    logits = torch.stack([attention(zA), attention(zB)], dim=-1)
    alpha = torch.softmax(logits, dim=-1)
    return alpha[..., 0], alpha[..., 1]


def reweighted_code_gradients(
    alpha_a: Tensor, alpha_b: Tensor, G: Tensor, U: Tensor, V: Tensor
) -> tuple[Tensor, Tensor]:
    """GA's attention-weighted code gradients (UHGA eq. 16-17):
    dL~/du_ik = sum_j 2 alpha^A_ijk G_ij v_jk and dL~/dv_jk = sum_i 2 alpha^B_ijk G_ij u_ik."""
    dU = 2.0 * torch.einsum("ijk,ij,jk->ik", alpha_a, G, V)
    dV = 2.0 * torch.einsum("ijk,ij,ik->jk", alpha_b, G, U)
    return dU, dV


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt with a finite derivative at 0 (where the true one is infinite and would turn 0 * inf into NaN)."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def functional_step(optimizer: torch.optim.Optimizer, params: list[Tensor], grads: list[Tensor | None]) -> list[Tensor]:
    """One step of ``optimizer`` on ``params`` with gradients ``grads``, as a differentiable expression.

    Returns the new parameter values (tensors that keep the graph of ``grads``); the optimiser and its
    state are not changed. Supports ``torch.optim.SGD`` (momentum, dampening, Nesterov, weight
    decay), ``Adam`` and ``AdamW`` (weight decay, no amsgrad), with per-group hyperparameters.
    A parameter whose gradient is None is returned unchanged (torch skips it too).
    """
    group_of = {}
    for group in optimizer.param_groups:
        for q in group["params"]:
            group_of[id(q)] = group
    is_sgd = type(optimizer) is torch.optim.SGD
    is_adamw = type(optimizer) is torch.optim.AdamW
    if not (is_sgd or is_adamw or type(optimizer) is torch.optim.Adam):
        raise TypeError(f"gradient attention supports SGD, Adam and AdamW optimisers, got {type(optimizer).__name__}")
    out = []
    for q, g in zip(params, grads, strict=True):
        if g is None:
            out.append(q)
            continue
        group = group_of.get(id(q))
        if group is None:
            raise ValueError(
                "a trainable parameter is not in the optimiser; give the optimiser all trainable parameters"
            )
        if group.get("maximize", False) or group.get("amsgrad", False):
            raise TypeError("gradient attention does not support maximize=True or amsgrad=True")
        lr = float(group["lr"])
        wd = float(group.get("weight_decay", 0.0))
        state = optimizer.state.get(q, {})
        if is_sgd:
            d = g + wd * q if wd else g
            mom = float(group.get("momentum", 0.0))
            if mom:
                buf = state.get("momentum_buffer")
                buf = d if buf is None else mom * buf + (1.0 - float(group.get("dampening", 0.0))) * d
                d = d + mom * buf if group.get("nesterov", False) else buf
            out.append(q - lr * d)
        else:
            beta1, beta2 = group["betas"]
            eps = float(group["eps"])
            step = float(state["step"]) + 1.0 if "step" in state else 1.0
            base = q
            if is_adamw:
                base = q * (1.0 - lr * wd)
            elif wd:
                g = g + wd * q
            m0 = state.get("exp_avg")
            v0 = state.get("exp_avg_sq")
            m = (1.0 - beta1) * g if m0 is None else beta1 * m0 + (1.0 - beta1) * g
            v = (1.0 - beta2) * g * g if v0 is None else beta2 * v0 + (1.0 - beta2) * g * g
            bc1 = 1.0 - beta1**step
            bc2 = 1.0 - beta2**step
            denom = _safe_sqrt(v) / math.sqrt(bc2) + eps
            out.append(base - (lr / bc1) * m / denom)
    return out


# ----------------------------------------------------------------------------------------------
# The training step
# ----------------------------------------------------------------------------------------------
@dataclass
class GAStep:
    """What one GA iteration measured: the loss at theta, the look-ahead loss at theta' (the loss the
    attention net minimises) and the mean |alpha^A - 1/2| (0 = plain gradient)."""

    loss: float
    lookahead_loss: float
    attention_spread: float


def _rng_state(device: torch.device) -> tuple[Tensor, Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


class GradientAttention:
    """One GA iteration (hash-net step + attention step) for a hash network ``model``.

    Args:
        model: the hash network; ``model(x)`` returns continuous codes (n, K) unless ``forward`` is given.
        optimizer: the base method's optimiser over the model's trainable parameters; its step is the
            look-ahead (written functionally) and the real update.
        attention_lr: Adam learning rate of the attention net (GA: 0.08 for CIFAR at 16/32 bits).
        hidden: hidden width of the attention MLP (100 in GA).
        p, eps: gradient-preprocessing constants (10, 1e-6 in GA).
        code_loss_fn: optional extra loss term of the codes (U, V), not re-weighted.
        forward: optional ``forward(params_and_buffers: dict, x) -> codes`` to use instead of
            ``functional_call(model, ..., (x,))`` (e.g. to scale before tanh).
        seed: when given, the attention net is initialised from ``torch.manual_seed(seed)`` in a forked
            RNG, leaving the global RNG (hence later dropout masks) untouched; None: the global RNG.

    The attention net lives on the model's device and dtype. Call :meth:`step` once per iteration;
    :meth:`lookahead` computes the same quantities without changing anything (tests, diagnostics).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        attention_lr: float = 0.08,
        hidden: int = 100,
        p: float = 10.0,
        eps: float = 1e-6,
        code_loss_fn: CodeLoss | None = None,
        forward: Callable[[dict, Tensor], Tensor] | None = None,
        seed: int | None = None,
        first_order: Iterable[Tensor] = (),
    ):
        self.model = model
        self.optimizer = optimizer
        self.p = p
        self.eps = eps
        self.code_loss_fn = code_loss_fn
        self._forward = forward
        ref = next(model.parameters())
        if seed is None:
            self.attention = AttentionNet(hidden)
        else:
            # A private RNG: the hash net's later dropout masks stay those of the same fit without GA.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                self.attention = AttentionNet(hidden)
        self.attention = self.attention.to(device=ref.device, dtype=ref.dtype)
        self.attention_optimizer = torch.optim.Adam(self.attention.parameters(), lr=attention_lr)
        self.names = [n for n, q in model.named_parameters() if q.requires_grad]
        self.params = [q for q in model.parameters() if q.requires_grad]
        #: parameters whose look-ahead step is first order (no graph to phi): the trainable backbone
        #: stages of the fine-tuning regimes (see :meth:`lookahead`)
        first = {id(q) for q in first_order}
        self.first_order = [id(q) in first for q in self.params]
        self.device = ref.device
        #: how alpha is computed: :func:`attention_weights` (chunked); benchmarks and tests swap in
        #: :func:`attention_weights_reference` to compare the two side by side
        self.weights_fn = attention_weights

    def _codes(self, values: dict, x: Tensor) -> Tensor:
        if self._forward is not None:
            return self._forward(values, x)
        return functional_call(self.model, values, (x,))

    def _total_loss(self, U: Tensor, V: Tensor, S: Tensor, loss_fn: PairwiseLoss) -> Tensor:
        loss = loss_fn(U @ V.T, S)
        if self.code_loss_fn is not None:
            loss = loss + self.code_loss_fn(U, V)
        return loss

    def lookahead(
        self, x_a: Tensor, x_b: Tensor | None, S: Tensor, loss_fn: PairwiseLoss
    ) -> tuple[Tensor, Tensor, list[Tensor | None], Tensor]:
        """Steps 1-5 without updating anything.

        Returns (loss at theta, detached; look-ahead loss L(theta'(phi)) with its graph to phi;
        the attention-weighted parameter gradients g~ (graph kept); alpha^A).
        """
        rng = _rng_state(self.device)
        values = dict(zip(self.names, self.params, strict=True))
        with torch.enable_grad():
            U = self._codes(values, x_a)
            V = U if x_b is None else self._codes(values, x_b)
            Ud, Vd = U.detach(), V.detach()
            P = (Ud @ Vd.T).requires_grad_(True)
            pair_loss = loss_fn(P, S)
            (G,) = torch.autograd.grad(pair_loss, P)
            alpha_a, alpha_b = self.weights_fn(self.attention, Ud, Vd, G, p=self.p, eps=self.eps)
            dU, dV = reweighted_code_gradients(alpha_a, alpha_b, G, Ud, Vd)
            if x_b is None:
                outputs, grad_outputs = [U], [dU + dV]
            else:
                outputs, grad_outputs = [U, V], [dU, dV]
            loss = pair_loss.detach()
            if self.code_loss_fn is not None:
                code_loss = self.code_loss_fn(U, V)
                outputs.append(code_loss)
                grad_outputs.append(torch.ones_like(code_loss))
                loss = loss + code_loss.detach()
            grads = self._gradients(outputs, grad_outputs)
            new = functional_step(self.optimizer, self.params, grads)
            new = [v.detach() if first else v for v, first in zip(new, self.first_order, strict=True)]
            values_new = dict(zip(self.names, new, strict=True))
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.set_rng_state(rng[0])
                if rng[1] is not None:
                    torch.cuda.set_rng_state(rng[1], self.device)
                U2 = self._codes(values_new, x_a)
                V2 = U2 if x_b is None else self._codes(values_new, x_b)
            la_loss = self._total_loss(U2, V2, S, loss_fn)
        return loss, la_loss, list(grads), alpha_a.detach()

    def _gradients(self, outputs: list[Tensor], grad_outputs: list[Tensor]) -> list[Tensor | None]:
        """The attention-weighted parameter gradients g~: with their graph to phi (create_graph), except
        for the :attr:`first_order` parameters, whose gradients are plain values. Their look-ahead
        step then does not reach phi, and the look-ahead forward through them (the backbone stages)
        builds no graph: GA's second-order cost stays in the head. The values of g~, hence the
        update of theta, are the same either way; only phi's meta-gradient leaves out how the
        stages' own step changes the look-ahead loss."""
        if not any(self.first_order):
            return list(torch.autograd.grad(outputs, self.params, grad_outputs, create_graph=True, allow_unused=True))
        first = [q for q, f in zip(self.params, self.first_order, strict=True) if f]
        meta = [q for q, f in zip(self.params, self.first_order, strict=True) if not f]
        g_first = iter(torch.autograd.grad(outputs, first, grad_outputs, retain_graph=True, allow_unused=True))
        g_meta = iter(torch.autograd.grad(outputs, meta, grad_outputs, create_graph=True, allow_unused=True))
        return [next(g_first) if f else next(g_meta) for f in self.first_order]

    def step(self, x_a: Tensor, x_b: Tensor | None, S: Tensor, loss_fn: PairwiseLoss) -> GAStep:
        """One full GA iteration: theta <- theta' (via the optimiser), then an Adam step on phi."""
        loss, la_loss, grads, alpha_a = self.lookahead(x_a, x_b, S, loss_fn)
        # Frozen attention parameters (e.g. a fixed alpha = 1/2 ablation) are left alone.
        attn_params = [q for q in self.attention.parameters() if q.requires_grad]
        # The meta-gradient must be taken before theta is changed in place (the graph reads theta).
        phi_grads = (
            torch.autograd.grad(la_loss, attn_params, allow_unused=True)
            if attn_params and la_loss.requires_grad
            else [None] * len(attn_params)
        )
        for q, g in zip(self.params, grads, strict=True):
            q.grad = None if g is None else g.detach()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        for q, g in zip(attn_params, phi_grads, strict=True):
            q.grad = None if g is None else g.detach()
        self.attention_optimizer.step()
        self.attention_optimizer.zero_grad(set_to_none=True)
        return GAStep(
            loss=float(loss),
            lookahead_loss=float(la_loss.detach()),
            attention_spread=float((alpha_a - 0.5).abs().mean()),
        )


# ----------------------------------------------------------------------------------------------
# Adding GA to a deep method
# ----------------------------------------------------------------------------------------------
#: the constraints of the parameters :class:`AttentionTrained` adds (merge into a method's own)
ATTENTION_CONSTRAINTS = {
    "attention_lr": [Interval(float, 0, None, closed="neither")],
    "attention_hidden": [Interval(int, 1, None)],
}


class AttentionTrained:
    """What training with gradient attention adds to a deep method: the ``attention_lr`` and
    ``attention_hidden`` parameters (their constraints in :data:`ATTENTION_CONSTRAINTS`), and the
    attention net built beside the base method's optimiser (and checkpointed with it). Mixed in
    before the base method's class; the method's ``training_state`` calls :meth:`attach_attention`."""

    attention_lr: float
    attention_hidden: int

    def attach_attention(
        self, ctx: FitContext, state: dict, forward: Callable[[dict, Tensor], Tensor] | None = None
    ) -> dict:
        """Build the :class:`GradientAttention` of this fit into ``ctx.extra["ga"]`` and add its net and
        optimiser to the training ``state`` (so checkpoints hold them); returns ``state``."""
        ga = GradientAttention(
            self.net_,
            state["optimizer"],
            attention_lr=float(self.attention_lr),
            hidden=int(self.attention_hidden),
            forward=forward,
            seed=int(self.random_state),
            first_order=self.backbone_parameters(),  # fine-tuning regimes: the stages (see GradientAttention)
        )
        ctx.extra["ga"] = ga
        state["attention"] = ga.attention
        state["attention_optimizer"] = ga.attention_optimizer
        return state
