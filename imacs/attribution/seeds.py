"""Random draws that belong to an image, whatever else shares its call.

A method that draws noise per image (SmoothGrad and VarGrad here, Captum's NoiseTunnel
and GradientShap in the Captum plugin) seeds each image's draws from its ``seed`` and the
image's content. The draws then depend neither on the image's place in the call nor on
the call's size, nor on how a comparison split its images into tasks, which changes when
a run is resumed or runs on several workers: the map stored under an image's key is the
map any run would make of that image.
"""

from __future__ import annotations

import hashlib

import numpy as np


def image_entropy(image: np.ndarray) -> int:
    """A 64-bit number drawn from the image's dtype, shape and bytes."""
    image = np.ascontiguousarray(image)
    digest = hashlib.blake2b(f"{image.dtype.str}{image.shape}".encode(), digest_size=8)
    digest.update(image.tobytes())
    return int.from_bytes(digest.digest(), "little")


def image_rng(seed: int, image: np.ndarray) -> np.random.Generator:
    """The generator of ``image``'s draws under ``seed``."""
    return np.random.default_rng([seed, image_entropy(image)])
