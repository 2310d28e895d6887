"""SSDH (baselines/ssdh.py): the pairwise loss, training on both tracks, determinism, checkpoints."""

import numpy as np
import pytest
import torch
from hashbench_baselines.ssdh import SSDH, ssdh_loss

from hashbench.errors import InvalidInput

FAST = dict(epochs=2, hidden=16, batch_size=8, device="cpu")


def _blobs(n_per=10, d=16, seed=0):
    """Eight Gaussian clusters: the distance mode lies between clusters, similar pairs within them."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, d))
    X = np.vstack([c + 0.5 * rng.standard_normal((n_per, d)) for c in centres]).astype(np.float32)
    return X, np.repeat(np.arange(8), n_per)


def test_loss_of_hand_made_codes():
    # u0.u1 / K = 0 while S says dissimilar (-1): two off-diagonal errors of 1, over 4 entries -> 0.5.
    u = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    S = torch.tensor([[1, -1], [-1, 1]], dtype=torch.int8)
    assert ssdh_loss(u, S).item() == pytest.approx(0.5)
    # Unknown pairs (S = 0) cost nothing, but still count in the mean over B^2.
    S0 = torch.tensor([[1, 0], [0, 1]], dtype=torch.int8)
    assert ssdh_loss(u, S0).item() == pytest.approx(0.0)
    # A second batch v gives the cross loss; v = u is the SSDH loss itself.
    assert ssdh_loss(u, S, u).item() == pytest.approx(0.5)


def test_autograd_gradient_matches_the_analytic_one():
    # dJ/du = 4 / (B^2 K) (|S| o (u u^T / K - S)) u for symmetric S (both (i, j) and (j, i) terms).
    g = torch.Generator().manual_seed(0)
    B, K = 5, 3
    u = torch.tanh(torch.randn(B, K, generator=g, dtype=torch.float64)).requires_grad_()
    S = torch.randint(-1, 2, (B, B), generator=g).to(torch.float64)
    S = torch.triu(S) + torch.triu(S, 1).T
    ssdh_loss(u, S).backward()
    with torch.no_grad():
        A = u @ u.T / K - S
        analytic = 4.0 / (B * B * K) * (S.abs() * A) @ u
    torch.testing.assert_close(u.grad, analytic)


def test_features_track_fit_gives_bool_codes_and_learns():
    X, _ = _blobs()
    m = SSDH(n_bits=8, **FAST).fit(X)
    codes = m.encode(X)
    assert codes.shape == (80, 8) and codes.dtype == bool
    assert m.input == "features"
    assert len(m.history_["loss"]) == 2
    info = m.similarity_info_
    assert 0 < info["d_l"] < info["mode"] < info["d_r"]
    assert info["frac_similar"] > 0 and info["frac_dissimilar"] > 0
    # More epochs lower the training loss (the loss really is being minimised).
    longer = SSDH(n_bits=8, **{**FAST, "epochs": 6}).fit(X)
    assert longer.history_["loss"][-1] < longer.history_["loss"][0]


def test_two_fits_with_one_seed_are_identical_and_seeds_differ():
    X, _ = _blobs()
    a = SSDH(n_bits=8, random_state=3, **FAST).fit(X)
    b = SSDH(n_bits=8, random_state=3, **FAST).fit(X)
    np.testing.assert_array_equal(a.project(X), b.project(X))
    c = SSDH(n_bits=8, random_state=4, **FAST).fit(X)
    assert not np.array_equal(a.project(X), c.project(X))


def test_encoding_held_out_data_does_not_change_the_model():
    X, _ = _blobs()
    held_out = np.abs(np.random.default_rng(9).standard_normal((30, X.shape[1]))).astype(np.float32)
    m = SSDH(n_bits=8, **FAST).fit(X)
    before = {k: v.clone() for k, v in m.net_.state_dict().items()}
    first = m.encode(X)
    m.encode(held_out)
    for k, v in m.net_.state_dict().items():
        assert torch.equal(v, before[k]), k
    np.testing.assert_array_equal(m.encode(X), first)


def test_validation_part_comes_from_the_training_set_and_selects_an_epoch():
    X, _ = _blobs()
    m = SSDH(n_bits=8, validation_fraction=0.25, patience=2, **{**FAST, "epochs": 4}).fit(X)
    assert len(m.history_["val_loss"]) == m.history_["epochs_run"]
    assert m.history_["best_epoch"] == 1 + int(np.argmin(m.history_["val_loss"]))


def test_checkpoint_resume_equals_an_uninterrupted_fit(tmp_path, monkeypatch):
    X, _ = _blobs()
    params = dict(n_bits=8, **{**FAST, "epochs": 3})
    reference = SSDH(**params).fit(X).project(X)

    calls = {"n": 0}
    real_step = SSDH.train_step

    def dying_step(self, ctx, idx):
        calls["n"] += 1
        if calls["n"] > 12:  # 10 batches per epoch: dies in epoch 2, after one checkpoint
            raise KeyboardInterrupt
        return real_step(self, ctx, idx)

    monkeypatch.setattr(SSDH, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        SSDH(checkpoint_dir=str(tmp_path), **params).fit(X)
    monkeypatch.setattr(SSDH, "train_step", real_step)
    resumed = SSDH(checkpoint_dir=str(tmp_path), **params).fit(X)
    assert resumed.history_["resumed_from"] == 1
    np.testing.assert_array_equal(resumed.project(X), reference)


def test_bad_parameters_and_inputs_raise_invalid_input():
    X, _ = _blobs()
    with pytest.raises(InvalidInput, match="track"):
        SSDH(track="pixels", **FAST).fit(X)
    with pytest.raises(InvalidInput, match="rule"):
        SSDH(rule="newest", **FAST).fit(X)
    with pytest.raises(InvalidInput, match="2-D"):
        SSDH(**FAST).fit(np.zeros((4, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(InvalidInput, match="uint8 images"):
        SSDH(track="end2end", weights=None, **FAST).fit(X)


def test_end2end_track_shapes_gradients_and_one_step():
    pytest.importorskip("hashbench.features.cnn")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    m = SSDH(n_bits=6, track="end2end", arch="alexnet", weights=None, epochs=1, batch_size=4, device="cpu")
    assert m.input == "images"
    m.fit(images)
    codes = m.encode(images[:3])
    assert codes.shape == (3, 6) and codes.dtype == bool
    assert m.image_shape_ == (32, 32, 3)

    # Gradients reach both the first convolution and the hash layer; an Adam step moves them.
    net = m.net_
    net.train()
    from hashbench.nets import preprocess_images

    S = torch.tensor([[1, -1, 1, -1], [-1, 1, -1, 1], [1, -1, 1, -1], [-1, 1, -1, 1]])
    loss = ssdh_loss(net(preprocess_images(images)), S)
    loss.backward()
    first_conv = next(p for p in net.body.parameters() if p.ndim == 4)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    assert net.hash_layer.weight.grad.abs().sum() > 0
    before = net.hash_layer.weight.detach().clone()
    torch.optim.Adam(net.parameters(), lr=1e-3, eps=1.0).step()
    assert not torch.equal(before, net.hash_layer.weight)


@pytest.mark.slow
def test_ssdh_beats_lsh_on_digits_pixels():
    # The digits protocol (500 train, 100 queries, 1,697 database) at 32 bits: learning from the
    # semantic structure must beat random projections.
    from hashbench_baselines.lsh import LSH
    from sklearn.datasets import load_digits

    from hashbench.datasets.protocols import make_split
    from hashbench.metrics import evaluate

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    split = make_split("digits", y, seed=0)
    tr, q, db = split["train"], split["query"], split["database"]
    scores = {}
    for name, m in [("lsh", LSH(32)), ("ssdh", SSDH(32, device="cpu"))]:
        m.fit(X[tr])
        scores[name] = evaluate(m.encode(X[q]), m.encode(X[db]), y[q], y[db])["map"]
    assert scores["ssdh"] > scores["lsh"] + 0.05, scores
