"""USDH: Unsupervised Semantic Deep Hashing (Jin, Yao, Sun, Zhou, Neurocomputing 351 (2019) 19-25;
arXiv 1803.06911).

**Reconstructed from the abstract** (no code was released and the paper's body could not be read;
report numbers as "re-implementation from abstract", METHODS.md section 8). The abstract states
four criteria on codes learned on a VGG-19 backbone, guided by "semantic information preserved in
the CNN feature layer":

1. preserve the relevant information of the feature space in Hamming space (semantic loss);
2. minimise the quantisation loss between binary-like codes and hash codes;
3. maximise the information entropy of each bit;
4. invariance to image rotation.

Everything below the criteria is inferred; each choice is a parameter where it has a value:

- Network: the harness's hash network, h = tanh(W body(x) + c) in (-1, 1)^K, codes b = sign(h)
  (bit = h >= 0). End-to-end track: fc7 backbone ``arch`` (default VGG16: the harness offers
  AlexNet and VGG16, not the paper's VGG-19) fine-tuned on 224x224 images; features track: an MLP
  head on a representation's features (``hashbench.nets.feature_net``).
- Semantic structure (``similarity="knn"``, default): cosine distances of the reference features
  (the representation's features, or the pretrained backbone's fc7 before training on the
  end-to-end track; ``hashbench.methods.similarity.cosine_distance_matrix``). S_ij = +1 when j is among
  the ``neighbors`` x (n - 1) nearest neighbours of i or i among those of j (ties broken by index),
  -1 when d_ij is above the ``dissimilar_quantile`` quantile of all n^2 distances, 0 (ignored)
  otherwise; the diagonal is 0. ``neighbors`` is a fraction (5%) rather than a count so that a
  mini-batch holds similar pairs at any training-set size. ``similarity="ssdh"`` uses SSDH's
  half-Gaussian thresholds instead (``hashbench.methods.similarity.semantic_similarity``).
- Semantic loss (:func:`semantic_loss`): the mean over the batch's known pairs (S_ij != 0) of
  (h_i.h_j / K - S_ij)^2, the SSDH-style pairwise form METHODS.md 8 proposes.
- Quantisation loss (:func:`quantization_loss`): mean over items and bits of (sign(h) - h)^2.
- Entropy (:func:`bit_entropy_loss`): minus the mean over bits of the binary entropy (in bits) of
  the batch frequency p_k = (1 + mean_i h_ik) / 2 of bit k; lowest (-1) when every bit is on for
  half the batch.
- Rotation invariance (:func:`rotation_loss`, DeepBit-style): mean over items and bits of
  (h(x) - h(rot(x)))^2, averaged over the angles ``rotation_angles = (90, 180, 270)`` with equal
  weights (the survey's exp(-theta^2 / 2) weighting would all but erase these angles). Multiples of
  90 degrees rotate without interpolation or cropped corners. End-to-end track: the images of the
  batch are rotated with ``torch.rot90``. Features track: the runner supplies the representation
  of the rotated training images, ``fit(X, y, rotated=[X_rot90, X_rot180, X_rot270])`` (arrays
  aligned with X's rows). When ``rotated`` is not given on the features track, the rotation term
  is dropped with a warning (so a plain ``fit(X)`` still works, e.g. in the conformance suite);
  ``rotation_used_`` records which happened.
- Total: L = L_sem + w_q L_q + w_ent L_ent + w_rot L_rot with w_q = 0.1, w_ent = 0.1, w_rot = 0.1
  (none published); Adam(lr), batch 64; epochs 50 (features) / 10 (end-to-end).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hashbench.deep import DeepHashMethod, FitContext
from hashbench.errors import InvalidInput
from hashbench.methods import Interval, Options, fit_context, validate_features
from hashbench.methods.similarity import cosine_distance_matrix, semantic_similarity

SIMILARITIES = ("knn", "ssdh")


# ----------------------------------------------------------------------------- structure (pure)
def knn_similarity(
    features: np.ndarray, n_neighbors: int, dissimilar_quantile: float = 0.5, block_size: int = 1024
) -> np.ndarray:
    """Three-way similarity of the rows of ``features`` from cosine neighbourhoods (int8 (n, n)).

    S_ij = +1 when j is among the n_neighbors nearest rows of i (self excluded; ties broken by the
    lower index) or i among those of j; otherwise -1 when the cosine distance d_ij exceeds the
    ``dissimilar_quantile`` quantile of all n^2 distances; otherwise 0. The diagonal is 0.
    """
    D = cosine_distance_matrix(features)
    n = D.shape[0]
    k = int(n_neighbors)
    if not 1 <= k <= n - 1:
        raise InvalidInput(f"n_neighbors must be in 1..{n - 1} for {n} items, got {n_neighbors!r}")
    if not 0.0 < float(dissimilar_quantile) <= 1.0:
        raise InvalidInput(f"dissimilar_quantile must be in (0, 1], got {dissimilar_quantile!r}")
    threshold = float(np.quantile(D, float(dissimilar_quantile)))
    S = np.where(D > threshold, -1, 0).astype(np.int8)
    near = np.zeros((n, n), dtype=bool)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        block = D[start:stop].copy()
        block[np.arange(stop - start), np.arange(start, stop)] = np.inf
        nearest = np.argsort(block, axis=1, kind="stable")[:, :k]
        near[np.arange(start, stop)[:, None], nearest] = True
    near |= near.T
    S[near] = 1
    np.fill_diagonal(S, 0)
    return S


# ----------------------------------------------------------------------------- losses (pure)
def semantic_loss(h: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Mean over the pairs with S_ij != 0 of (h_i.h_j / K - S_ij)^2 (0 when the batch has none)."""
    S = S.to(dtype=h.dtype)
    mask = S.abs()
    inner = h @ h.T / h.shape[1]
    return (mask * (inner - S) ** 2).sum() / mask.sum().clamp(min=1.0)


def quantization_loss(h: torch.Tensor) -> torch.Tensor:
    """Mean over items and bits of (b - h)^2 with b = sign(h) (sign(0) = +1), b held constant."""
    b = torch.where(h >= 0, 1.0, -1.0).to(h.dtype).detach()
    return ((b - h) ** 2).mean()


def bit_entropy_loss(h: torch.Tensor) -> torch.Tensor:
    """-mean_k H2(p_k), p_k = (1 + mean_i h_ik) / 2, H2 the binary entropy in bits: -1 for balanced bits."""
    p = ((1 + h.mean(dim=0)) / 2).clamp(1e-7, 1 - 1e-7)
    entropy = -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))
    return -entropy.mean()


def rotation_loss(h: torch.Tensor, h_rotated: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over angles of the mean over items and bits of (h(x) - h(rot(x)))^2."""
    if len(h_rotated) == 0:
        return h.new_zeros(())
    return torch.stack([((h - hr) ** 2).mean() for hr in h_rotated]).mean()


# ----------------------------------------------------------------------------- method
class USDH(DeepHashMethod):
    """USDH (Jin et al., Neurocomputing 2019), reconstructed from its abstract (see module docstring).

    Parameters: those of :class:`hashbench.deep.DeepHashMethod`, plus
        w_q, w_ent, w_rot: weights of the quantisation, entropy and rotation terms (0.1 each);
        similarity: "knn" (default) or "ssdh" (semantic structure, see module docstring);
        neighbors: fraction of the training set taken as each item's neighbours ("knn"; 0.05);
        dissimilar_quantile: distances above this quantile are dissimilar pairs ("knn"; 0.5).

    ``fit(X, y=None, rotated=None)``: ``rotated`` is a list of arrays aligned with X's rows, the
    representation of the training images rotated by ``rotation_angles`` (features track).

    Fitted: ``net_``, ``history_``, ``similarity_info_`` (fractions of similar / dissimilar pairs),
    ``rotation_used_`` (whether the rotation term was trained).
    """

    version = 1
    display_rank = 80  # position in tables: the UHGA paper's comparison order, LSH first
    display_style = ("#bcbd22", "h")  # colour and marker in every figure
    rotation_angles = (90, 180, 270)
    default_epochs = {"features": 50, "end2end": 10}
    test_params = {"epochs": 2, "hidden": 16, "batch_size": 16, "device": "cpu"}
    parameter_constraints = {
        **DeepHashMethod.parameter_constraints,
        "w_q": [Interval(float, 0, None)],
        "w_ent": [Interval(float, 0, None)],
        "w_rot": [Interval(float, 0, None)],
        "similarity": [Options(*SIMILARITIES)],
        "neighbors": [Interval(float, 0, 1, closed="neither")],
        "dissimilar_quantile": [Interval(float, 0, 1, closed="right")],
    }

    def __init__(
        self,
        *args: Any,
        arch: str = "vgg16",
        batch_size: int = 64,
        w_q: float = 0.1,
        w_ent: float = 0.1,
        w_rot: float = 0.1,
        similarity: str = "knn",
        neighbors: float = 0.05,
        dissimilar_quantile: float = 0.5,
        **common: Any,
    ):
        super().__init__(*args, arch=arch, batch_size=batch_size, **common)
        self.w_q = w_q
        self.w_ent = w_ent
        self.w_rot = w_rot
        self.similarity = similarity
        self.neighbors = neighbors
        self.dissimilar_quantile = dissimilar_quantile

    def fit_extras(self) -> dict[str, tuple[int, ...]]:
        """On vectors (features track, fine-tuning cuts): ``rotated``, the input representation of the
        training images turned by each of :attr:`rotation_angles` (images are turned in the batch)."""
        return {"rotated": tuple(self.rotation_angles)} if self.input == "features" else {}

    def check_params(self) -> None:
        """The declared constraints, and rotation angles that are multiples of 90 degrees."""
        super().check_params()
        for angle in self.rotation_angles:
            if angle % 90 != 0:
                raise InvalidInput(f"USDH: rotation angles must be multiples of 90 degrees, got {angle}")

    @fit_context
    def fit(
        self, X: Any, y: Any = None, rotated: Sequence[np.ndarray] | None = None, *, curve_labels: Any = None
    ) -> USDH:
        """Train on training items X (and, on the features track, their rotated representations);
        ``curve_labels`` only score the learning curve (:meth:`DeepHashMethod.fit`)."""
        self._rotated = None
        if self.input == "features":
            # bad features are reported before any warning about rotations
            self.validate_input(X, fitting=True)
        if self.input == "features" and float(self.w_rot) != 0.0:
            if rotated is None or len(rotated) == 0:
                warnings.warn(
                    "USDH on the features track was given no rotated features (fit(X, rotated=[...])); "
                    "training without the rotation-invariance term. The hashbench runner supplies them "
                    "from USDH.fit_extras().",
                    UserWarning,
                    stacklevel=3,
                )
            else:
                self._rotated = self._check_rotated(X, rotated)
        try:
            super().fit(X, y, curve_labels=curve_labels)
        finally:
            self._rotated = None
        return self

    def _check_rotated(self, X: Any, rotated: Sequence[np.ndarray]) -> list[np.ndarray]:
        X = np.asarray(X)
        out = []
        for i, R in enumerate(rotated):
            R = validate_features(R, self, fitting=True).astype(np.float32, copy=False)
            if R.shape != X.shape:
                raise InvalidInput(
                    f"USDH: rotated[{i}] has shape {R.shape}, but the training features have {X.shape}; "
                    "give the representation of each training image rotated, in the same row order"
                )
            out.append(R)
        return out

    def prepare(self, ctx: FitContext) -> None:
        """The semantic structure S of the reference features, and the rotated training features."""
        F = ctx.reference_features()
        n = F.shape[0]
        if self.similarity == "ssdh":
            S, _ = semantic_similarity(F)
        else:
            k = min(max(1, int(round(float(self.neighbors) * (n - 1)))), n - 1)
            S = knn_similarity(F, k, float(self.dissimilar_quantile))
        n2 = float(n) * n
        self.similarity_info_ = {
            "rule": self.similarity,
            "frac_similar": float(np.count_nonzero(S == 1)) / n2,
            "frac_dissimilar": float(np.count_nonzero(S == -1)) / n2,
        }
        ctx.extra["S"] = torch.from_numpy(S).to(ctx.device)
        if self.input == "features":
            rotated = self._rotated or []
            ctx.extra["rotated"] = [torch.from_numpy(np.ascontiguousarray(R)).to(ctx.device) for R in rotated]
        self.rotation_used_ = float(self.w_rot) != 0.0 and (self.input == "images" or bool(self._rotated))

    def _rotated_codes(self, ctx: FitContext, idx: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        """Codes of the batch's rotated versions: the given rotated features, or rot90 of the images."""
        if self.input == "features":
            i = idx.to(ctx.device)
            return [self.net_(R[i]) for R in ctx.extra["rotated"]]
        return [self.net_(torch.rot90(x, int(a) // 90 % 4, dims=(2, 3))) for a in self.rotation_angles]

    def batch_loss(self, ctx: FitContext, idx: torch.Tensor) -> torch.Tensor:
        """Semantic + w_q quantisation + w_ent entropy (+ w_rot rotation) loss of a batch."""
        x = ctx.inputs(idx)
        h = self.net_(x)
        i = idx.to(ctx.device)
        loss = semantic_loss(h, ctx.extra["S"][i][:, i])
        loss = loss + float(self.w_q) * quantization_loss(h) + float(self.w_ent) * bit_entropy_loss(h)
        if self.rotation_used_:
            loss = loss + float(self.w_rot) * rotation_loss(h, self._rotated_codes(ctx, idx, x))
        return loss
