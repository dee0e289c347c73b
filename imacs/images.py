"""Checks on the arrays that cross the model-adapter boundary.

Images are channel-last float32 arrays ``(N, H, W, C)`` in the dataset's own pixel range;
targets are one class index per image. Everything that receives images from a user goes
through :func:`as_image_batch`, so the same mistake always gets the same explanation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.errors import InvalidInputError

_CHANNEL_COUNTS = (1, 2, 3, 4)


def as_image_batch(images: Any, *, name: str = "images") -> np.ndarray:
    """Return ``images`` as a C-contiguous float32 ``(N, H, W, C)`` array, or explain why not.

    Float arrays of any precision are converted to float32. Integer arrays are refused
    rather than silently rescaled, because only the caller knows the pixel range the
    model was trained on.
    """
    try:
        array = np.asarray(images)
    except ValueError:  # NumPy 2 refuses ragged nested sequences outright
        array = np.empty(0, dtype=object)
    if array.dtype == object:
        raise InvalidInputError(
            f"expected {name} as one numeric array of shape (N, H, W, C); got an array of "
            "Python objects (images of different sizes?): resize them to one size first"
        )
    if array.ndim != 4:
        hint = {
            2: "a single grayscale image: use image[None, :, :, None]",
            3: "a single image: use image[None] to make a batch of one"
            if array.shape[-1] in _CHANNEL_COUNTS
            else "a batch of grayscale images: add a channel axis with images[..., None]",
        }.get(array.ndim, "reshape to (N, H, W, C)")
        raise InvalidInputError(
            f"expected {name} of shape (N, H, W, C); got shape {array.shape}, which looks "
            f"like {hint}"
        )
    channels = array.shape[-1]
    if channels not in _CHANNEL_COUNTS:
        if array.shape[1] in _CHANNEL_COUNTS:
            raise InvalidInputError(
                f"expected channel-last {name} (N, H, W, C) with C in {_CHANNEL_COUNTS}; got "
                f"shape {array.shape}, which looks channels-first: pass "
                "images.transpose(0, 2, 3, 1) (the adapter converts to the layout the model "
                "wants)"
            )
        raise InvalidInputError(
            f"expected channel-last {name} (N, H, W, C) with C in {_CHANNEL_COUNTS}; got "
            f"shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise InvalidInputError(f"expected at least one image in {name}; got an empty batch")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidInputError(
            f"expected floating-point {name} in the pixel range your model was trained on; "
            f"got dtype {array.dtype}: convert with images.astype(np.float32) (and divide "
            "by 255 if the model expects [0, 1], or give the adapter a preprocessing scale)"
        )
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).reshape(len(array), -1).any(axis=1).sum())
        raise InvalidInputError(
            f"expected finite pixel values in {name}; {bad} of {len(array)} images contain "
            "NaN or infinity: clean or drop those images first"
        )
    return array


def as_targets(targets: Any, n_images: int, n_classes: int | None = None) -> np.ndarray:
    """Return one int64 class index per image, broadcasting a single int to all images."""
    array = np.asarray(targets)
    if array.ndim == 0:
        array = np.full(n_images, array)
    if array.ndim != 1 or len(array) != n_images:
        raise InvalidInputError(
            f"expected one target class per image ({n_images}), or a single int for all; "
            f"got an array of shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(np.mod(array, 1) == 0):
            array = array.astype(np.int64)
        else:
            raise InvalidInputError(
                f"expected integer class indices as targets; got dtype {array.dtype}"
            )
    array = array.astype(np.int64, copy=False)
    if n_classes is not None and (array.min() < 0 or array.max() >= n_classes):
        raise InvalidInputError(
            f"expected target classes in [0, {n_classes - 1}] for a model with {n_classes} "
            f"outputs; got values from {array.min()} to {array.max()}"
        )
    return array
