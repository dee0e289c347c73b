"""The slic, quickshift, watershed and grid segmenters, against scikit-image where it applies."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from types import ModuleType

import numpy as np
import pytest
import skimage.data
from skimage.color import rgb2gray
from skimage.filters import sobel
from skimage.segmentation import quickshift, slic, watershed
from skimage.transform import resize
from skimage.util import regular_grid

from imacs.errors import InvalidInputError
from imacs.segmentation import grid as grid_module
from imacs.segmentation import quickshift as quickshift_module
from imacs.segmentation import slic as slic_module
from imacs.segmentation import watershed as watershed_module
from imacs.segmentation.base import Segmenter
from imacs.segmentation.grid import Grid
from imacs.segmentation.quickshift import Quickshift
from imacs.segmentation.slic import Slic
from imacs.segmentation.watershed import Watershed


@cache
def _astronaut() -> np.ndarray:
    # resizing the 512x512 original is slow; every test image comes from this 64x64 one
    return resize(skimage.data.astronaut(), (64, 64), preserve_range=True, anti_aliasing=True)


def natural_image(shape: tuple[int, int]) -> np.ndarray:
    """The astronaut resized to ``shape``, float32 in 0..255 (an 8-bit file's range)."""
    image = resize(_astronaut(), shape, preserve_range=True, anti_aliasing=True)
    return image.astype(np.float32)


def unit_range(image: np.ndarray) -> np.ndarray:
    """``image`` min-max rescaled to exactly [0, 1], which the segmenters' rescaling keeps."""
    low, high = image.min(), image.max()
    scaled = ((image - low) / (high - low)).astype(np.float32)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    return scaled


def canonical(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered by order of value, so maps equal up to relabelling compare equal."""
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


# -- what every segmenter promises ---------------------------------------------------------

SEGMENTERS = [
    pytest.param(Slic, id="slic"),
    pytest.param(lambda: Slic(n_segments=5, compactness=0.5, sigma=0.0), id="slic-few"),
    pytest.param(Quickshift, id="quickshift"),
    pytest.param(
        lambda: Quickshift(kernel_size=1.5, max_dist=3.0, ratio=1.0, sigma=1.0, seed=7),
        id="quickshift-fine",
    ),
    pytest.param(Watershed, id="watershed"),
    pytest.param(lambda: Watershed(n_markers=4, compactness=0.0), id="watershed-few"),
    pytest.param(Grid, id="grid"),
    pytest.param(lambda: Grid(rows=3, cols=5), id="grid-3x5"),
]
SHAPES = [(8, 8), (9, 7), (32, 32), (1, 6)]


@pytest.mark.parametrize("make", SEGMENTERS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_segmenter_partitions_deterministically(
    make: Callable[[], Segmenter], shape: tuple[int, int], channels: int
) -> None:
    image = natural_image(shape)
    if channels == 1:
        image = image.mean(axis=-1, keepdims=True)
    labels = make().segment(image)
    assert labels.shape == shape and labels.dtype == np.int32
    # every pixel labelled, labels dense 0..R-1
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))
    assert np.array_equal(make().segment(image.copy()), labels)


@pytest.mark.parametrize("make", SEGMENTERS)
def test_every_segmenter_ignores_the_pixel_range(make: Callable[[], Segmenter]) -> None:
    image = unit_range(natural_image((24, 20)))
    assert np.array_equal(make().segment(image * 255.0), make().segment(image))


@pytest.mark.parametrize("make", [Slic, Quickshift, Watershed, Grid])
def test_a_constant_image_is_still_partitioned(make: Callable[[], Segmenter]) -> None:
    labels = make().segment(np.full((10, 12, 3), 0.5, dtype=np.float32))
    assert labels.shape == (10, 12)
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))


@pytest.mark.parametrize(
    ("module", "cls", "name"),
    [
        (slic_module, Slic, "slic"),
        (quickshift_module, Quickshift, "quickshift"),
        (watershed_module, Watershed, "watershed"),
        (grid_module, Grid, "grid"),
    ],
)
def test_each_module_registers_its_segmenter(
    module: ModuleType, cls: type[Segmenter], name: str
) -> None:
    registered: list[type] = []
    module.register_segmenters(registered.append)
    assert registered == [cls]
    assert cls.name == name


def test_parameters_are_kept_as_given() -> None:
    assert Slic().get_params() == {"n_segments": 50, "compactness": 10.0, "sigma": 1.0}
    assert Quickshift(seed=3).get_params() == {
        "kernel_size": 3.0,
        "max_dist": 6.0,
        "ratio": 0.5,
        "sigma": 0.0,
        "seed": 3,
    }
    assert Watershed().get_params() == {"n_markers": 50, "compactness": 0.001}
    assert Grid(cols=2).get_params() == {"rows": 4, "cols": 2}


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (Slic, {"n_segments": 0}, "n_segments"),
        (Slic, {"n_segments": 2.5}, "n_segments"),
        (Slic, {"compactness": 0}, "compactness"),
        (Slic, {"compactness": "high"}, "compactness"),
        (Slic, {"sigma": -1.0}, "sigma"),
        (Quickshift, {"kernel_size": 0.5}, "kernel_size"),
        (Quickshift, {"max_dist": 0}, "max_dist"),
        (Quickshift, {"ratio": 0.0}, "ratio"),
        (Quickshift, {"ratio": 1.5}, "ratio"),
        (Quickshift, {"ratio": True}, "ratio"),
        (Quickshift, {"sigma": -0.1}, "sigma"),
        (Quickshift, {"seed": -1}, "seed"),
        (Quickshift, {"seed": 1.0}, "seed"),
        (Watershed, {"n_markers": 0}, "n_markers"),
        (Watershed, {"compactness": -0.001}, "compactness"),
        (Grid, {"rows": 0}, "rows"),
        (Grid, {"cols": 2.0}, "cols"),
        (Grid, {"rows": True}, "rows"),
    ],
)
def test_bad_parameters_raise(cls: type[Segmenter], params: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        cls(**params)


# -- slic and quickshift are scikit-image's, called the documented way ---------------------


@pytest.mark.parametrize("params", [{}, {"n_segments": 12, "compactness": 1.0, "sigma": 0.0}])
def test_slic_equals_skimage(params: dict[str, float]) -> None:
    image = natural_image((30, 26))  # 0..255: slic rescales to [0, 1] itself
    segmenter = Slic(**params)  # type: ignore[arg-type]
    settings = segmenter.get_params()
    expected = slic(image, **settings, start_label=0, channel_axis=-1)
    labels = segmenter.segment(image)
    assert labels.max() > 0
    assert np.array_equal(labels, canonical(expected))
    grey = image.mean(axis=-1)
    expected_grey = slic(grey, **settings, start_label=0, channel_axis=None)
    assert np.array_equal(segmenter.segment(grey[..., None]), canonical(expected_grey))


@pytest.mark.parametrize("params", [{}, {"kernel_size": 2.0, "max_dist": 4.0, "seed": 5}])
def test_quickshift_equals_skimage(params: dict[str, float]) -> None:
    image = unit_range(natural_image((30, 26)))  # already in [0, 1]: the rescaling keeps it
    segmenter = Quickshift(**params)  # type: ignore[arg-type]
    settings = {
        "kernel_size": segmenter.kernel_size,
        "max_dist": segmenter.max_dist,
        "ratio": segmenter.ratio,
        "sigma": segmenter.sigma,
        "rng": segmenter.seed,
    }
    labels = segmenter.segment(image)
    assert labels.max() > 0
    assert np.array_equal(labels, canonical(quickshift(image, **settings)))
    grey = unit_range(image.mean(axis=-1, keepdims=True))
    expected_grey = quickshift(np.repeat(grey, 3, axis=-1), **settings)
    assert np.array_equal(segmenter.segment(grey), canonical(expected_grey))


@pytest.mark.parametrize("channels", [2, 4])
def test_quickshift_refuses_other_channel_counts(channels: int) -> None:
    with pytest.raises(InvalidInputError, match="RGB"):
        Quickshift().segment(np.zeros((8, 8, channels), dtype=np.float32))


# -- watershed: skimage's compact watershed on the Sobel gradient ---------------------------


@pytest.mark.parametrize("compactness", [0.0, 0.001, 10.0])
def test_watershed_is_compact_watershed_from_a_grid_of_markers(compactness: float) -> None:
    image = unit_range(natural_image((30, 26)))
    grey = rgb2gray(image)
    grey = (grey - grey.min()) / (grey.max() - grey.min())
    markers = np.zeros(grey.shape, dtype=np.int32)
    seeds = regular_grid(grey.shape, n_points=20)
    markers[seeds] = np.arange(1, markers[seeds].size + 1).reshape(markers[seeds].shape)
    expected = watershed(sobel(grey), markers, compactness=compactness)
    labels = Watershed(n_markers=20, compactness=compactness).segment(image)
    assert np.array_equal(labels, canonical(expected))
    # one region per seed, none lost
    assert labels.max() + 1 == np.count_nonzero(markers)


def test_watershed_compactness_makes_regions_more_even() -> None:
    image = natural_image((40, 40))
    loose = Watershed(n_markers=16, compactness=0.0).segment(image)
    compact = Watershed(n_markers=16, compactness=100.0).segment(image)
    assert np.bincount(compact.ravel()).std() < np.bincount(loose.ravel()).std()


# -- grid -----------------------------------------------------------------------------------


def cell_sizes(labels: np.ndarray) -> tuple[set[int], set[int]]:
    """The heights and widths of the bounding boxes of every region."""
    heights, widths = set(), set()
    for region in range(labels.max() + 1):
        rows, cols = np.nonzero(labels == region)
        # a grid cell is a full rectangle
        assert rows.size == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
        heights.add(int(np.ptp(rows)) + 1)
        widths.add(int(np.ptp(cols)) + 1)
    return heights, widths


@pytest.mark.parametrize(
    ("shape", "rows", "cols"),
    [((32, 32), 4, 4), ((9, 7), 4, 4), ((10, 13), 3, 5), ((31, 17), 6, 2), ((5, 5), 1, 1)],
)
def test_grid_cells_differ_by_at_most_one_pixel(
    shape: tuple[int, int], rows: int, cols: int
) -> None:
    labels = Grid(rows=rows, cols=cols).segment(np.zeros((*shape, 1), dtype=np.float32))
    assert labels.max() + 1 == rows * cols
    heights, widths = cell_sizes(labels)
    assert max(heights) - min(heights) <= 1
    assert max(widths) - min(widths) <= 1
    # numbered row by row from the top left
    assert labels[0, 0] == 0 and labels[0, -1] == cols - 1 and labels[-1, 0] == (rows - 1) * cols


def test_grid_on_an_image_smaller_than_the_grid_gives_one_cell_per_pixel() -> None:
    labels = Grid(rows=4, cols=4).segment(np.zeros((2, 3, 3), dtype=np.float32))
    assert np.array_equal(labels, np.arange(6).reshape(2, 3))
