"""The built-in featurizers: known answers on synthetic regions, skimage references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from skimage.color import rgb2gray, rgb2hsv
from skimage.feature import local_binary_pattern
from skimage.measure import regionprops
from sklearn.preprocessing import StandardScaler

from imacs.adapters.base import ModelAdapter
from imacs.adapters.function import FunctionAdapter
from imacs.errors import InvalidInputError, MissingCapabilityError
from imacs.features import color, embedding, shape, texture
from imacs.features.base import Featurizer
from imacs.features.color import ColorHistogram
from imacs.features.combine import standardize_blocks
from imacs.features.embedding import ModelEmbedding
from imacs.features.shape import SHAPE_FEATURES, RegionShape
from imacs.features.texture import LocalBinaryPatterns


def grid_labels(height: int, width: int, rows: int, cols: int) -> np.ndarray:
    """Dense labels: the image cut into ``rows x cols`` blocks, numbered row-major."""
    ys = np.arange(height) * rows // height
    xs = np.arange(width) * cols // width
    return (ys[:, None] * cols + xs[None, :]).astype(np.int32)


def random_labels(height: int, width: int, n: int, seed: int) -> np.ndarray:
    """Dense labels 0..R-1 of ragged regions (every label used)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, n, size=(height // 2 + 1, width // 2 + 1))
    labels = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:height, :width]
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(height, width).astype(np.int32)


def rgb_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


class EmbeddingModel(ModelAdapter):
    """A model with only the embedding capability, whose feature map is given."""

    name = "fake-embedding"
    capabilities = frozenset({"embedding"})

    def __init__(self, feature_map: np.ndarray):
        super().__init__()
        self.feature_map = feature_map
        self.layers_asked: list[str | None] = []

    def _predict(self, images: np.ndarray) -> Any:
        return np.zeros((len(images), 2), dtype=np.float32)

    def _scores(self, images: np.ndarray, targets: np.ndarray) -> Any:
        return np.zeros(len(images), dtype=np.float32)

    def _value_and_gradients(self, images: np.ndarray, targets: np.ndarray) -> tuple[Any, Any]:
        raise NotImplementedError

    def fingerprint(self) -> str:
        return "fake-embedding"

    def embed(
        self, images: Any, *, layer: str | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        self.require("embedding", by="embed()")
        self.layers_asked.append(layer)
        return np.repeat(self.feature_map[None], len(images), axis=0)


# -- every featurizer -----------------------------------------------------------------------


def spatial_model() -> EmbeddingModel:
    return EmbeddingModel(np.random.default_rng(5).random((4, 4, 6)))


FEATURIZERS: list[tuple[Featurizer, int]] = [  # featurizer, expected D
    (ColorHistogram(), 3 * 8 + 6),
    (ColorHistogram(bins=4, value_range=(0, 1)), 3 * 4 + 6),
    (LocalBinaryPatterns(), 8 + 3),
    (LocalBinaryPatterns(points=16, radius=2), 16 + 3),
    (RegionShape(), len(SHAPE_FEATURES)),
    (ModelEmbedding(), 6),
]
IDS = [repr(f) for f, _ in FEATURIZERS]


@pytest.mark.parametrize(("featurizer", "dimension"), FEATURIZERS, ids=IDS)
@pytest.mark.parametrize("channels", [3, 1, 4])
def test_one_float32_row_per_region_and_a_fixed_dimension(
    featurizer: Featurizer, dimension: int, channels: int
) -> None:
    model = spatial_model()
    for seed, (height, width, n) in enumerate([(16, 20, 5), (24, 12, 9), (9, 9, 1)]):
        image = np.random.default_rng(seed).random((height, width, channels), dtype=np.float32)
        labels = random_labels(height, width, n, seed)
        features = featurizer.featurize(image * 255, labels, model=model)
        assert features.dtype == np.float32
        assert features.shape == (labels.max() + 1, dimension)
        assert np.isfinite(features).all()


@pytest.mark.parametrize(
    ("module", "cls"),
    [
        (color, ColorHistogram),
        (texture, LocalBinaryPatterns),
        (shape, RegionShape),
        (embedding, ModelEmbedding),
    ],
)
def test_each_module_registers_its_featurizer(module: Any, cls: type) -> None:
    registered: list[type] = []
    module.register_featurizers(registered.append)
    assert registered == [cls]
    assert issubclass(cls, Featurizer)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ColorHistogram(bins=0), "bins"),
        (lambda: ColorHistogram(value_range=(1, 0)), "value_range"),
        (lambda: ColorHistogram(value_range=255), "value_range"),
        (lambda: LocalBinaryPatterns(points=0), "points"),
        (lambda: LocalBinaryPatterns(radius=0), "radius"),
        (lambda: ModelEmbedding(layer=3), "layer"),
    ],
)
def test_bad_parameters_fail_when_made(make: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        make()


@pytest.mark.parametrize(("featurizer", "dimension"), FEATURIZERS[:5], ids=IDS[:5])
def test_parameters_are_kept_as_given(featurizer: Featurizer, dimension: int) -> None:
    assert type(featurizer)(**featurizer.get_params()).get_params() == featurizer.get_params()


# -- color -----------------------------------------------------------------------------------


def test_a_pure_colour_region_has_its_mass_in_its_hue_bin() -> None:
    image = np.zeros((6, 9, 3), dtype=np.float32)
    image[:, 0:3, 0] = 1.0  # red
    image[:, 3:6, 1] = 1.0  # green
    image[:, 6:9] = 0.5  # grey
    labels = grid_labels(6, 9, 1, 3)
    features = ColorHistogram(bins=8).featurize(image, labels)
    hue, saturation, value = features[:, :8], features[:, 8:16], features[:, 16:24]
    np.testing.assert_allclose(hue[0], np.eye(8)[0])  # red: hue 0
    np.testing.assert_allclose(hue[1], np.eye(8)[3])  # green: hue 1/3, bin centred on 3/8
    np.testing.assert_allclose(hue[2], 0.0)  # grey: no hue at all
    np.testing.assert_allclose(saturation[:2], np.eye(8)[[7, 7]])
    np.testing.assert_allclose(saturation[2], np.eye(8)[0])
    np.testing.assert_allclose(value[2], np.eye(8)[4])
    np.testing.assert_allclose(features[:, 24:27], [[1, 0, 0], [0, 1, 0], [0.5, 0.5, 0.5]])
    np.testing.assert_array_equal(features[:, 27:30], 0.0)  # flat: exactly


def test_reds_either_side_of_hue_zero_share_a_bin() -> None:
    image = np.array([[[1.0, 0.0, 0.05], [1.0, 0.05, 0.0]]], dtype=np.float32)
    features = ColorHistogram(bins=8).featurize(image, np.zeros((1, 2), dtype=np.int32))
    np.testing.assert_allclose(features[0, :8], np.eye(8)[0])


def test_color_matches_a_per_region_reference() -> None:
    image = rgb_image(14, 11, seed=1)
    labels = random_labels(14, 11, 6, seed=1)
    bins = 5
    features = ColorHistogram(bins=bins).featurize(image, labels)
    hsv = rgb2hsv(image.astype(np.float64))
    for region in range(labels.max() + 1):
        mask = labels == region
        h, s, v = hsv[mask].T
        hue_index = np.floor(h * bins + 0.5).astype(int) % bins
        hue = np.bincount(hue_index, weights=s, minlength=bins) / mask.sum()
        sat = np.histogram(s, bins=bins, range=(0, 1))[0] / mask.sum()
        val = np.histogram(v, bins=bins, range=(0, 1))[0] / mask.sum()
        pixels = image[mask].astype(np.float64)
        expected = np.concatenate([hue, sat, val, pixels.mean(0), pixels.std(0)])
        np.testing.assert_allclose(features[region], expected, atol=1e-5)


@pytest.mark.parametrize("scale", [255.0, 65535.0])
def test_color_and_texture_do_not_depend_on_the_pixel_range(scale: float) -> None:
    image = rgb_image(16, 16, seed=2)
    image[0, 0] = 1.0  # so the inferred range is the whole of 0..scale
    labels = random_labels(16, 16, 5, seed=2)
    for featurizer in (ColorHistogram(), LocalBinaryPatterns()):
        unit = featurizer.featurize(image, labels)
        scaled = featurizer.featurize(image * np.float32(scale), labels)
        np.testing.assert_allclose(unit, scaled, atol=1e-5)


def test_an_explicit_value_range_is_used_instead_of_inferring() -> None:
    image = np.full((4, 4, 3), 1.0, dtype=np.float32)  # dark 8-bit: inferred as bright 0..1
    labels = np.zeros((4, 4), dtype=np.int32)
    inferred = ColorHistogram().featurize(image, labels)
    explicit = ColorHistogram(value_range=(0, 255)).featurize(image, labels)
    np.testing.assert_allclose(inferred[0, 24:27], 1.0)
    np.testing.assert_allclose(explicit[0, 24:27], 1 / 255, rtol=1e-6)


@pytest.mark.parametrize("featurizer", [ColorHistogram(), LocalBinaryPatterns()], ids=repr)
def test_a_grey_image_reads_as_equal_rgb_channels(featurizer: Featurizer) -> None:
    grey = rgb_image(12, 10, seed=3)[..., :1]
    labels = random_labels(12, 10, 4, seed=3)
    from_grey = featurizer.featurize(grey, labels)
    from_rgb = featurizer.featurize(np.repeat(grey, 3, axis=-1), labels)
    np.testing.assert_allclose(from_grey, from_rgb, atol=1e-5)
    if isinstance(featurizer, ColorHistogram):
        np.testing.assert_allclose(from_grey[:, :8], 0.0)  # no hue in a grey image


# -- texture ---------------------------------------------------------------------------------


def test_a_flat_region_has_only_the_flat_lbp_code_and_no_gradient() -> None:
    image = rgb_image(12, 12, seed=4)
    image[2:10, 2:10] = 0.3  # flat block, flat one pixel beyond region 1 on every side
    labels = np.zeros((12, 12), dtype=np.int32)
    labels[3:9, 3:9] = 1
    features = LocalBinaryPatterns().featurize(image, labels)
    np.testing.assert_allclose(features[1, :10], np.eye(10)[8])  # code P: no darker neighbour
    assert features[1, 10] == 0.0
    np.testing.assert_allclose(features[:, :10].sum(axis=1), 1.0)


def test_a_flat_region_at_the_border_is_still_flat() -> None:
    image = np.full((6, 8, 1), 0.7, dtype=np.float32)
    features = LocalBinaryPatterns().featurize(image, np.zeros((6, 8), dtype=np.int32))
    np.testing.assert_allclose(features[0, :10], np.eye(10)[8])


def test_lbp_histograms_match_skimage_away_from_the_border() -> None:
    image = rgb_image(20, 20, seed=6)
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[4:16, 3:15] = 1
    labels[10:16, 3:15] = 2
    features = LocalBinaryPatterns(points=8, radius=2).featurize(image, labels)
    grey = np.round(rgb2gray(image.astype(np.float64)) * 65535).astype(np.uint16)
    codes = local_binary_pattern(grey, 8, 2, method="uniform")
    for region in (1, 2):
        expected = np.bincount(codes[labels == region].astype(int), minlength=10)
        np.testing.assert_allclose(features[region, :10], expected / expected.sum(), atol=1e-6)


def test_mean_gradient_of_a_ramp_is_its_slope() -> None:
    ramp = np.tile(np.arange(10, dtype=np.float32) * 20, (6, 1))[..., None]  # 0..180 of 255
    features = LocalBinaryPatterns(value_range=(0, 255)).featurize(ramp, grid_labels(6, 10, 2, 2))
    np.testing.assert_allclose(features[:, 10], 20 / 255, rtol=1e-5)


def test_a_one_pixel_thin_image_has_a_gradient_along_its_length() -> None:
    line = np.arange(5, dtype=np.float32)[None, :, None] / 4
    features = LocalBinaryPatterns().featurize(line, np.zeros((1, 5), dtype=np.int32))
    np.testing.assert_allclose(features[0, 10], 0.25, rtol=1e-5)


# -- shape -----------------------------------------------------------------------------------


def test_a_square_has_its_centroid_area_and_box() -> None:
    labels = np.zeros((10, 20), dtype=np.int32)
    labels[2:6, 4:8] = 1  # rows 2..5, columns 4..7
    features = RegionShape().featurize(np.zeros((10, 20, 3), np.float32), labels)
    area, cy, cx, eccentricity, extent, box_h, box_w = features[1]
    assert area == pytest.approx(16 / 200)
    assert cy == pytest.approx(4 / 10)  # pixel centres 2.5..5.5: mean 4
    assert cx == pytest.approx(6 / 20)
    assert eccentricity == pytest.approx(0.0, abs=1e-6)
    assert extent == pytest.approx(1.0)
    assert (box_h, box_w) == pytest.approx((0.4, 0.2))
    assert features[0, 0] == pytest.approx(184 / 200)


def test_a_whole_image_region_is_centred_and_a_line_is_eccentric() -> None:
    labels = np.zeros((7, 9), dtype=np.int32)
    labels[3, 1:8] = 1
    features = RegionShape().featurize(np.zeros((7, 9, 1), np.float32), labels)
    assert features[1, 3] == pytest.approx(1.0)
    whole = RegionShape().featurize(np.zeros((7, 9, 1), np.float32), np.zeros((7, 9), int))
    np.testing.assert_allclose(whole[0], [1, 0.5, 0.5, whole[0, 3], 1, 1, 1], rtol=1e-6)


def test_shape_matches_regionprops() -> None:
    labels = random_labels(23, 17, 7, seed=7)
    labels[0, 0] = labels.max() + 1  # a single-pixel region too
    height, width = labels.shape
    features = RegionShape().featurize(np.zeros((height, width, 3), np.float32), labels)
    for props in regionprops(labels + 1):
        top, left, bottom, right = props.bbox
        expected = [
            props.area / labels.size,
            (props.centroid[0] + 0.5) / height,
            (props.centroid[1] + 0.5) / width,
            props.eccentricity,
            props.extent,
            (bottom - top) / height,
            (right - left) / width,
        ]
        np.testing.assert_allclose(features[props.label - 1], expected, atol=1e-5)


# -- embedding -------------------------------------------------------------------------------


def test_embedding_is_the_mean_feature_over_each_region() -> None:
    rows, cols = np.indices((4, 4), dtype=np.float64)
    model = EmbeddingModel(np.stack([rows, cols], axis=-1))  # each cell: its (row, column)
    labels = np.zeros((8, 8), dtype=np.int32)
    labels[:, 4:] = 1  # right half
    labels[0:2, 0:2] = 2  # exactly feature cell (0, 0)
    labels[4, 0] = 3  # a quarter of feature cell (2, 0)
    features = ModelEmbedding(layer="block3").featurize(np.zeros((8, 8, 3)), labels, model=model)
    assert model.layers_asked == ["block3"]
    np.testing.assert_allclose(features[1], [1.5, 2.5])
    np.testing.assert_allclose(features[2], [0.0, 0.0])
    np.testing.assert_allclose(features[3], [2.0, 0.0])
    # region 0: 11.75 cells' worth of area in the left half, minus cell (0, 0) and 1/4 of (2, 0)
    weights = np.zeros((4, 4))
    weights[:, :2] = 1.0
    weights[0, 0] = 0.0
    weights[2, 0] = 0.75
    expected = [np.sum(weights * rows) / weights.sum(), np.sum(weights * cols) / weights.sum()]
    np.testing.assert_allclose(features[0], expected)


@pytest.mark.parametrize(("image_side", "map_side"), [(6, 4), (7, 3), (5, 5), (3, 4)])
def test_embedding_weights_equal_averaging_on_a_common_fine_grid(
    image_side: int, map_side: int
) -> None:
    feature_map = np.random.default_rng(8).normal(size=(map_side, map_side, 3))
    labels = random_labels(image_side, image_side, 4, seed=8)
    features = ModelEmbedding().featurize(
        np.zeros((image_side, image_side, 1)), labels, model=EmbeddingModel(feature_map)
    )
    # on a grid of image_side * map_side cells both pixels and feature cells are whole blocks
    fine_labels = np.repeat(np.repeat(labels, map_side, 0), map_side, 1)
    fine_features = np.repeat(np.repeat(feature_map, image_side, 0), image_side, 1)
    for region in range(labels.max() + 1):
        expected = fine_features[fine_labels == region].mean(axis=0)
        np.testing.assert_allclose(features[region], expected, rtol=1e-5, atol=1e-6)


def test_embedding_of_a_non_spatial_layer_asks_for_a_convolutional_one() -> None:
    model = EmbeddingModel(np.zeros(10))  # a pooled, fully connected output: (N, 10)
    with pytest.raises(InvalidInputError, match=r"convolutional layer.*layer_names") as error:
        ModelEmbedding(layer="fc").featurize(
            np.zeros((8, 8, 3)), np.zeros((8, 8), int), model=model
        )
    assert "(1, 10)" in str(error.value) and "'fc'" in str(error.value)


def test_embedding_needs_a_model_with_the_embedding_capability() -> None:
    image, labels = np.zeros((8, 8, 3)), np.zeros((8, 8), dtype=np.int32)
    with pytest.raises(InvalidInputError, match="needs a model"):
        ModelEmbedding().featurize(image, labels)
    forward_only = FunctionAdapter(lambda x: np.zeros((len(x), 2)), fingerprint="zeros")
    with pytest.raises(MissingCapabilityError, match=r"featurizer 'embedding'.*'embedding'"):
        ModelEmbedding().featurize(image, labels, model=forward_only)


# -- standardize_blocks ----------------------------------------------------------------------


def test_standardize_blocks_z_scores_columns_and_weighs_blocks_equally() -> None:
    rng = np.random.default_rng(9)
    wide = rng.normal(5, 3, size=(40, 24)).astype(np.float32)
    narrow = rng.normal(-2, 100, size=(40, 3)).astype(np.float32)
    narrow[:, 1] = 7.0  # constant: separates nothing
    combined = standardize_blocks([wide, narrow])
    assert combined.shape == (40, 27) and combined.dtype == np.float32
    np.testing.assert_allclose(combined.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(combined[:, 24 + 1], 0.0)
    np.testing.assert_allclose(combined[:, :24].var(axis=0).sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(combined[:, 24:].var(axis=0).sum(), 2 / 3, rtol=1e-5)
    reference = StandardScaler().fit_transform(np.hstack([wide, narrow]).astype(np.float64))
    expected = np.hstack([reference[:, :24] / np.sqrt(24), reference[:, 24:] / np.sqrt(3)])
    np.testing.assert_allclose(combined, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_standardize_blocks_reads_chunks_of_rows_to_the_same_result(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imacs.features import combine

    rng = np.random.default_rng(11)
    blocks = [rng.normal(3, 2, size=(50, 5)).astype(np.float32), rng.random((50, 2))]
    whole = standardize_blocks(blocks)
    monkeypatch.setattr(combine, "_CHUNK_ROWS", chunk)
    np.testing.assert_allclose(standardize_blocks(blocks), whole, rtol=1e-6, atol=1e-7)
    blocks[1][49, 0] = np.inf  # found in the last chunk too
    with pytest.raises(InvalidInputError, match="block 1 holds NaN or infinite"):
        standardize_blocks(blocks)


def test_standardize_blocks_ignores_units_and_rounding_noise() -> None:
    rng = np.random.default_rng(10)
    block = rng.random((30, 4))
    rescaled = block * [1.0, 1000.0, 1e-3, 1.0] + [0.0, 5.0, -1.0, 1e3]
    np.testing.assert_allclose(
        standardize_blocks([block]), standardize_blocks([rescaled]), rtol=1e-4, atol=1e-5
    )
    almost_constant = np.full((30, 1), 0.1, dtype=np.float32)
    almost_constant[::3] = np.nextafter(np.float32(0.1), np.float32(1))
    np.testing.assert_array_equal(standardize_blocks([almost_constant]), 0.0)


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ([], "at least one block"),
        ([np.zeros((3, 2)), np.zeros((4, 2))], "same N rows"),
        ([np.zeros(3)], "2-D"),
        ([np.array([[np.nan, 1.0]])], "NaN"),
    ],
)
def test_standardize_blocks_refuses_what_it_cannot_combine(
    blocks: list[np.ndarray], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        standardize_blocks(blocks)


# -- batches --------------------------------------------------------------------------------


def mixed_batch(channels: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Four 14x18 images, two in 0..1 and two in 0..255, with ragged and flat regions."""
    rng = np.random.default_rng(11)
    images = rng.random((4, 14, 18, channels), dtype=np.float32)
    images[1] *= 255
    images[3] = np.round(images[3] * 4) * 60  # flat patches, an 8-bit range
    labels = [random_labels(14, 18, n, seed) for seed, n in enumerate((5, 1, 9, 3))]
    return images, labels


@pytest.mark.parametrize(("featurizer", "dimension"), FEATURIZERS, ids=IDS)
@pytest.mark.parametrize("channels", [3, 1, 4])
def test_a_batch_gives_each_image_exactly_its_own_features(
    featurizer: Featurizer, dimension: int, channels: int
) -> None:
    from imacs.testing import check_featurizer

    images, labels = mixed_batch(channels)
    check_featurizer(featurizer, images, labels, model=spatial_model())


@pytest.mark.parametrize(("featurizer", "dimension"), FEATURIZERS[:5], ids=IDS[:5])
def test_images_of_different_sizes_are_featurized_one_at_a_time(
    featurizer: Featurizer, dimension: int
) -> None:
    images = [rgb_image(10, 12, 0), rgb_image(15, 9, 1) * 255]
    labels = [random_labels(10, 12, 4, 0), random_labels(15, 9, 6, 1)]
    batched = featurizer.featurize_batch(images, labels)
    for image, label_map, features in zip(images, labels, batched, strict=True):
        np.testing.assert_array_equal(features, featurizer.featurize(image, label_map))


def test_the_embedding_featurizer_makes_one_model_call_per_batch() -> None:
    model = spatial_model()
    images, labels = mixed_batch(3)
    ModelEmbedding().featurize_batch(images, labels, model=model)
    assert len(model.layers_asked) == 1


def test_featurize_batch_refuses_unpaired_or_bad_inputs() -> None:
    images, labels = mixed_batch(3)
    with pytest.raises(InvalidInputError, match="one label map per image; got 4 images and 3"):
        ColorHistogram().featurize_batch(images, labels[:3])
    with pytest.raises(InvalidInputError, match=r"expected an image \(H, W, C\) and labels"):
        ColorHistogram().featurize_batch(images, [label_map[:-1] for label_map in labels])
    assert ColorHistogram().featurize_batch(images[:0], []) == []


class IgnoresOffsets(ColorHistogram):
    """A broken batch: every image gets the first image's features."""

    name = "broken-color"

    def _featurize_batch(self, images: Any, labels: Any, model: Any) -> list[np.ndarray]:
        first = self._featurize(images[0], labels[0], model)
        return [first[: int(label_map.max()) + 1] for label_map in labels]


def test_the_featurizer_checks_catch_a_batch_that_mixes_images_up() -> None:
    from imacs.testing import check_featurizer

    images, labels = mixed_batch(3)
    labels = [np.minimum(label_map, 0) for label_map in labels]  # one region each
    with pytest.raises(AssertionError, match="batch_equals_single_images"):
        check_featurizer(IgnoresOffsets(), images, labels)
