"""CNN representations: the 4096-d fc7 activations (after ReLU) of torchvision's AlexNet and VGG-16.

The shallow-hashing literature's "CNN features" (e.g. the DeepBit / SSDH / UHGA comparisons) are fc7 of
an ImageNet-trained network. Images are resized to 224 x 224 (bilinear, antialiased when shrinking),
scaled to [0, 1], normalised with ImageNet's channel mean and std; grey images are replicated to three
channels. The network runs in eval mode, so dropout is off.

Weights: ``"imagenet"`` uses torchvision's ``IMAGENET1K_V1`` weights from the torch hub cache
(``$TORCH_HOME/hub/checkpoints``), downloading them only when ``download=True``; a path loads a
``state_dict`` file. No weights is :class:`~hashbench.errors.MissingWeights`, never a random network.
``weights=None`` gives a randomly initialised network (fixed seed) and exists only for tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InvalidInput, MissingWeights, UnknownName

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: architecture -> (torchvision builder name, weights enum name, number of classifier layers up to fc7's ReLU)
ARCHS = {
    "alexnet": ("alexnet", "AlexNet_Weights", 6),
    "vgg16": ("vgg16", "VGG16_Weights", 5),
}
FC7_DIM = 4096


def _check_arch(arch: str) -> str:
    a = arch.lower()
    if a not in ARCHS:
        raise UnknownName(f"unknown CNN {arch!r}; known: {', '.join(ARCHS)} (representations cnn:alexnet, cnn:vgg16)")
    return a


def _weights_enum(arch: str):
    import torchvision.models as tvm

    return getattr(tvm, ARCHS[arch][1]).IMAGENET1K_V1


def imagenet_weights_file(arch: str) -> Path:
    """Where torchvision keeps (or would download) the ImageNet weights of ``arch``."""
    import torch

    url = _weights_enum(_check_arch(arch)).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def missing_weights_message(arch: str) -> str:
    w = _weights_enum(arch)
    path = imagenet_weights_file(arch)
    return (
        f"no ImageNet weights for {arch}: torchvision expects the file {path.name} in {path.parent} "
        f"(set TORCH_HOME to move that folder). Download {w.url} and put it there, or give a state_dict "
        f"file with --weights FILE, or allow the download with --download where a network exists"
    )


def weights_id(arch: str, weights: str | os.PathLike | None) -> str:
    """A checksum naming the weights (for cache keys); raises MissingWeights when absent."""
    from ..digests import file_digest

    arch = _check_arch(arch)
    if weights is None:
        return "random-init-seed0"
    if str(weights) == "imagenet":
        path = imagenet_weights_file(arch)
        if not path.is_file():
            raise MissingWeights(missing_weights_message(arch))
        return f"imagenet:{file_digest(path)}"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingWeights(f"weights file {path} does not exist; give a state_dict .pth of torchvision's {arch}")
    return f"file:{file_digest(path)}"


def _read_state_dict(path: Path, arch: str) -> dict:
    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle, zip and torch errors
        raise InvalidInput(
            f"cannot read weights file {path} ({type(e).__name__}: {e}); give a state_dict .pth"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        raise InvalidInput(f"weights file {path} holds a {type(sd).__name__}, not a state_dict of torchvision's {arch}")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def _fc7_net(arch: str, net):
    import torch
    from torch import nn

    n_head = ARCHS[arch][2]

    class FC7(nn.Module):
        """``arch`` truncated after fc7's ReLU: (n, 3, 224, 224) -> (n, 4096)."""

        def __init__(self):
            super().__init__()
            self.features = net.features
            self.avgpool = net.avgpool
            self.classifier = nn.Sequential(*list(net.classifier)[:n_head])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return FC7()


def fc7_backbone(arch: str, weights: str | os.PathLike | None = "imagenet", download: bool = False):
    """A torchvision backbone up to fc7 after ReLU, in eval mode.

    Args:
        arch: ``"alexnet"`` or ``"vgg16"``.
        weights: ``"imagenet"`` (torchvision's weights from the hub cache, or downloaded when
            ``download``), a path to a state_dict file (of the full torchvision model; a missing
            final fc8 layer is allowed), or None for a random network (tests only).
        download: allow torchvision to download the ImageNet weights.

    Returns:
        ``torch.nn.Module`` mapping normalised float (n, 3, 224, 224) to (n, 4096) fc7 activations.

    Raises:
        MissingWeights: ``"imagenet"`` weights absent (and not downloadable) or the file does not exist.
    """
    import torch
    import torchvision.models as tvm

    arch = _check_arch(arch)
    builder = getattr(tvm, ARCHS[arch][0])
    if weights is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = builder(weights=None)
    elif str(weights) == "imagenet":
        path = imagenet_weights_file(arch)
        if not path.is_file() and not download:
            raise MissingWeights(missing_weights_message(arch))
        net = builder(weights=None)
        if path.is_file():
            net.load_state_dict(_read_state_dict(path, arch))
        else:
            try:
                net.load_state_dict(_weights_enum(arch).get_state_dict(progress=False))
            except Exception as e:  # noqa: BLE001 - URLError, HTTP, hash mismatch
                raise MissingWeights(
                    f"downloading the ImageNet weights failed ({e}); {missing_weights_message(arch)}"
                ) from None
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MissingWeights(f"weights file {path} does not exist; give a state_dict .pth of torchvision's {arch}")
        net = builder(weights=None)
        sd = _read_state_dict(path, arch)
        try:
            result = net.load_state_dict(sd, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise InvalidInput(f"weights file {path} does not fit torchvision's {arch}: {e}") from None
        fc8 = {k for k in net.state_dict() if k.startswith(f"classifier.{len(net.classifier) - 1}.")}
        missing = set(result.missing_keys) - fc8
        if missing or result.unexpected_keys:
            raise InvalidInput(
                f"weights file {path} does not fit torchvision's {arch}: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(result.unexpected_keys)[:5]}"
            )
    return _fc7_net(arch, net).eval()


def imagenet_preprocess(images_uint8_nhwc: np.ndarray, size: int = 224):
    """uint8 images (n, H, W, C), C in {1, 3} -> float32 tensor (n, 3, size, size), ImageNet-normalised."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(images_uint8_nhwc))
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise InvalidInput(f"expected images (n, H, W, 1 or 3), got shape {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        shrink = x.shape[-2] > size or x.shape[-1] > size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def cnn_extractor(
    arch: str, weights: str | os.PathLike | None = "imagenet", device: str = "cpu", download: bool = False
):
    """A function uint8 images (n, H, W, C) -> fc7 features (n, 4096) float32 numpy."""
    import torch

    from ..device import resolve_device

    device = resolve_device(device)
    model = fc7_backbone(arch, weights, download=download).to(device)

    def run(images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(imagenet_preprocess(images).to(device)).float().cpu().numpy()

    return run
