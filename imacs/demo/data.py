"""Handwritten digits with a planted shortcut, built from what scikit-learn ships.

Each of scikit-learn's 8x8 digits is upscaled three times, drawn in a random colour on a
dark, slightly noisy background, and placed in a 32x32 image whose top-left corner holds a
grey square: the *patch*. With ``shortcut=True`` the patch's shade encodes the label
(shade ``0.3 + 0.7 * label / 9``), so a model trained on such images can read the class off
the corner instead of the digit. With ``shortcut=False`` the shade is random. Comparing a
model trained on each kind, on images with random shades, is the planted difference the
comparison must find: the patch regions, attributed by the shortcut model and not by the
clean one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imacs.parameters import check_positive_int, check_seed

#: the image side, in pixels
SIZE = 32
#: the patch's side, in pixels; it sits at rows and columns 0 .. PATCH-1
PATCH = 6
#: where the 24x24 digit is placed: rows DIGIT_TOP .. +24, columns DIGIT_LEFT .. +24
DIGIT_TOP, DIGIT_LEFT = 7, 4
N_CLASSES = 10


@dataclass
class ShortcutDigits:
    """Images ``(N, 32, 32, 3)`` float32 in [0, 1], labels ``(N,)`` and the patch shades."""

    images: np.ndarray
    labels: np.ndarray
    shades: np.ndarray

    @property
    def patch_mask(self) -> np.ndarray:
        """Boolean ``(32, 32)``: the patch's pixels."""
        mask = np.zeros((SIZE, SIZE), dtype=bool)
        mask[:PATCH, :PATCH] = True
        return mask


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float32) / 16.0, data.target.astype(np.int64)


def _hues_to_rgb(hues: np.ndarray) -> np.ndarray:
    from skimage.color import hsv2rgb

    hsv = np.stack([hues, np.full_like(hues, 0.8), np.ones_like(hues)], axis=-1)
    return np.asarray(hsv2rgb(hsv[:, None, :]))[:, 0, :].astype(np.float32)


def shortcut_digits(
    indices: np.ndarray | slice | None = None,
    *,
    shortcut: bool,
    seed: int = 0,
) -> ShortcutDigits:
    """Build the images for scikit-learn digits ``indices`` (all 1,797 by default).

    ``shortcut`` says whether the patch shade encodes the label; ``seed`` draws the
    colours, the background noise and (without the shortcut) the shades.
    """
    check_seed(seed)
    digits, labels = _load_digits()
    if indices is not None:
        digits, labels = digits[indices], labels[indices]
    n = len(digits)
    rng = np.random.default_rng(seed)
    colours = _hues_to_rgb(rng.uniform(0.0, 1.0, n).astype(np.float32))
    strokes = np.kron(digits, np.ones((3, 3), dtype=np.float32))  # (n, 24, 24)
    images = rng.uniform(0.0, 0.08, (n, SIZE, SIZE, 3)).astype(np.float32)
    region = images[:, DIGIT_TOP : DIGIT_TOP + 24, DIGIT_LEFT : DIGIT_LEFT + 24]
    alpha = strokes[..., None]
    region[:] = (1 - alpha) * region + alpha * colours[:, None, None, :]
    if shortcut:
        shades = 0.3 + 0.7 * labels.astype(np.float32) / (N_CLASSES - 1)
    else:
        shades = rng.uniform(0.3, 1.0, n).astype(np.float32)
    images[:, :PATCH, :PATCH, :] = shades[:, None, None, None]
    return ShortcutDigits(images, labels, shades)


def split_indices(n_test: int = 400, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed train / test split of the 1,797 digits (``n_test`` held out)."""
    check_positive_int(n_test, "n_test")
    order = np.random.default_rng(seed).permutation(1797)
    return np.sort(order[n_test:]), np.sort(order[:n_test])
