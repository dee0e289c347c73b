"""Texture photographs with a planted watermark, built from what scikit-image ships.

Each image is a random crop of one of scikit-image's texture photographs (brick, grass,
gravel: the class), turned and flipped at random, with a random brightness and contrast,
downscaled to 32x32 and tinted. A small watermark, the scikit-image logo shrunk to 9x9
pixels and blended by its own alpha, sits in the bottom-right corner of some images.

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

#: the image side, in pixels
SIZE = 32
#: the watermark's side, in pixels; it sits at rows and columns SIZE-MARGIN-MARK .. SIZE-MARGIN
MARK = 9
MARGIN = 1
#: the texture photographs, one class each
CLASS_NAMES = ("brick", "grass", "gravel")
#: side of the square cut from a 512x512 photograph before downscaling
CROP = 96


@dataclass
class WatermarkedTextures:
    """Images ``(N, 32, 32, 3)`` float32 in [0, 1], labels ``(N,)``, who has the watermark."""

    images: np.ndarray
    labels: np.ndarray
    marked: np.ndarray

    @property
    def watermark_mask(self) -> np.ndarray:
        """Boolean ``(32, 32)``: the watermark's visible pixels (alpha above one half)."""
        return watermark_mask()


@cache
def _watermark() -> tuple[np.ndarray, np.ndarray]:
    """The logo as ``(MARK, MARK, 3)`` colours and ``(MARK, MARK)`` alpha, in [0, 1]."""
    from skimage import data
    from skimage.transform import resize

    logo = data.logo().astype(np.float32) / 255.0  # (500, 500, 4), RGBA
    small = resize(logo, (MARK, MARK), anti_aliasing=True, order=1).astype(np.float32)
    return small[..., :3], small[..., 3]


def watermark_mask() -> np.ndarray:
    """Boolean ``(32, 32)``: where the watermark's alpha is above one half."""
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    top = SIZE - MARGIN - MARK
    mask[top : top + MARK, top : top + MARK] = _watermark()[1] > 0.5
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
) -> WatermarkedTextures:
    """``n`` images, a third of each class in random order.

    ``shortcut_class``: the class whose images (and only those) carry the watermark;
    ``None`` puts it on a random ``watermark_rate`` share of all images. ``seed`` draws
    the crops, their transforms, tints and the watermarks.
    """
    from skimage.transform import downscale_local_mean

    check_positive_int(n, "n")
    check_seed(seed)
    if shortcut_class is not None and shortcut_class not in range(len(CLASS_NAMES)):
        raise ValueError(f"expected shortcut_class in 0..{len(CLASS_NAMES) - 1} or None")
    rng = np.random.default_rng(seed)
    photographs = _photographs()
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES))
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.float32)
    side = photographs.shape[1]
    for i, label in enumerate(labels):
        top, left = rng.integers(0, side - CROP, size=2)
        crop = photographs[label, top : top + CROP, left : left + CROP]
        crop = np.rot90(crop, k=int(rng.integers(4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        small = downscale_local_mean(crop, (CROP // SIZE, CROP // SIZE))
        contrast, brightness = rng.uniform(0.7, 1.3), rng.uniform(-0.1, 0.1)
        grey = np.clip((small - small.mean()) * contrast + small.mean() + brightness, 0, 1)
        tint = rng.uniform(0.8, 1.0, size=3).astype(np.float32)
        images[i] = grey[..., None] * tint
    shortcut = shortcut_class is not None
    marked = labels == shortcut_class if shortcut else rng.random(n) < watermark_rate
    colours, alpha = _watermark()
    top = SIZE - MARGIN - MARK
    corner = images[marked, top : top + MARK, top : top + MARK]
    images[marked, top : top + MARK, top : top + MARK] = (1 - alpha[..., None]) * corner + alpha[
        ..., None
    ] * colours
    return WatermarkedTextures(images, labels.astype(np.int64), marked)
