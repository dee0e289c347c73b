"""The Felzenszwalb segmenter and XRAI's candidate regions, against PAIR saliency and skimage."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from skimage.morphology import dilation, disk
from skimage.segmentation import felzenszwalb
from skimage.transform import resize

from imacs.errors import InvalidInputError
from imacs.segmentation.felzenszwalb import (
    Felzenszwalb,
    label_masks,
    normalize_image,
    register_segmenters,
    xrai_segments,
)

pair_xrai = pytest.importorskip("saliency.core.xrai")


def natural_image(name: str, shape: tuple[int, int]) -> np.ndarray:
    image = getattr(skimage.data, name)()
    return (resize(image, shape, preserve_range=True) / 255.0).astype(np.float32)


@pytest.mark.parametrize(
    ("name", "shape"),
    [("astronaut", (48, 40)), ("coffee", (24, 32)), ("chelsea", (9, 7))],
)
def test_xrai_segments_equal_pairs_masks(name: str, shape: tuple[int, int]) -> None:
    image = natural_image(name, shape)
    expected = np.stack(pair_xrai._get_segments_felzenszwalb(image))
    masks = xrai_segments(image)
    assert masks.dtype == bool
    assert masks.shape == expected.shape
    assert np.array_equal(masks, expected)


def test_xrai_segments_at_native_size_equal_pairs_without_resize() -> None:
    image = natural_image("coffee", (40, 48))
    expected = np.stack(pair_xrai._get_segments_felzenszwalb(image, resize_image=False))
    assert np.array_equal(xrai_segments(image, resize_to=None), expected)


@pytest.mark.parametrize("radius", [1, 2, 5, 9])
@pytest.mark.parametrize("shape", [(17, 23), (6, 4), (1, 12)])
def test_label_masks_dilation_equals_skimage_per_mask(radius: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(radius)
    labels = rng.integers(3, 9, size=shape)  # labels 3..8, some may be missing
    labels[0, 0] = 3
    masks = label_masks(labels, dilation_rad=radius)
    assert masks.shape == (labels.max() - 2, *shape)
    for k, mask in enumerate(masks):
        expected = dilation(labels == 3 + k, footprint=disk(radius))
        assert np.array_equal(mask, expected), f"label {3 + k}"


def test_label_masks_without_dilation_are_the_labels() -> None:
    labels = np.array([[0, 0, 2], [2, 2, 0]])
    masks = label_masks(labels)
    assert masks.shape == (3, 2, 3)
    assert np.array_equal(masks[0], labels == 0)
    assert not masks[1].any()  # label 1 does not occur: an empty mask, as in PAIR
    assert np.array_equal(masks[2], labels == 2)


def test_segmenter_matches_the_scale_100_xrai_segmentation() -> None:
    image = natural_image("astronaut", (40, 40))
    labels = Felzenszwalb().segment(image)
    assert labels.shape == (40, 40) and labels.dtype == np.int32
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    ours = {label_masks(labels)[k].tobytes() for k in range(labels.max() + 1)}
    xrai = xrai_segments(image, scales=(100,), dilation_rad=0)
    assert ours == {m.tobytes() for m in xrai if m.any()}


def test_segmenter_at_native_size_is_skimage_on_the_rescaled_image() -> None:
    image = natural_image("coffee", (20, 30))
    segmenter = Felzenszwalb(resize_to=None, scale=50, sigma=0.5, min_size=10)
    labels = segmenter.segment(image)
    expected = felzenszwalb(normalize_image(image, (-1.0, 1.0), None), 50, 0.5, 10)
    assert np.array_equal(labels, expected)
    assert labels.max() > 0
    assert np.array_equal(segmenter.segment(image), labels)  # deterministic


def test_auto_segments_small_images_at_their_size_with_scaled_min_size_and_sigma() -> None:
    image = natural_image("coffee", (32, 48))
    area = 32 * 48 / 224**2
    labels = Felzenszwalb(resize_to="auto").segment(image)
    expected = felzenszwalb(
        normalize_image(image, (-1.0, 1.0), None),
        scale=100,
        sigma=0.8 * np.sqrt(area),
        min_size=round(150 * area),
    )
    assert np.array_equal(labels, expected)


def test_auto_resizes_large_images_as_xrai_does() -> None:
    image = natural_image("astronaut", (240, 230))
    auto = Felzenszwalb(resize_to="auto").segment(image)
    assert np.array_equal(auto, Felzenszwalb().segment(image))


def test_auto_keeps_the_demo_patch_one_segment() -> None:
    from imacs.demo.data import PATCH, shortcut_digits

    data = shortcut_digits(np.arange(20), shortcut=False, seed=1)
    segmenter = Felzenszwalb(resize_to="auto")
    for image in data.images:
        labels = segmenter.segment(image)
        patch = labels[:PATCH, :PATCH]
        assert np.unique(patch).size == 1  # the whole patch is one segment
        assert np.sum(labels == patch[0, 0]) == PATCH * PATCH  # and nothing else


def test_segmenter_keeps_its_parameters_and_is_registered() -> None:
    segmenter = Felzenszwalb(scale=30, min_size=5, resize_to=None, value_range=None)
    assert segmenter.get_params() == {
        "scale": 30,
        "sigma": 0.8,
        "min_size": 5,
        "resize_to": None,
        "value_range": None,
    }
    registered: list[type] = []
    register_segmenters(registered.append)
    assert registered == [Felzenszwalb]
    assert Felzenszwalb.name == "felzenszwalb"


def test_constant_image_is_one_segment() -> None:
    image = np.full((12, 10, 3), 0.5, dtype=np.float32)
    assert not Felzenszwalb().segment(image).any()
    masks = xrai_segments(image)
    assert masks.all(axis=(1, 2)).any()


@pytest.mark.parametrize(
    "params",
    [
        {"scale": 0},
        {"sigma": -1.0},
        {"min_size": -3},
        {"resize_to": (224,)},
        {"resize_to": (0, 10)},
        {"value_range": (1.0, -1.0)},
    ],
)
def test_bad_segmenter_parameters_raise(params: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        Felzenszwalb(**params)  # type: ignore[arg-type]


def test_bad_xrai_segments_input_raises() -> None:
    with pytest.raises(InvalidInputError, match="channel-last"):
        xrai_segments(np.zeros((8, 8)))
    with pytest.raises(InvalidInputError, match="dilation_rad"):
        xrai_segments(np.zeros((8, 8, 3)), dilation_rad=-1)
    with pytest.raises(InvalidInputError, match="scale"):
        xrai_segments(np.zeros((8, 8, 3)), scales=(50, 0))
