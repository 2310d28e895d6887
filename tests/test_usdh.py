"""USDH (baselines/usdh.py): the neighbourhood similarity and each loss term on hand-computable
inputs; the rotation term's wiring on both tracks; determinism; input checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hashbench_baselines.usdh import (
    USDH,
    bit_entropy_loss,
    knn_similarity,
    quantization_loss,
    rotation_loss,
    semantic_loss,
)
from sklearn.datasets import load_digits

from hashbench.errors import InvalidInput

TINY = {**USDH.test_params, "n_bits": 8}


def t(x):
    return torch.tensor(x, dtype=torch.float32)


# ----------------------------------------------------------------------------- similarity
def test_knn_similarity_on_four_directions():
    """Rows at angles 0, 10, 90 and 180 degrees. Each row's single nearest neighbour: 0<->10, 90->10
    (distance 1 - cos 80 < 1 - cos 90), 180->90. Symmetrised: +1 pairs {0,10}, {10,90}, {90,180}.
    The median of the 16 distances (diagonal included) lies between 1 - cos 80 = 0.83 and 1, so the
    pairs at distance 1 or more are -1 -- except 90-180, which is a neighbour pair (+1 wins)."""
    ang = np.deg2rad([0.0, 10.0, 90.0, 180.0])
    F = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    S = knn_similarity(F, n_neighbors=1, dissimilar_quantile=0.5)
    expected = np.array(
        [
            [0, 1, -1, -1],
            [1, 0, 1, -1],
            [-1, 1, 0, 1],
            [-1, -1, 1, 0],
        ],
        dtype=np.int8,
    )
    assert S.dtype == np.int8
    np.testing.assert_array_equal(S, expected)


def test_knn_similarity_breaks_ties_by_index():
    """Three identical rows: each row's one nearest neighbour is the lowest other index (0->1, 1->0,
    2->0); symmetrised, 1 and 2 are not neighbours. All distances are 0, so nothing is dissimilar."""
    S = knn_similarity(np.ones((3, 4)), n_neighbors=1, dissimilar_quantile=0.5)
    np.testing.assert_array_equal(S, [[0, 1, 1], [1, 0, 0], [1, 0, 0]])


def test_knn_similarity_rejects_impossible_neighbourhoods():
    with pytest.raises(InvalidInput, match="n_neighbors"):
        knn_similarity(np.eye(3), n_neighbors=3)


# ----------------------------------------------------------------------------- losses
def test_semantic_loss_averages_over_known_pairs_only():
    """K = 2. h_0 = (1, 1), h_1 = (1, -1): inner products / K are 1 on the diagonal, 0 off it.
    S marks (0, 1) and (1, 0) similar and the diagonal unknown: each known pair costs (0 - 1)^2,
    mean 1. Marking them dissimilar instead costs (0 + 1)^2 = 1 too; with the diagonal known
    similar, (1 - 1)^2 = 0 joins the mean: 2 / 4."""
    h = t([[1.0, 1.0], [1.0, -1.0]])
    assert semantic_loss(h, t([[0, 1], [1, 0]])).item() == pytest.approx(1.0)
    assert semantic_loss(h, t([[0, -1], [-1, 0]])).item() == pytest.approx(1.0)
    assert semantic_loss(h, t([[1, 1], [1, 1]])).item() == pytest.approx(0.5)
    assert semantic_loss(h, t([[0, 0], [0, 0]])).item() == 0.0


def test_quantization_loss_is_the_distance_to_the_sign():
    """(1 - 0.5)^2, (-1 + 0.5)^2, (1 - 1)^2, (1 - 0)^2 (sign(0) = +1): mean (0.25 + 0.25 + 0 + 1) / 4."""
    assert quantization_loss(t([[0.5, -0.5], [1.0, 0.0]])).item() == pytest.approx(0.375)


def test_bit_entropy_is_minus_one_for_balanced_bits_and_zero_for_constant_ones():
    """Bit 0 is +1 for one item and -1 for the other (p = 1/2, entropy 1 bit); bit 1 is always -1
    (p = 0, entropy 0): -(1 + 0) / 2."""
    assert bit_entropy_loss(t([[1.0, -1.0], [-1.0, -1.0]])).item() == pytest.approx(-0.5, abs=1e-5)


def test_rotation_loss_averages_over_angles():
    """One angle moves a bit by 1 (mean over 2 x 2 entries: 0.25), another leaves h alone: 0.125."""
    h = t([[1.0, 0.0], [0.0, 0.0]])
    moved = t([[0.0, 0.0], [0.0, 0.0]])
    assert rotation_loss(h, [moved, h.clone()]).item() == pytest.approx(0.125)
    assert rotation_loss(h, []).item() == 0.0


# ----------------------------------------------------------------------------- method
@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    idx = np.random.default_rng(0).permutation(len(d.target))[:120]
    images = d.images[idx]
    feats = (images.reshape(len(idx), -1) / 16.0).astype(np.float32)
    rotated = [np.rot90(images, k, axes=(1, 2)).reshape(len(idx), -1).astype(np.float32) / 16.0 for k in (1, 2, 3)]
    return feats, rotated, (images * (255 / 16)).round().astype(np.uint8)[..., None]


def test_features_track_uses_rotated_features_and_is_seeded(digits):
    feats, rotated, _ = digits
    a = USDH(**TINY, random_state=1).fit(feats, rotated=rotated)
    assert a.rotation_used_ and a.input == "features"
    codes = a.encode(feats)
    assert codes.dtype == bool and codes.shape == (120, 8)
    b = USDH(**TINY, random_state=1).fit(feats, rotated=rotated)
    np.testing.assert_array_equal(a.project(feats), b.project(feats))
    info = a.similarity_info_
    assert 0 < info["frac_similar"] < 0.2 and info["frac_dissimilar"] == pytest.approx(0.5, abs=0.01)


def test_rotation_term_changes_the_fit(digits):
    """The rotated features reach the loss: the same seed trains a different network with w_rot = 0."""
    feats, rotated, _ = digits
    with_rot = USDH(**TINY).fit(feats, rotated=rotated).project(feats)
    without = USDH(**TINY, w_rot=0.0).fit(feats, rotated=rotated).project(feats)
    assert not np.allclose(with_rot, without)


def test_missing_rotated_features_fall_back_with_a_warning(digits):
    """A plain fit(X) on the features track trains without the rotation term and says so; the
    result equals a fit with w_rot = 0."""
    feats, _, _ = digits
    with pytest.warns(UserWarning, match="rotated features"):
        m = USDH(**TINY).fit(feats)
    assert not m.rotation_used_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = USDH(**TINY, w_rot=0.0).fit(feats)
    np.testing.assert_array_equal(m.project(feats), ref.project(feats))


def test_rotated_features_must_align_with_the_training_rows(digits):
    feats, rotated, _ = digits
    with pytest.raises(InvalidInput, match="rotated"):
        USDH(**TINY).fit(feats, rotated=[rotated[0][:-1]])
    bad = rotated[0].copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        USDH(**TINY).fit(feats, rotated=[bad])


def test_bad_parameters_are_errors(digits):
    feats, rotated, _ = digits
    with pytest.raises(InvalidInput, match="similarity"):
        USDH(**TINY, similarity="cosine").fit(feats, rotated=rotated)
    with pytest.raises(InvalidInput, match="neighbors"):
        USDH(**TINY, neighbors=5).fit(feats, rotated=rotated)


def test_ssdh_similarity_option_trains(digits):
    feats, rotated, _ = digits
    m = USDH(**TINY, similarity="ssdh").fit(feats, rotated=rotated)
    assert m.similarity_info_["rule"] == "ssdh" and m.encode(feats).shape == (120, 8)


def test_end2end_rotates_the_batch_images(monkeypatch, digits):
    """On the end-to-end track the rotated views are torch.rot90 of the batch's images, one per angle:
    seen through a stand-in network (a random backbone at 224 px would make this test slow)."""
    _, _, images = digits
    import hashbench.nets as nets

    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3 * 8 * 8, 8)

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.lin(x.flatten(1))

    def tiny_end2end(arch, n_bits, weights="imagenet"):
        return nets.HashNet(Spy(), 8, n_bits)

    def tiny_preprocess(imgs, size=224, arch=None):
        x = torch.from_numpy(np.asarray(imgs, dtype=np.float32) / 255.0).permute(0, 3, 1, 2)
        return x.repeat(1, 3, 1, 1)

    monkeypatch.setattr(nets, "end2end_net", tiny_end2end)
    monkeypatch.setattr(nets, "preprocess_images", tiny_preprocess)
    m = USDH(n_bits=8, track="end2end", weights=None, epochs=1, batch_size=120, device="cpu")
    m.fit(images[:120])
    assert m.rotation_used_ and m.input == "images"
    # reference features (one pass), then one training step: the batch and its three rotations
    x, r90, r180, r270 = seen[-4:]
    assert torch.equal(r90, torch.rot90(x, 1, dims=(2, 3)))
    assert torch.equal(r180, torch.rot90(x, 2, dims=(2, 3)))
    assert torch.equal(r270, torch.rot90(x, 3, dims=(2, 3)))
