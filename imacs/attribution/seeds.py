"""Random draws that belong to an image, whatever else shares its call.

A method that draws noise per image (SmoothGrad and VarGrad here, Captum's NoiseTunnel
and GradientShap in the Captum plugin) seeds each image's draws from its ``seed`` and the
image's content. The draws then depend neither on the image's place in the call nor on
the call's size, nor on how a comparison split its images into tasks, which changes when
a run is resumed or runs on several workers: the map stored under an image's key is the
map any run would make of that image.
"""

from __future__ import annotations

import numpy as np

from imacs.store import array_digest


def image_entropy(image: np.ndarray) -> int:
    """A 64-bit number from the image's digest (its dtype, shape and bytes), the one its
    store key is made from."""
    return int(array_digest(image)[:16], 16)


def image_rng(seed: int, image: np.ndarray) -> np.random.Generator:
    """The generator of ``image``'s draws under ``seed``."""
    return np.random.default_rng([seed, image_entropy(image)])
