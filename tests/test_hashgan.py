"""HashGAN (baselines/hashgan.py): each loss term on hand-computable inputs, the image pipeline, and
the method's schedule, encoding convention, determinism and input checks (tiny networks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hashbench_baselines.hashgan import (
    HashGAN,
    collaborative_loss,
    consistent_bits_loss,
    discriminator_adversarial_loss,
    feature_dropout,
    feature_matching_loss,
    images_to_tensor,
    independent_bits_loss,
    minimum_entropy_loss,
    random_affine,
    uniform_frequency_loss,
)

from hashbench.errors import InvalidInput

LN2 = math.log(2.0)
#: the paper's HashGAN: convolutional nets trained from scratch on images (track "end2end")
TINY = {**HashGAN.test_params, "n_bits": 8, "device": "cpu", "track": "end2end"}
#: the default features track: MLPs on a representation's features
TINY_F = {**HashGAN.test_params, "n_bits": 8, "device": "cpu"}


def t(x):
    return torch.tensor(x, dtype=torch.float32)


# ----------------------------------------------------------------------------- losses
def test_adversarial_loss_at_chance_is_two_log_two():
    """Logits 0 mean D says 1/2 for everything: -log(1/2) for the real and for the fake side."""
    assert discriminator_adversarial_loss(t([0.0, 0.0]), t([0.0])).item() == pytest.approx(2 * LN2, abs=1e-6)


def test_adversarial_loss_is_small_for_a_confident_correct_discriminator():
    """Real scored +20, fake -20: both cross-entropies are ~exp(-20)."""
    assert discriminator_adversarial_loss(t([20.0]), t([-20.0])).item() < 1e-6


def test_feature_matching_compares_batch_means():
    """means (2, 0) and (0, 1): squared distance 4 + 1 = 5, whatever the individual rows."""
    assert feature_matching_loss(t([[1.0, 0.0], [3.0, 0.0]]), t([[0.0, 0.0], [0.0, 2.0]])).item() == pytest.approx(5.0)


def test_minimum_entropy_is_log2_at_half_and_zero_at_a_saturated_bit():
    """H(0.5) = ln 2, H(1) = 0; the mean over the two entries is ln 2 / 2."""
    assert minimum_entropy_loss(t([[0.5, 1.0]])).item() == pytest.approx(LN2 / 2, abs=1e-5)


def test_uniform_frequency_rewards_balanced_bits_only():
    """Bit 0 is on in one of two images (frequency 1/2, entropy ln 2), bit 1 never (entropy 0):
    -(ln 2 + 0) / 2."""
    assert uniform_frequency_loss(t([[1.0, 0.0], [0.0, 0.0]])).item() == pytest.approx(-LN2 / 2, abs=1e-5)


def test_consistent_bits_averages_squared_changes_over_images_and_bits():
    """Image 1 changes by (1, -0.5): squares 1 and 0.25; image 2 is unchanged: mean of 4 entries 0.3125."""
    e = t([[1.0, 0.0], [0.3, 0.3]])
    et = t([[0.0, 0.5], [0.3, 0.3]])
    assert consistent_bits_loss(e, et).item() == pytest.approx(0.3125)


def test_independent_bits_is_zero_for_orthonormal_hash_vectors():
    """W^T W = I for orthonormal columns; weight diag(2, 0) gives (W^T W - I) = diag(3, -1): (9 + 1) / 4."""
    assert independent_bits_loss(torch.eye(2)).item() == 0.0
    assert independent_bits_loss(t([[2.0, 0.0], [0.0, 0.0]])).item() == pytest.approx(2.5)
    # a (K=2, hidden=3) Linear weight with orthonormal rows: still zero
    assert independent_bits_loss(t([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).item() == 0.0


def test_collaborative_loss_is_the_squared_error_to_the_conditioning_code():
    """Only one of the four entries misses its code, by 0.25: 0.0625 / 4."""
    e = t([[0.25, 1.0], [1.0, 0.0]])
    b = t([[0.0, 1.0], [1.0, 0.0]])
    assert collaborative_loss(e, b).item() == pytest.approx(0.015625)


# ----------------------------------------------------------------------------- images
def test_32x32_images_are_only_rescaled_to_minus_one_one():
    x = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    x[1] = 255
    out = images_to_tensor(x)
    assert out.shape == (2, 3, 32, 32)
    assert out[0].eq(-1).all() and out[1].eq(1).all()


def test_mnist_size_images_are_zero_padded_centred():
    """28x28 -> 32x32 with a 2-pixel black (-1) border; the digit's pixels are not resampled."""
    x = np.full((1, 28, 28, 1), 255, dtype=np.uint8)
    out = images_to_tensor(x)[0, 0]
    assert out.shape == (32, 32)
    assert out[2:30, 2:30].eq(1).all()
    assert out[:2].eq(-1).all() and out[30:].eq(-1).all() and out[:, :2].eq(-1).all() and out[:, 30:].eq(-1).all()


def test_small_images_are_resized_to_32():
    """digits' 8x8: a constant image stays constant after bilinear upsampling."""
    x = np.full((3, 8, 8, 1), 51, dtype=np.uint8)
    out = images_to_tensor(x)
    assert out.shape == (3, 1, 32, 32)
    assert torch.allclose(out, torch.full_like(out, 51 / 127.5 - 1), atol=1e-6)


def test_zero_range_transform_is_the_identity_and_flips_mirror():
    """With no rotation or translation the sampling grid hits pixel centres exactly; a flip is an
    exact mirror. Under one seed the draws repeat."""
    x = torch.rand(16, 1, 8, 8)
    same = random_affine(x, torch.Generator().manual_seed(0), 0.0, 0.0, flip=False)
    assert torch.allclose(same, x, atol=1e-5)
    flipped = random_affine(x, torch.Generator().manual_seed(0), 0.0, 0.0, flip=True)
    is_id = (flipped - x).abs().amax(dim=(1, 2, 3)) < 1e-5
    is_mirror = (flipped - x.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert (is_id | is_mirror).all() and is_id.any() and is_mirror.any()
    again = random_affine(x, torch.Generator().manual_seed(0), 0.0, 0.0, flip=True)
    assert torch.equal(flipped, again)


def test_transform_moves_pixels_within_the_stated_range():
    """A 10-degree, 10% transform changes the image but keeps its mean level roughly."""
    x = torch.zeros(4, 1, 32, 32)
    x[:, :, 12:20, 12:20] = 1.0
    out = random_affine(x, torch.Generator().manual_seed(1), 10.0, 0.1)
    assert not torch.allclose(out, x)
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)), rtol=0.2)


# ----------------------------------------------------------------------------- method
@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)


def test_lr_decays_in_equal_steps_to_lr_end():
    """8uos: 9e-4 -> 3e-4 in 4 steps; over 10 epochs the levels change every 2 epochs."""
    m = HashGAN(epochs=10, lr=9e-4, lr_end=3e-4, lr_steps=4)
    assert [round(m._lr_at(e) * 1e4, 6) for e in range(10)] == [9, 9, 7.5, 7.5, 6, 6, 4.5, 4.5, 3, 3]


def test_warmup_epochs_train_adversarially_only(images):
    """warmup=0.5 of 2 epochs: no hashing loss in epoch 1, hashing loss in epoch 2."""
    m = HashGAN(**{**TINY, "epochs": 2, "warmup": 0.5}).fit(images[:16])
    comps = m.history_["components"]
    assert len(comps) == 2 and comps[0]["hashing"] == 0.0 and comps[1]["hashing"] != 0.0


@pytest.fixture(scope="module")
def fitted(images):
    return HashGAN(**TINY, random_state=3).fit(images)


def test_codes_follow_the_paper_threshold_and_are_seeded(images, fitted):
    """bit = E(x) - 0.5 >= 0, i.e. the paper's E(x) > 0.5; the same seed repeats the fit exactly."""
    e = fitted.encoder_probabilities(images)
    assert e.shape == (40, 8) and ((e > 0) & (e < 1)).all()
    codes = fitted.encode(images)
    assert codes.dtype == bool and np.array_equal(codes, e >= 0.5)
    assert np.array_equal(HashGAN(**TINY, random_state=3).fit(images).project(images), fitted.project(images))


def test_generator_step_taking_only_g_gradients_is_the_full_backward_step(images, fitted, monkeypatch):
    """The G step's fast path (autograd.grad for G's parameters only) changes no number: the same
    seed trained with the plain full backward gives bitwise the same projections and losses."""
    monkeypatch.setattr(HashGAN, "_generator_grads_only", False)
    plain = HashGAN(**TINY, random_state=3).fit(images)
    assert np.array_equal(plain.project(images), fitted.project(images))
    assert _untimed(plain.history_) == _untimed(fitted.history_)


def test_generator_samples_images_and_codes(fitted):
    imgs, b = fitted.sample(5)
    assert imgs.shape == (5, 32, 32, 1) and imgs.dtype == np.uint8 and b.shape == (5, 8) and b.dtype == bool


def test_rejects_features_and_wrong_channels(fitted):
    """The end-to-end track takes images: a feature matrix, or colour images after grayscale
    training, are errors."""
    with pytest.raises(InvalidInput, match="images"):
        HashGAN(**TINY).fit(np.zeros((10, 64), dtype=np.float32))
    with pytest.raises(InvalidInput, match="1-channel"):
        fitted.encode(np.zeros((2, 28, 28, 3), dtype=np.uint8))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when no GPU is present")
def test_cuda_without_gpu_is_a_clear_error(images):
    with pytest.raises(InvalidInput, match="GPU"):
        HashGAN(**{**TINY, "device": "cuda"}).fit(images)


# ----------------------------------------------------------------------------- features track
@pytest.fixture(scope="module")
def features():
    """Two well-separated clusters in 12 dimensions, on an offset and scale a standardisation removes."""
    rng = np.random.default_rng(1)
    centres = np.repeat(np.array([[4.0] * 6 + [0.0] * 6, [0.0] * 6 + [4.0] * 6]), 30, axis=0)
    return (100.0 + 50.0 * (centres + rng.normal(size=(60, 12)))).astype(np.float32)


@pytest.fixture(scope="module")
def fitted_f(features):
    return HashGAN(**TINY_F, random_state=5).fit(features)


def test_the_features_track_is_the_default_and_end2end_takes_images():
    assert HashGAN().input == "features" and HashGAN(track="end2end").input == "images"
    with pytest.raises(InvalidInput, match="track"):
        HashGAN(track="images").check_params()


def test_feature_dropout_zeroes_coordinates_with_the_stated_probability():
    x = torch.ones(200, 50)
    assert feature_dropout(x, torch.Generator().manual_seed(0), 0.0) is x
    y = feature_dropout(x, torch.Generator().manual_seed(0), 0.25)
    assert set(torch.unique(y).tolist()) == {0.0, 1.0}
    assert abs(float((y == 0).float().mean()) - 0.25) < 0.02
    assert torch.equal(y, feature_dropout(x, torch.Generator().manual_seed(0), 0.25))


def test_features_track_trains_on_standardised_features_and_repeats_exactly(features, fitted_f):
    """Codes follow E(x) > 0.5, the same seed repeats the fit bitwise, and a feature matrix on another
    offset and scale (standardised away) gives the same codes."""
    e = fitted_f.encoder_probabilities(features)
    assert e.shape == (60, 8) and ((e > 0) & (e < 1)).all()
    assert np.array_equal(fitted_f.encode(features), e >= 0.5)
    again = HashGAN(**TINY_F, random_state=5).fit(features)
    assert np.array_equal(again.project(features), fitted_f.project(features))
    assert _untimed(again.history_) == _untimed(fitted_f.history_)
    np.testing.assert_allclose(fitted_f.standardize_.mean.numpy(), features.mean(axis=0), rtol=1e-5)
    shifted = HashGAN(**TINY_F, random_state=5).fit(3.0 * features - 7.0)
    np.testing.assert_allclose(shifted.project(3.0 * features - 7.0), fitted_f.project(features), atol=1e-5)


def test_features_track_hashing_losses_train_and_codes_use_the_structure(features):
    """After warm-up the hashing losses are active; with enough steps the two clusters get different
    codes on most bits (the codes carry the data's structure, not noise)."""
    m = HashGAN(n_bits=8, epochs=40, batch_size=20, device="cpu", random_state=0).fit(features)
    comps = m.history_["components"]
    assert comps[0]["hashing"] == 0.0 and comps[-1]["hashing"] != 0.0
    codes = m.encode(features)
    within = np.mean([np.mean(codes[i] != codes[j]) for i in range(30) for j in range(30)])
    across = np.mean([np.mean(codes[i] != codes[30 + j]) for i in range(30) for j in range(30)])
    assert across > within + 0.2


def test_features_track_samples_features_and_rejects_images(features, fitted_f):
    feats, b = fitted_f.sample(4)
    assert feats.shape == (4, 12) and feats.dtype == np.float32 and b.shape == (4, 8)
    with pytest.raises(InvalidInput, match="2-D|2D|features"):
        HashGAN(**TINY_F).fit(np.zeros((10, 8, 8, 1), dtype=np.uint8))
    with pytest.raises(InvalidInput, match="12"):
        fitted_f.encode(np.zeros((3, 5), dtype=np.float32))


def test_features_track_trains_when_the_last_batch_is_one_item(features):
    """61 items at batch 20: the last batch of every epoch is one row, which batch norm cannot
    estimate statistics from; the generator normalises it with its running statistics."""
    rng = np.random.default_rng(2)
    X = np.vstack([features, features[:1] + rng.normal(size=(1, 12)).astype(np.float32)])
    m = HashGAN(**{**TINY_F, "batch_size": 20, "epochs": 2}).fit(X)
    assert m.encode(X).shape == (61, 8)


def test_encoding_on_another_track_than_fitted_is_a_clear_error(features, fitted_f):
    import copy

    m = copy.deepcopy(fitted_f).set_params(track="end2end")
    with pytest.raises(InvalidInput, match="fitted on the 'features' track"):
        m.encode(np.zeros((2, 32, 32, 3), dtype=np.uint8))


def test_minimum_entropy_weight_defaults_per_track(images, features):
    """w_me=None is 0.1 on the features track and 8uos's 0.01 end to end: bitwise the same fits."""
    assert HashGAN().w_me is None
    for track, X, value, other in (("features", features, 0.1, 0.01), ("end2end", images, 0.01, 0.1)):
        params = {**TINY_F, "track": track, "epochs": 2, "warmup": 0.0, "random_state": 1}
        default = HashGAN(**params).fit(X).project(X)
        assert np.array_equal(default, HashGAN(**params, w_me=value).fit(X).project(X))
        assert not np.array_equal(default, HashGAN(**params, w_me=other).fit(X).project(X))


def _untimed(history: dict) -> dict:
    """A fit's history less its wall-clock seconds (they differ between two runs of the same fit)."""
    return {k: v for k, v in history.items() if k != "seconds"}
