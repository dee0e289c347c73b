"""XRAI against PAIR saliency's implementation, and its own contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import skimage.data
from scipy.ndimage import gaussian_filter
from skimage.transform import resize

from imacs.attribution.gradient import Gradient
from imacs.attribution.xrai import XRAI, XRAIResult, register_attribution_methods, xrai_regions
from imacs.errors import InvalidInputError
from imacs.segmentation.felzenszwalb import Felzenszwalb, label_masks, xrai_segments
from imacs.testing import check_attribution_method, softplus_model

pair_xrai = pytest.importorskip("saliency.core.xrai")
from saliency.core.base import INPUT_OUTPUT_GRADIENTS  # noqa: E402

SHAPE = (40, 48, 3)


def natural_images() -> np.ndarray:
    names = ("astronaut", "coffee", "chelsea")
    return np.stack(
        [resize(getattr(skimage.data, n)(), SHAPE[:2], preserve_range=True) / 255 for n in names]
    ).astype(np.float32)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return natural_images()


@pytest.fixture(scope="module")
def segments(images: np.ndarray) -> list[np.ndarray]:
    return [xrai_segments(image) for image in images]


@pytest.fixture(scope="module")
def attributions(images: np.ndarray) -> np.ndarray:
    # smooth, signed, with many near-equal region densities: a hard case for tie-breaking
    noise = np.random.default_rng(0).normal(size=images.shape)
    return gaussian_filter(noise, sigma=(0, 2, 2, 0)).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> Any:
    return softplus_model(SHAPE)


TARGETS = np.array([0, 1, 3])


def pair(image: np.ndarray, attribution: np.ndarray, masks: np.ndarray, **params: Any) -> Any:
    extra = pair_xrai.XRAIParameters()
    extra.return_xrai_segments = True
    for name, value in params.items():
        if name == "min_pixel_diff":
            extra.experimental_params["min_pixel_diff"] = value
        else:
            setattr(extra, name, value)
    return pair_xrai.XRAI().GetMaskWithDetails(
        image, None, base_attribution=attribution, segments=list(masks), extra_parameters=extra
    )


CASES = [
    {"algorithm": "full"},
    {"algorithm": "fast"},
    {"algorithm": "full", "area_threshold": 0.4},
    {"algorithm": "full", "min_pixel_diff": 1},
    {"algorithm": "fast", "min_pixel_diff": 200},
    {"algorithm": "full", "flatten_xrai_segments": False},
    {"algorithm": "fast", "flatten_xrai_segments": False},
]


@pytest.mark.parametrize("params", CASES, ids=lambda p: "-".join(map(str, p.values())))
def test_map_and_ranking_equal_pairs(
    params: dict[str, Any],
    images: np.ndarray,
    segments: list[np.ndarray],
    attributions: np.ndarray,
    model: Any,
) -> None:
    method = XRAI(base_attribution=attributions, segments=segments, **params)
    result = method.attribute(model, images, TARGETS)
    assert isinstance(result, XRAIResult)
    for i, image in enumerate(images):
        expected = pair(image, attributions[i], segments[i], **params)
        for c in range(images.shape[-1]):  # the map is the same in every channel
            assert np.array_equal(result.maps[i, ..., c], expected.attribution_mask)
        assert result.segments is not None
        if params.get("flatten_xrai_segments", True):
            assert np.array_equal(result.segments[i], expected.segments)
        else:
            assert np.array_equal(result.segments[i], np.stack(expected.segments))


@pytest.mark.parametrize("algorithm", ["full", "fast"])
@pytest.mark.parametrize("kind", ["integers", "noise"])
def test_exact_ties_are_broken_as_pair_does(
    algorithm: str, kind: str, images: np.ndarray, segments: list[np.ndarray]
) -> None:
    rng = np.random.default_rng(1)
    if kind == "integers":  # many regions with exactly equal densities
        attribution = rng.integers(-1, 2, size=SHAPE).astype(np.float32)
    else:
        attribution = rng.normal(size=SHAPE).astype(np.float32)
    # repeated masks too: PAIR must pick the first copy
    masks = np.concatenate([segments[0], segments[0][::-1]])
    values, ranks = xrai_regions(attribution, masks, algorithm=algorithm, min_pixel_diff=5)
    expected = pair(images[0], attribution, masks, algorithm=algorithm, min_pixel_diff=5)
    assert np.array_equal(values, expected.attribution_mask)
    assert np.array_equal(ranks, expected.segments)


def test_default_base_attribution_is_pairs_integrated_gradients(images: np.ndarray) -> None:
    small = images[:2, :16, :16]
    model = softplus_model(small.shape[1:])
    targets = np.array([1, 2])
    result = XRAI(steps=8).attribute(model, small, targets, batch_size=5)
    assert isinstance(result, XRAIResult) and result.segments is not None

    def call_model(
        batch: np.ndarray, call_model_args: Any = None, expected_keys: Any = None
    ) -> dict[str, np.ndarray]:
        grads = model.gradients(batch, np.full(len(batch), call_model_args))
        return {INPUT_OUTPUT_GRADIENTS: grads}

    for i in range(len(small)):
        extra = pair_xrai.XRAIParameters(steps=8, return_xrai_segments=True)
        expected = pair_xrai.XRAI().GetMaskWithDetails(
            small[i], call_model, call_model_args=targets[i], extra_parameters=extra
        )
        np.testing.assert_allclose(result.maps[i, ..., 0], expected.attribution_mask, rtol=1e-4)
        assert np.array_equal(result.segments[i], expected.segments)


def test_maps_total_the_channel_max_attribution(
    images: np.ndarray, segments: list[np.ndarray], attributions: np.ndarray, model: Any
) -> None:
    result = XRAI(base_attribution=attributions, segments=segments).attribute(
        model, images, TARGETS
    )
    totals = result.maps[..., 0].astype(np.float64).sum(axis=(1, 2))
    expected = attributions.max(axis=-1).astype(np.float64).sum(axis=(1, 2))
    np.testing.assert_allclose(totals, expected, rtol=1e-5, atol=1e-4)
    assert np.array_equal(result.maps[..., 0], result.maps[..., 2])


def test_ranks_run_from_one_and_order_the_regions(
    images: np.ndarray, segments: list[np.ndarray], attributions: np.ndarray, model: Any
) -> None:
    result = XRAI(base_attribution=attributions, segments=segments).attribute(
        model, images, TARGETS
    )
    assert isinstance(result, XRAIResult)
    ranks = result.segments
    assert isinstance(ranks, np.ndarray) and ranks.shape == images.shape[:3]
    for i in range(len(images)):
        present = np.unique(ranks[i])
        assert np.array_equal(present, np.arange(1, present[-1] + 1))
        values = [result.maps[i, ..., 0][ranks[i] == r][0] for r in present]
        if not (ranks[i] == present[-1]).all():  # regions before the uncovered rest
            assert values[:-1] == sorted(values[:-1], reverse=True)


def test_method_instance_and_precomputed_maps_agree(
    images: np.ndarray, segments: list[np.ndarray], model: Any
) -> None:
    maps = Gradient().attribute(model, images, TARGETS).maps
    from_method = XRAI(base_attribution=Gradient(), segments=segments)
    from_maps = XRAI(base_attribution=maps, segments=segments)
    reduced = XRAI(base_attribution=maps.max(axis=-1), segments=segments)
    expected = from_maps.attribute(model, images, TARGETS).maps
    assert np.array_equal(from_method.attribute(model, images, TARGETS).maps, expected)
    assert np.array_equal(reduced.attribute(model, images, TARGETS).maps, expected)


def test_segmenter_and_label_maps_as_candidates(
    images: np.ndarray, attributions: np.ndarray, model: Any
) -> None:
    segmenter = Felzenszwalb(resize_to=None, scale=50, min_size=20)
    labels = [segmenter.segment(image) for image in images]
    by_segmenter = XRAI(base_attribution=attributions, segments=segmenter, min_pixel_diff=1)
    by_labels = XRAI(base_attribution=attributions, segments=labels, min_pixel_diff=1)
    by_masks = XRAI(
        base_attribution=attributions,
        segments=[label_masks(label) for label in labels],
        min_pixel_diff=1,
    )
    result = by_segmenter.attribute(model, images, TARGETS)
    assert np.array_equal(by_labels.attribute(model, images, TARGETS).maps, result.maps)
    assert np.array_equal(by_masks.attribute(model, images, TARGETS).maps, result.maps)
    # a partition: every region holds the mean channel-max attribution over it
    reduced = attributions.max(axis=-1)
    for i in range(len(images)):
        for label in np.unique(labels[i])[:5]:
            region = labels[i] == label
            np.testing.assert_allclose(result.maps[i, ..., 0][region], reduced[i][region].mean())


def test_default_segments_pass_the_conformance_suite() -> None:
    images = natural_images()[:, :16, :20]
    model = softplus_model(images.shape[1:])
    method = XRAI(base_attribution=Gradient(), min_pixel_diff=10)
    check_attribution_method(method, model, images, TARGETS)
    fast = XRAI(base_attribution=Gradient(), algorithm="fast", min_pixel_diff=10)
    check_attribution_method(fast, model, images, TARGETS)


def test_results_do_not_depend_on_batch_composition(
    images: np.ndarray, segments: list[np.ndarray], attributions: np.ndarray, model: Any
) -> None:
    together = XRAI(base_attribution=attributions, segments=segments).attribute(
        model, images, TARGETS, batch_size=1
    )
    alone = XRAI(base_attribution=attributions[1:2], segments=segments[1:2]).attribute(
        model, images[1:2], TARGETS[1:2], batch_size=64
    )
    assert np.array_equal(together.maps[1], alone.maps[0])


@pytest.mark.parametrize(
    ("make_wrong", "match"),
    [
        (lambda s: s[:2], "each of the 3 images"),
        (lambda s: [m[:, :-1] for m in s], "segments of image 0"),
        (lambda s: [m.astype(np.float32) for m in s], "bool"),
        (lambda s: [m[0].astype(np.float32) for m in s], "int label map"),
        (lambda s: [m[0] for m in s], "segments of image 0"),  # one mask, not a stack
    ],
)
def test_segments_of_the_wrong_shape_raise(
    make_wrong: Any,
    match: str,
    images: np.ndarray,
    segments: list[np.ndarray],
    attributions: np.ndarray,
    model: Any,
) -> None:
    wrong = make_wrong(segments)
    with pytest.raises(InvalidInputError, match=match):
        XRAI(base_attribution=attributions, segments=wrong).attribute(model, images, TARGETS)


def test_bad_base_attribution_raises(
    images: np.ndarray, segments: list[np.ndarray], model: Any
) -> None:
    with pytest.raises(InvalidInputError, match="base_attribution maps"):
        XRAI(base_attribution=np.zeros((3, 40, 47, 3)), segments=segments).attribute(
            model, images, TARGETS
        )
    nan = np.full(images.shape, np.nan)
    with pytest.raises(InvalidInputError, match="NaN"):
        XRAI(base_attribution=nan, segments=segments).attribute(model, images, TARGETS)
    with pytest.raises(InvalidInputError, match="base_attribution"):
        XRAI(base_attribution="integrated-gradients")


@pytest.mark.parametrize(
    "params",
    [
        {"algorithm": "medium"},
        {"area_threshold": 1.5},
        {"area_threshold": "all"},
        {"min_pixel_diff": 0},
        {"steps": 0},
        {"segments": "felzenszwalb"},
    ],
)
def test_bad_parameters_raise(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        XRAI(**params)


def test_parameters_are_pairs_and_the_method_is_registered() -> None:
    assert XRAI().get_params() == {
        "steps": 100,
        "area_threshold": 1.0,
        "algorithm": "full",
        "min_pixel_diff": 50,
        "flatten_xrai_segments": True,
        "base_attribution": None,
        "segments": None,
    }
    registered: list[type] = []
    register_attribution_methods(registered.append)
    assert registered == [XRAI] and XRAI.name == "xrai"


def test_threads_change_nothing(images: np.ndarray, segments: list[np.ndarray], model: Any) -> None:
    from imacs.attribution.xrai import SEGMENT_CACHE

    for image, expected in zip(images, segments, strict=True):
        np.testing.assert_array_equal(xrai_segments(image, n_jobs=1), expected)
        np.testing.assert_array_equal(xrai_segments(image, n_jobs=4), expected)
    base = Gradient().attribute(model, images, TARGETS).maps
    method = XRAI(base_attribution=base)
    SEGMENT_CACHE.clear()
    together = method.attribute(model, images, TARGETS)
    SEGMENT_CACHE.clear()
    for i in range(len(images)):  # one image alone segments its scales on threads
        alone = XRAI(base_attribution=base[i : i + 1]).attribute(
            model, images[i : i + 1], TARGETS[i : i + 1]
        )
        np.testing.assert_array_equal(alone.maps[0], together.maps[i])
        np.testing.assert_array_equal(alone.segments[0], together.segments[i])
