"""Reading a folder of images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imacs.data import read_image_folder
from imacs.errors import InvalidInputError


def _write(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_classes_from_sub_folders_and_pixel_range_kept(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        for i in range(2):
            _write(tmp_path / cls / f"{i}.png", rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    folder = read_image_folder(tmp_path)
    assert folder.images.shape == (4, 6, 5, 3) and folder.images.dtype == np.float32
    assert folder.names == ["cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"]
    assert folder.class_names == ["cat", "dog"] and folder.labels.tolist() == [0, 0, 1, 1]
    original = np.asarray(Image.open(tmp_path / "dog" / "1.png"), dtype=np.float32)
    np.testing.assert_array_equal(folder.images[3], original)  # 0..255, not rescaled


def test_grayscale_images_get_a_channel_axis(tmp_path) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    folder = read_image_folder(tmp_path)
    assert folder.images.shape == (1, 4, 4, 1) and folder.labels is None


def test_mixed_sizes_are_explained_or_resized(tmp_path) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    _write(tmp_path / "b.png", np.zeros((8, 6, 3), np.uint8))
    with pytest.raises(InvalidInputError, match=r"2 different shapes.*size=\(height, width\)"):
        read_image_folder(tmp_path)
    assert read_image_folder(tmp_path, size=(5, 7)).images.shape == (2, 5, 7, 3)


def test_corrupt_file_raises_or_is_skipped(tmp_path) -> None:
    _write(tmp_path / "good.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(InvalidInputError, match=r"cannot read image .*bad.png.*on_error='skip'"):
        read_image_folder(tmp_path)
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        folder = read_image_folder(tmp_path, on_error="skip")
    assert folder.names == ["good.png"] and folder.skipped == ["bad.png"]


def test_empty_folder_is_explained(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="found no image files"):
        read_image_folder(tmp_path)
