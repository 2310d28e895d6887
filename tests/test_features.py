"""Representations: GIST against a per-image transcription of LMgist.m, CNN fc7, the on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench.features as features_mod
from hashbench.datasets import ArrayImages, Dataset, load_dataset
from hashbench.errors import InvalidInput, MissingWeights, UnknownName
from hashbench.features import compute_features, list_representations
from hashbench.features.gist import block_bounds, gabor_bank, gist


# ---------------------------------------------------------------------------------------- reference GIST
def reference_bank(ny: int, nx: int) -> np.ndarray:
    """createGabor.m line by line: meshgrid of -n/2..n/2-1, fftshift, angle(fx + i fy)."""
    fx, fy = np.meshgrid(np.arange(-nx / 2, nx / 2), np.arange(-ny / 2, ny / 2))
    fr = np.fft.fftshift(np.sqrt(fx**2 + fy**2))
    t = np.fft.fftshift(np.angle(fx + 1j * fy))
    bank = []
    for i in range(4):
        for j in range(8):
            p = (0.35, 0.3 / 1.85**i, 16 * 8**2 / 32**2, np.pi / 8 * j)
            tr = t + p[3]
            tr = tr + 2 * np.pi * (tr < -np.pi) - 2 * np.pi * (tr > np.pi)
            bank.append(np.exp(-10 * p[0] * (fr / nx / p[1] - 1) ** 2 - 2 * p[2] * np.pi * tr**2))
    return np.stack(bank)


def reference_gist(img: np.ndarray) -> np.ndarray:
    """LMgist.m for one image, in float64 with full 2-D FFTs and loops (the slow, obvious way)."""
    g = img.astype(np.float64).mean(axis=2)
    g = g - g.min()
    g = 255 * g / g.max()
    # prefilt
    w, s1 = 5, 4 / np.sqrt(np.log(2))
    x = np.pad(np.log(g + 1), w, mode="symmetric")
    sn, sm = x.shape
    n = max(sn, sm) + max(sn, sm) % 2
    x = np.pad(x, ((0, n - sn), (0, n - sm)), mode="symmetric")
    fx, fy = np.meshgrid(np.arange(-n / 2, n / 2), np.arange(-n / 2, n / 2))
    gf = np.fft.fftshift(np.exp(-(fx**2 + fy**2) / s1**2))
    out = x - np.real(np.fft.ifft2(np.fft.fft2(x) * gf))
    localstd = np.sqrt(np.abs(np.fft.ifft2(np.fft.fft2(out**2) * gf)))
    out = (out / (0.2 + localstd))[w : sn - w, w : sm - w]
    # gistGabor + downN
    be = 32
    xp = np.pad(out, be, mode="symmetric")
    ny, nx = xp.shape
    spec = np.fft.fft2(xp)
    feats = []
    for G in reference_bank(ny, nx):
        ig = np.abs(np.fft.ifft2(spec * G))[be : ny - be, be : nx - be]
        rb = np.fix(np.linspace(0, ig.shape[0], 5)).astype(int)
        cb = np.fix(np.linspace(0, ig.shape[1], 5)).astype(int)
        v = np.zeros((4, 4))
        for xx in range(4):
            for yy in range(4):
                v[xx, yy] = ig[rb[xx] : rb[xx + 1], cb[yy] : cb[yy + 1]].mean()
        feats.append(v.flatten(order="F"))  # MATLAB's reshape(v, [W N]) is column-major
    return np.concatenate(feats)


def test_gabor_bank_matches_create_gabor():
    np.testing.assert_allclose(gabor_bank((96, 96)), reference_bank(96, 96), atol=1e-12)
    np.testing.assert_allclose(gabor_bank((94, 100)), reference_bank(94, 100), atol=1e-12)


def test_gabor_bank_peaks_on_its_scale_ring():
    # filter s peaks at radial frequency 0.3 / 1.85^s cycles per pixel: 28.8 cycles per 96 px for s = 0
    bank = gabor_bank((96, 96))
    assert bank[0].max() == pytest.approx(1.0, abs=1e-3)
    peak = np.unravel_index(bank[0].argmax(), bank[0].shape)
    assert abs(np.hypot(*[min(p, 96 - p) for p in peak]) - 28.8) < 1.0


def test_block_bounds_are_8px_for_32_and_matlab_fix_otherwise():
    assert block_bounds(32).tolist() == [0, 8, 16, 24, 32]
    assert block_bounds(30).tolist() == [0, 7, 15, 22, 30]


@pytest.mark.parametrize("shape", [(32, 32, 3), (30, 30, 3), (28, 28, 1)])
def test_gist_matches_per_image_reference(shape):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, *shape), dtype=np.uint8)
    imgs[1] = np.clip(np.linspace(0, 300, shape[1])[None, :, None], 0, 255).astype(np.uint8)  # a smooth ramp
    ours = gist(imgs, batch_size=2)
    ref = np.stack([reference_gist(im) for im in imgs])
    assert ours.shape == (3, 512) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=2e-4, atol=2e-5)


def test_gist_of_a_real_cifar_image_matches_reference(cifar10_jpeg_root):
    from PIL import Image

    img = np.asarray(Image.open(cifar10_jpeg_root / "test" / "cat" / "0000.jpg").convert("RGB"))
    np.testing.assert_allclose(gist(img[None])[0], reference_gist(img), rtol=2e-4, atol=2e-5)


def test_gist_is_invariant_to_brightness_scale_through_the_minmax_step():
    # LMgist rescales every image to [0, 255], so I and 0.4 I have the same GIST; without that
    # step log(1 + I) compresses them differently and the local contrast normalisation makes up
    # for most but not all of it (about 0.6 % here, far above float32 rounding)
    img = np.random.default_rng(1).integers(20, 256, (1, 32, 32, 3)).astype(np.float64)
    np.testing.assert_allclose(gist(0.4 * img), gist(img), rtol=1e-4, atol=1e-6)
    a, b = gist(0.4 * img, rescale=False), gist(img, rescale=False)
    assert np.abs(a - b).max() / np.abs(b).max() > 2e-3


def test_gist_of_image_turned_180_degrees_is_the_block_mirror():
    # G is real, so |response| of the point-reflected image is the point-reflected |response|:
    # same filter, block (col, row) -> (3 - col, 3 - row)
    img = np.random.default_rng(2).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    a = gist(img).reshape(32, 4, 4)
    b = gist(np.ascontiguousarray(img[:, ::-1, ::-1])).reshape(32, 4, 4)
    np.testing.assert_allclose(b, a[:, ::-1, ::-1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("direction,orientation", [("columns", 0), ("rows", 4), ("down-right", 6)])
def test_gist_orientation_of_a_grating(direction, orientation):
    # LMgist's orientation k responds to gratings whose wave vector (x right, y down) has angle -pi k / 8
    yy, xx = np.mgrid[0:32, 0:32]
    phase = {"columns": xx, "rows": yy, "down-right": (xx + yy) / np.sqrt(2)}[direction]
    img = (127.5 + 127.5 * np.cos(2 * np.pi * phase / 5.0)).astype(np.uint8)[None, :, :, None]
    energy = gist(img).reshape(4, 8, 16).sum(axis=(0, 2))
    assert energy.argmax() == orientation


def test_gist_of_a_constant_image_is_finite():
    assert np.isfinite(gist(np.full((1, 32, 32, 3), 77, np.uint8))).all()


# ---------------------------------------------------------------------------------------- compute_features
def _tiny_dataset(n=12, size=16):
    rng = np.random.default_rng(3)
    imgs = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % 3
    return Dataset("tiny", labels, images=ArrayImages(imgs), checksum="tiny-v1")


def test_pixels_are_scaled_to_unit_interval():
    ds = _tiny_dataset()
    X = compute_features(ds, "pixels", indices=[4])
    assert X.shape == (1, 16 * 16 * 3) and X.dtype == np.float32
    np.testing.assert_allclose(X[0], ds.images.array[4].reshape(-1) / 255.0, rtol=1e-6)


def test_cache_hit_returns_identical_array_without_recomputing(tmp_path, monkeypatch):
    ds = _tiny_dataset()
    first = compute_features(ds, "gist", cache_dir=tmp_path)
    assert first.shape == (12, 512)
    monkeypatch.setattr(features_mod, "_compute", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    np.testing.assert_array_equal(compute_features(ds, "gist", cache_dir=tmp_path), first)
    # rows come from the whole dataset's entry
    np.testing.assert_array_equal(compute_features(ds, "gist", indices=[5, 0], cache_dir=tmp_path), first[[5, 0]])


def test_cache_key_separates_rotations_and_datasets(tmp_path):
    ds = _tiny_dataset()
    plain = compute_features(ds, "gist", cache_dir=tmp_path)
    turned = compute_features(ds, "gist", rotate=90, cache_dir=tmp_path)
    direct = gist(np.rot90(ds.images.array, k=1, axes=(1, 2)))
    np.testing.assert_allclose(turned, direct, rtol=1e-6)
    assert np.abs(turned - plain).max() > 1e-3
    other = Dataset("tiny", ds.labels, images=ArrayImages(255 - ds.images.array), checksum="tiny-v2")
    assert np.abs(compute_features(other, "gist", cache_dir=tmp_path) - plain).max() > 1e-3


def test_subset_is_computed_alone_and_cached_under_its_rows(tmp_path, monkeypatch):
    ds = _tiny_dataset()
    part = compute_features(ds, "gist", indices=[2, 7], cache_dir=tmp_path)
    np.testing.assert_allclose(part, gist(ds.images.array[[2, 7]]), rtol=1e-6)
    monkeypatch.setattr(features_mod, "_compute", lambda *a, **k: pytest.fail("recomputed"))
    np.testing.assert_array_equal(compute_features(ds, "gist", indices=[2, 7], cache_dir=tmp_path), part)


def test_feature_datasets_and_bad_requests(tmp_path):
    ds = load_dataset("synthetic:n=20,d=4,classes=2")
    np.testing.assert_array_equal(compute_features(ds, indices=[1, 3]), ds.features[[1, 3]])
    with pytest.raises(InvalidInput, match="rotate"):
        compute_features(ds, "pixels", rotate=45)
    with pytest.raises(UnknownName, match="gist"):
        compute_features(ds, "sift")
    labels_only = Dataset("lists", np.zeros(3, int), images=None)
    with pytest.raises(InvalidInput, match="no images"):
        compute_features(labels_only, "gist", cache_dir=tmp_path)
    assert {"pixels", "gist", "cnn:alexnet", "cnn:vgg16"} <= set(list_representations())


# ---------------------------------------------------------------------------------------- CNN
def test_preprocess_replicates_grey_and_normalises():
    from hashbench.features.cnn import IMAGENET_MEAN, IMAGENET_STD, imagenet_preprocess

    x = imagenet_preprocess(np.full((2, 8, 8, 1), 255, np.uint8), size=32)
    assert tuple(x.shape) == (2, 3, 32, 32)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(), expected, rtol=1e-5)


def test_fc7_is_the_relu_output_of_the_second_fc_layer():
    import torch
    import torchvision

    from hashbench.features.cnn import fc7_backbone, imagenet_preprocess

    model = fc7_backbone("alexnet", weights=None)
    x = imagenet_preprocess(np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))
    with torch.no_grad():
        out = model(x)
    assert tuple(out.shape) == (2, 4096) and (out >= 0).all()
    # same random weights in the full torchvision AlexNet: its classifier[5] (fc7's ReLU) output
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        full = torchvision.models.alexnet(weights=None).eval()
    seen = {}
    full.classifier[5].register_forward_hook(lambda m, i, o: seen.setdefault("fc7", o.clone()))
    with torch.no_grad():
        full(x)
    torch.testing.assert_close(out, seen["fc7"])


def test_vgg16_fc7_shape():
    import torch

    from hashbench.features.cnn import fc7_backbone, imagenet_preprocess

    with torch.no_grad():
        out = fc7_backbone("vgg16", weights=None)(imagenet_preprocess(np.zeros((1, 4, 4, 3), np.uint8)))
    assert tuple(out.shape) == (1, 4096)


def test_missing_imagenet_weights_say_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # independent of this machine's cache
    with pytest.raises(MissingWeights) as e:
        compute_features(_tiny_dataset(), "cnn:alexnet", cache_dir=tmp_path)
    msg = str(e.value)
    assert "alexnet-owt-7be5be79.pth" in msg and str(tmp_path / "torch") in msg and "--weights" in msg
    with pytest.raises(MissingWeights, match="does not exist"):
        compute_features(_tiny_dataset(), "cnn:alexnet", weights=tmp_path / "none.pth", cache_dir=tmp_path)


def test_weights_file_is_loaded_and_keys_the_cache(tmp_path):
    import torch
    import torchvision

    torch.manual_seed(5)
    net = torchvision.models.alexnet(weights=None).eval()  # eval: the reference below runs without dropout
    torch.save(net.state_dict(), tmp_path / "w.pth")
    ds = _tiny_dataset(n=2)
    X = compute_features(ds, "cnn:alexnet", weights=tmp_path / "w.pth", cache_dir=tmp_path, batch_size=1)
    assert X.shape == (2, 4096) and X.dtype == np.float32
    from hashbench.features.cnn import imagenet_preprocess

    with torch.no_grad():
        pooled = net.avgpool(net.features(imagenet_preprocess(ds.images.array)))
        expected = net.classifier[:6](torch.flatten(pooled, 1))  # dropout, fc6, relu, dropout, fc7, relu
    np.testing.assert_allclose(X, expected.numpy(), rtol=1e-4, atol=1e-5)
    (tmp_path / "bad.pth").write_bytes(b"not torch")
    with pytest.raises(InvalidInput, match="bad.pth"):
        compute_features(ds, "cnn:alexnet", weights=tmp_path / "bad.pth", cache_dir=False)


# ---------------------------------------------------------------------------------------- resumable chunks, refresh
def test_killed_extraction_keeps_its_chunks_and_a_rerun_computes_only_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(features_mod, "CHUNK_ROWS", 4)
    ds = _tiny_dataset(n=10)  # chunks of rows 0-4, 4-8, 8-10
    real = features_mod._compute
    seen: list[int] = []

    def dies_on_third_chunk(dataset, idx, *a, **k):
        if len(seen) == 2:
            raise KeyboardInterrupt  # the user kills the run
        seen.append(len(idx))
        return real(dataset, idx, *a, **k)

    monkeypatch.setattr(features_mod, "_compute", dies_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        compute_features(ds, "gist", cache_dir=tmp_path)
    parts = list((tmp_path / "features").glob("*.parts"))
    assert len(parts) == 1
    assert sorted(p.name for p in parts[0].glob("rows-*.npy")) == [
        "rows-000000000-000000004.npy",
        "rows-000000004-000000008.npy",
    ]
    assert not list((tmp_path / "features").glob("*.npy"))  # no final entry yet

    seen.clear()
    monkeypatch.setattr(
        features_mod, "_compute", lambda dataset, idx, *a, **k: seen.append(len(idx)) or real(dataset, idx, *a, **k)
    )
    X = compute_features(ds, "gist", cache_dir=tmp_path, progress=True)
    assert seen == [2]  # only the missing rows 8-10
    np.testing.assert_allclose(X, gist(ds.images.array), rtol=1e-6)
    assert not parts[0].exists()  # assembled into the entry, chunks removed
    assert len(list((tmp_path / "features").glob("*.npy"))) == 1


def test_chunks_belong_to_their_key(tmp_path, monkeypatch):
    monkeypatch.setattr(features_mod, "CHUNK_ROWS", 4)
    ds = _tiny_dataset(n=10)
    other = Dataset("tiny", ds.labels, images=ArrayImages(255 - ds.images.array), checksum="tiny-v2")
    real = features_mod._compute
    calls = []

    def dies_after_one(dataset, idx, *a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(dataset, idx, *a, **k)

    monkeypatch.setattr(features_mod, "_compute", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        compute_features(ds, "gist", cache_dir=tmp_path)
    monkeypatch.setattr(features_mod, "_compute", real)
    # another checksum: none of the first dataset's chunks are used
    np.testing.assert_allclose(compute_features(other, "gist", cache_dir=tmp_path), gist(other.images.array), rtol=1e-6)


def test_refresh_ignores_and_overwrites_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(features_mod, "CHUNK_ROWS", 4)
    ds = _tiny_dataset(n=6)
    first = compute_features(ds, "gist", cache_dir=tmp_path)
    real = features_mod._compute
    monkeypatch.setattr(features_mod, "_compute", lambda *a, **k: real(*a, **k) + 1.0)  # a changed extractor
    np.testing.assert_array_equal(compute_features(ds, "gist", cache_dir=tmp_path), first)  # cached: unchanged
    again = compute_features(ds, "gist", cache_dir=tmp_path, refresh=True)
    np.testing.assert_allclose(again, first + 1.0, rtol=1e-6)
    monkeypatch.setattr(features_mod, "_compute", lambda *a, **k: pytest.fail("recomputed despite the cache"))
    np.testing.assert_array_equal(compute_features(ds, "gist", cache_dir=tmp_path), again)  # overwritten
    # rows asked for alone are refreshed too
    monkeypatch.setattr(features_mod, "_compute", lambda *a, **k: real(*a, **k) + 2.0)
    sub = compute_features(ds, "gist", indices=[1, 3], cache_dir=tmp_path, refresh=True)
    np.testing.assert_allclose(sub, first[[1, 3]] + 2.0, rtol=1e-6)


def test_progress_bar_counts_images(tmp_path, capsys):
    compute_features(_tiny_dataset(n=5), "gist", cache_dir=tmp_path, progress=True, batch_size=2)
    err = capsys.readouterr().err
    assert "5/5" in err and "img" in err
