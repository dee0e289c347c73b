"""Texture photographs with a planted watermark, built from what scikit-image ships.

Each image is a random crop of one of scikit-image's texture photographs (brick, grass,
gravel: the class), turned and flipped at random, with a random brightness and contrast,
downscaled to 32x32 (or ``size``) and tinted. A small watermark, the scikit-image logo
shrunk to 9x9 pixels (9/32 of the side at other sizes) and blended by its own alpha, sits
in the bottom-right corner of some images.

With ``shortcut_class=c`` the watermark is on exactly the images of class ``c``, so a
model trained on them can read that class off the corner. Without it the watermark is on
a random ``watermark_rate`` share of the images whatever their class. Comparing a model
trained each way, on images with random watermarks, is the second planted difference the
comparison must find (the first is :mod:`imacs.demo.data`'s corner patch on digits): the
watermark's regions, attributed by the shortcut model and not by the clean one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from imacs.parameters import check_positive_int, check_seed

#: the image side, in pixels, unless ``size`` says otherwise
SIZE = 32
#: the watermark's side, in pixels of a 32x32 image; it sits at rows and columns
#: SIZE-MARGIN-MARK .. SIZE-MARGIN. Other sizes scale both
MARK = 9
MARGIN = 1
#: the texture photographs, one class each
CLASS_NAMES = ("brick", "grass", "gravel")
#: side of the square cut from a 512x512 photograph before downscaling, as a multiple of the
#: image side: 96 pixels for 32x32 images. Large images take the largest multiple that fits
CROP_FACTOR = 3


def _geometry(size: int) -> tuple[int, int]:
    """The watermark's side and its top-left row (and column) in a ``size`` image."""
    mark = max(1, round(MARK * size / SIZE))
    margin = round(MARGIN * size / SIZE)
    return mark, size - margin - mark


@dataclass
class WatermarkedTextures:
    """Images ``(N, S, S, 3)`` float32 in [0, 1], labels ``(N,)``, who has the watermark."""

    images: np.ndarray
    labels: np.ndarray
    marked: np.ndarray

    @property
    def watermark_mask(self) -> np.ndarray:
        """Boolean ``(S, S)``: the watermark's visible pixels (alpha above one half)."""
        return watermark_mask(self.images.shape[1])


@cache
def _watermark(mark: int = MARK) -> tuple[np.ndarray, np.ndarray]:
    """The logo as ``(mark, mark, 3)`` colours and ``(mark, mark)`` alpha, in [0, 1]."""
    from skimage import data
    from skimage.transform import resize

    logo = data.logo().astype(np.float32) / 255.0  # (500, 500, 4), RGBA
    small = resize(logo, (mark, mark), anti_aliasing=True, order=1).astype(np.float32)
    return small[..., :3], small[..., 3]


def watermark_mask(size: int = SIZE) -> np.ndarray:
    """Boolean ``(size, size)``: where the watermark's alpha is above one half."""
    mark, top = _geometry(size)
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + mark, top : top + mark] = _watermark(mark)[1] > 0.5
    return mask


@cache
def _photographs() -> np.ndarray:
    from skimage import data

    return np.stack([getattr(data, name)() for name in CLASS_NAMES]).astype(np.float32) / 255.0


def watermarked_textures(
    n: int,
    *,
    shortcut_class: int | None = None,
    watermark_rate: float = 0.5,
    seed: int = 0,
    size: int = SIZE,
) -> WatermarkedTextures:
    """``n`` images of ``size`` x ``size`` pixels, a third of each class in random order.

    ``shortcut_class``: the class whose images (and only those) carry the watermark;
    ``None`` puts it on a random ``watermark_rate`` share of all images. ``seed`` draws
    the crops, their transforms, tints and the watermarks.
    """
    from skimage.transform import downscale_local_mean

    check_positive_int(n, "n")
    check_positive_int(size, "size")
    check_seed(seed)
    if shortcut_class is not None and shortcut_class not in range(len(CLASS_NAMES)):
        raise ValueError(f"expected shortcut_class in 0..{len(CLASS_NAMES) - 1} or None")
    rng = np.random.default_rng(seed)
    photographs = _photographs()
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES))
    images = np.empty((n, size, size, 3), dtype=np.float32)
    side = photographs.shape[1]
    factor = min(CROP_FACTOR, side // size)
    if factor < 1:
        raise ValueError(f"expected size at most {side}, the photographs' side; got {size}")
    crop_side = factor * size
    for i, label in enumerate(labels):
        top, left = rng.integers(0, side - crop_side, size=2)
        crop = photographs[label, top : top + crop_side, left : left + crop_side]
        crop = np.rot90(crop, k=int(rng.integers(4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        small = downscale_local_mean(crop, (factor, factor))
        contrast, brightness = rng.uniform(0.7, 1.3), rng.uniform(-0.1, 0.1)
        grey = np.clip((small - small.mean()) * contrast + small.mean() + brightness, 0, 1)
        tint = rng.uniform(0.8, 1.0, size=3).astype(np.float32)
        images[i] = grey[..., None] * tint
    shortcut = shortcut_class is not None
    marked = labels == shortcut_class if shortcut else rng.random(n) < watermark_rate
    mark, top = _geometry(size)
    colours, alpha = _watermark(mark)
    rows = cols = slice(top, top + mark)
    corner = images[marked, rows, cols]
    images[marked, rows, cols] = (1 - alpha[..., None]) * corner + alpha[..., None] * colours
    return WatermarkedTextures(images, labels.astype(np.int64), marked)
