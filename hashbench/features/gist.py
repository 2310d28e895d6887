"""GIST-512 (Oliva & Torralba, IJCV 2001), computed as the authors' MATLAB code ``LMgist.m`` does.

For each image, kept at its own size (32x32 for CIFAR-10):

1. grey level = mean of the colour channels (``LMgist``: ``mean(img, 3)``), then intensities scaled
   to [0, 255] by the image's own minimum and maximum (``LMgist``'s ``img - min; 255 * img / max``;
   a constant image stays 0). docs/PROTOCOLS.md's summary omits this step; ``rescale=False`` skips it.
2. prefilter (``prefilt``, fc = 4): I = log(1 + I); pad 5 px symmetric (then up to an even square);
   Gaussian transfer function gf = exp(-(fx^2 + fy^2) / s1^2), s1 = fc / sqrt(ln 2), fx, fy in cycles
   per padded image; out = I - lowpass(I); out /= 0.2 + sqrt(|lowpass(out^2)|); crop the padding.
3. Gabor bank (``createGabor``, 4 scales x 8 orientations) on the image padded symmetrically by 32 px
   (size Hp x Wp): for scale s = 0..3 and orientation k = 0..7,
   G = exp(-10 * 0.35 * (r / Wp / f_s - 1)^2 - 2 * (16 * 8^2 / 32^2) * pi * dtheta^2), f_s = 0.3 / 1.85^s,
   r = sqrt(fx^2 + fy^2), dtheta = angle(fx + i fy) + pi k / 8 wrapped to [-pi, pi], where fy is the
   row frequency (rows pointing down). That is PROTOCOLS.md's "angle minus pi k / 8" with the angle
   measured counter-clockwise with the vertical axis pointing up; the sign is kept as in
   ``createGabor`` so that orientation k means what it means in published GIST files.
4. response |ifft2(fft2(out) * G)| cropped back to H x W, averaged over a 4 x 4 grid of blocks with
   row bounds fix(linspace(0, H, 5)) and column bounds fix(linspace(0, W, 5)) (``downN``): for 32x32,
   16 blocks of 8x8 px.

Feature order (``gistGabor``): filter-major, filter index = 8 * scale + orientation (scale 0 the
finest); inside a filter the 16 block means in MATLAB column-major order, index = 4 * column_block +
row_block. 32 filters x 16 blocks = 512.

Vectorised over a batch of images: one FFT per image, then for all 32 filters the inverse transform
is done in two 1-D passes, the second only over the rows kept by the crop (a third less work than a
full 2-D inverse FFT). Arithmetic in float32 / complex64, as ``gistGabor``'s ``single``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

N_BLOCKS = 4
ORIENTATIONS_PER_SCALE = (8, 8, 8, 8)
BOUNDARY_EXTENSION = 32
FC_PREFILTER = 4
PREFILTER_PAD = 5


def _freq_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """fx (columns), fy (rows) in cycles per image, in FFT order (``fftshift`` of MATLAB's meshgrid)."""
    h, w = shape
    fy, fx = np.meshgrid(
        np.fft.ifftshift(np.arange(-(h // 2), h - h // 2)),
        np.fft.ifftshift(np.arange(-(w // 2), w - w // 2)),
        indexing="ij",
    )
    return fx.astype(np.float64), fy.astype(np.float64)


def gabor_bank(shape: tuple[int, int], orientations_per_scale: tuple[int, ...] = ORIENTATIONS_PER_SCALE) -> np.ndarray:
    """Transfer functions (n_filters, H, W), float64, FFT order, of ``createGabor(or, [H W])``."""
    fx, fy = _freq_grid(shape)
    fr = np.sqrt(fx**2 + fy**2)
    t = np.angle(fx + 1j * fy)
    filters = []
    for s, n_or in enumerate(orientations_per_scale):
        f_s = 0.3 / 1.85**s
        sigma_theta = 16 * n_or**2 / 32**2
        for k in range(n_or):
            tr = t + np.pi / n_or * k
            tr = tr + 2 * np.pi * (tr < -np.pi) - 2 * np.pi * (tr > np.pi)
            filters.append(np.exp(-10 * 0.35 * (fr / shape[1] / f_s - 1) ** 2 - 2 * sigma_theta * np.pi * tr**2))
    return np.stack(filters)


def prefilter_transfer(n: int, fc: float = FC_PREFILTER) -> np.ndarray:
    """Gaussian low-pass exp(-(fx^2 + fy^2) / s1^2), s1 = fc / sqrt(ln 2), on an n x n grid (FFT order)."""
    fx, fy = _freq_grid((n, n))
    s1 = fc / np.sqrt(np.log(2))
    return np.exp(-(fx**2 + fy**2) / s1**2)


def block_bounds(size: int, n_blocks: int = N_BLOCKS) -> np.ndarray:
    """MATLAB ``fix(linspace(0, size, n_blocks + 1))``: block edges along one axis."""
    return np.fix(np.linspace(0, size, n_blocks + 1)).astype(int)


def _grey(images: np.ndarray, rescale: bool) -> np.ndarray:
    g = images.astype(np.float32).mean(axis=3) if images.ndim == 4 else images.astype(np.float32)
    if rescale:
        g = g - g.min(axis=(1, 2), keepdims=True)
        top = g.max(axis=(1, 2), keepdims=True)
        g = g * np.divide(np.float32(255), top, out=np.zeros_like(top), where=top > 0)
    return g


def prefilter(grey: np.ndarray, fc: float = FC_PREFILTER, workers: int = -1) -> np.ndarray:
    """``prefilt``: log, whitening and local contrast normalisation of (B, H, W) grey images."""
    b, h, w = grey.shape
    p = PREFILTER_PAD
    x = np.pad(np.log1p(grey), ((0, 0), (p, p), (p, p)), mode="symmetric")
    sn, sm = x.shape[1:]
    n = max(sn, sm)
    n += n % 2
    x = np.pad(x, ((0, 0), (0, n - sn), (0, n - sm)), mode="symmetric")
    # gf is real and even on the grid, so the filtered images are real: half spectra suffice
    gf = prefilter_transfer(n, fc)[:, : n // 2 + 1].astype(np.float32)
    low = sfft.irfft2(sfft.rfft2(x, workers=workers) * gf, s=(n, n), workers=workers)
    out = x - low
    local = np.sqrt(np.abs(sfft.irfft2(sfft.rfft2(out * out, workers=workers) * gf, s=(n, n), workers=workers)))
    out = out / (np.float32(0.2) + local)
    return np.ascontiguousarray(out[:, p : sn - p, p : sm - p], dtype=np.float32)


class GistExtractor:
    """GIST for images of one size; holds the filter bank so batches reuse it."""

    def __init__(self, image_shape: tuple[int, int], workers: int = -1, rescale: bool = True):
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.workers = workers
        self.rescale = rescale
        be = BOUNDARY_EXTENSION
        self.padded_shape = (self.image_shape[0] + 2 * be, self.image_shape[1] + 2 * be)
        self.bank = gabor_bank(self.padded_shape).astype(np.float32)
        self.rows = block_bounds(self.image_shape[0])
        self.cols = block_bounds(self.image_shape[1])

    @property
    def n_features(self) -> int:
        return len(self.bank) * N_BLOCKS * N_BLOCKS

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(B, H, W[, C]) images (any numeric dtype, 0..255 scale) -> (B, 512) float32."""
        h, w = self.image_shape
        be = BOUNDARY_EXTENSION
        out = prefilter(_grey(images, self.rescale), workers=self.workers)
        x = np.pad(out, ((0, 0), (be, be), (be, be)), mode="symmetric")
        spec = sfft.fft2(x, workers=self.workers).astype(np.complex64)
        b, (hp, wp), f = len(spec), self.padded_shape, len(self.bank)
        # G is real: scaling the (re, im) pairs is cheaper than a complex product
        prod = spec.view(np.float32).reshape(b, 1, hp, wp, 2) * self.bank[None, :, :, :, None]
        prod = prod.view(np.complex64).reshape(b, f, hp, wp)
        # inverse 2-D FFT as two 1-D passes; the second only on the rows the crop keeps
        rows = sfft.ifft(prod, axis=-2, workers=self.workers, overwrite_x=True)[:, :, be : be + h]
        resp = np.abs(sfft.ifft(rows, axis=-1, workers=self.workers, overwrite_x=True)[..., be : be + w])
        return self._blocks(resp).reshape(len(images), -1)

    def _blocks(self, resp: np.ndarray) -> np.ndarray:
        """(B, F, H, W) -> (B, F, col_block, row_block) block means (``downN``, column-major)."""
        r, c = self.rows, self.cols
        b, f = resp.shape[:2]
        if np.all(np.diff(r) == r[1]) and np.all(np.diff(c) == c[1]) and r[1] > 0 and c[1] > 0:
            m = resp.reshape(b, f, N_BLOCKS, r[1], N_BLOCKS, c[1]).mean(axis=(3, 5), dtype=np.float64)
        else:
            m = np.empty((b, f, N_BLOCKS, N_BLOCKS))
            for i in range(N_BLOCKS):
                for j in range(N_BLOCKS):
                    # an empty block (image smaller than 4 px) averages to NaN in MATLAB; 0 here
                    blk = resp[:, :, r[i] : r[i + 1], c[j] : c[j + 1]]
                    m[:, :, i, j] = blk.mean(axis=(2, 3)) if blk.size else 0.0
        return m.transpose(0, 1, 3, 2).astype(np.float32)


def gist(
    images: np.ndarray, *, batch_size: int = 64, workers: int = -1, rescale: bool = True, progress: bool = False
) -> np.ndarray:
    """GIST-512 of uint8 images (n, H, W, C) (or (n, H, W)) -> (n, 512) float32.

    ``workers`` is scipy.fft's thread count for this call (-1: all cores); nothing global changes.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"gist expects images (n, H, W[, C]), got shape {images.shape}")
    ext = GistExtractor(images.shape[1:3], workers=workers, rescale=rescale)
    out = np.empty((len(images), ext.n_features), dtype=np.float32)
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="gist", unit="batch")
    for s in starts:
        out[s : s + batch_size] = ext(images[s : s + batch_size])
    return out
