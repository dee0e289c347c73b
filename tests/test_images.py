"""Bad images and targets get errors that say what was expected and what to do."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.errors import InvalidInputError
from imacs.images import as_image_batch, as_targets


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((8, 8, 3), np.float32), r"single image: use image\[None\]"),
        (np.zeros((8, 8), np.float32), r"single grayscale image"),
        (np.zeros((5, 8, 8), np.float32), r"grayscale images: add a channel axis"),
        (np.zeros((2, 3, 16, 16), np.float32), r"looks channels-first.*transpose\(0, 2, 3, 1\)"),
        (np.zeros((2, 16, 16, 7), np.float32), r"C in \(1, 2, 3, 4\)"),
        (np.zeros((2, 8, 8, 3), np.uint8), r"got dtype uint8.*astype\(np.float32\)"),
        (np.zeros((0, 8, 8, 3), np.float32), r"at least one image"),
        (np.full((2, 4, 4, 1), np.nan, np.float32), r"2 of 2 images contain NaN"),
        ([np.zeros((4, 4, 3)), np.zeros((5, 5, 3))], r"different sizes"),
    ],
)
def test_bad_images_are_explained(images, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        as_image_batch(images)


def test_good_images_become_contiguous_float32() -> None:
    images = np.random.default_rng(0).random((2, 5, 4, 3))[:, ::-1]  # float64, a view
    batch = as_image_batch(images)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_allclose(batch, images, rtol=1e-6)


def test_targets_broadcast_and_are_checked() -> None:
    assert as_targets(2, 3, 4).tolist() == [2, 2, 2]
    assert as_targets(np.array([1.0, 0.0]), 2).dtype == np.int64
    with pytest.raises(InvalidInputError, match=r"classes in \[0, 3\].*from 0 to 4"):
        as_targets([0, 4], 2, 4)
    with pytest.raises(InvalidInputError, match="one target class per image"):
        as_targets([0, 1, 2], 2)
    with pytest.raises(InvalidInputError, match="integer class indices"):
        as_targets([0.5, 1.0], 2)
