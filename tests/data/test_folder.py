"""Reading a folder of images."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from imacs.data import as_data_source, read_image_folder
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


def test_float_tiff_pixels_keep_their_values_and_nan_is_refused(tmp_path) -> None:
    values = np.linspace(-1.5, 2.5, 12, dtype=np.float32).reshape(3, 4)
    Image.fromarray(values).save(tmp_path / "a.tif")
    folder = read_image_folder(tmp_path)
    np.testing.assert_array_equal(folder.images[0, ..., 0], values)
    Image.fromarray(np.full((3, 4), np.nan, np.float32)).save(tmp_path / "b.tif")
    source = as_data_source(tmp_path)
    with pytest.raises(InvalidInputError, match=r"'b\.tif' contains NaN or infinity"):
        list(source.batches(4))


def test_a_folder_named_like_an_image_is_searched_not_read(tmp_path) -> None:
    _write(tmp_path / "scans.png" / "a.png", np.zeros((4, 4), np.uint8))
    assert read_image_folder(tmp_path).names == ["scans.png/a.png"]


def test_a_decompression_bomb_is_an_unreadable_file(tmp_path) -> None:
    _write(tmp_path / "good.png", np.zeros((4, 4), np.uint8))
    data = bytearray((tmp_path / "good.png").read_bytes())
    struct.pack_into(">II", data, 16, 100_000, 100_000)  # IHDR: 10^10 pixels
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match=r"cannot read image .*bomb.png.*decompression"):
        read_image_folder(tmp_path)
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        assert read_image_folder(tmp_path, on_error="skip").skipped == ["bomb.png"]


@pytest.mark.parametrize("size", [(0, 4), (4.0, 4), (4,), "4x4"])
def test_a_bad_size_is_explained(tmp_path, size) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(InvalidInputError, match=r"expected size=\(height, width\)"):
        read_image_folder(tmp_path, size=size)


def test_a_labels_file_that_is_not_utf8_text_is_explained(tmp_path) -> None:
    _write(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "labels.csv").write_bytes(b"filename,label\na.png,\xff\xfe\n")
    with pytest.raises(InvalidInputError, match=r"labels CSV .* expected a UTF-8 text file"):
        as_data_source(tmp_path, tmp_path / "labels.csv")


@pytest.mark.parametrize("shape", [(2, 0, 4, 3), (2, 4, 0), (1, 3, 0, 5)])
def test_images_without_pixels_are_refused(shape) -> None:
    with pytest.raises(InvalidInputError, match="at least 1x1 pixels"):
        as_data_source(np.zeros(shape, np.float32), channels="auto")


def test_values_beyond_float32_are_named_as_such() -> None:
    images = np.zeros((2, 5, 5), np.float64)
    images[1, 0, 0] = 1e39
    with pytest.raises(InvalidInputError, match=r"float32's range.*got 1e\+39"):
        list(as_data_source(images).batches(2))


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["2", "0", "1"], ([2, 0, 1], None)),
        (["²", "0", "1"], ([2, 0, 1], ["0", "1", "²"])),  # not a digit to int()
        (["--5", "0", "1"], ([0, 1, 2], ["--5", "0", "1"])),
    ],
)
def test_csv_labels_are_indices_only_when_written_in_ascii_digits(
    tmp_path, labels, expected
) -> None:
    for name in "abc":
        _write(tmp_path / f"{name}.png", np.zeros((4, 4), np.uint8))
    rows = "".join(f"{name}.png,{label}\n" for name, label in zip("abc", labels, strict=True))
    (tmp_path / "labels.csv").write_text("filename,label\n" + rows)
    source = as_data_source(tmp_path, tmp_path / "labels.csv")
    assert next(iter(source.batches(3))).labels.tolist() == expected[0]
    assert source.class_names == expected[1]


@pytest.mark.parametrize(
    "labels", [["99999999999999999999999", "0", "1"], np.array([1e30, 0.0, 1.0])]
)
def test_labels_too_large_for_class_indices_are_explained(tmp_path, labels) -> None:
    if isinstance(labels, list):
        for name in "abc":
            _write(tmp_path / f"{name}.png", np.zeros((4, 4), np.uint8))
        rows = "".join(f"{n}.png,{label}\n" for n, label in zip("abc", labels, strict=True))
        (tmp_path / "labels.csv").write_text("filename,label\n" + rows)
        data, labels = tmp_path, tmp_path / "labels.csv"
    else:
        data = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(InvalidInputError, match="class indices"):
        list(as_data_source(data, labels).batches(3))
