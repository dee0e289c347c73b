"""PAMI against a loop transcribed from the official code, a one-quadrant model, bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.ndimage import correlate, gaussian_filter
from skimage.color import rgb2gray
from skimage.filters import sobel
from skimage.segmentation import felzenszwalb, slic, watershed

from imacs.adapters.function import FunctionAdapter
from imacs.attribution.pami import PAMI, PAPER_SEGMENTATIONS
from imacs.errors import InvalidInputError
from imacs.testing import check_attribution_method, softplus_model

SMALL_SEGMENTATIONS = [
    ("felzenszwalb", {"scale": 100, "sigma": 0.8, "min_size": 8}),
    ("slic", {"n_segments": 6, "compactness": 20}),
    ("slic", {"n_segments": 12, "compactness": 20}),
    ("watershed", {"markers": 5, "compactness": 1e-4}),
]


def forward_only(shape: tuple[int, int, int]) -> FunctionAdapter:
    return FunctionAdapter(softplus_model(shape).predict_fn, image_shape=shape)


def block_images(n: int, size: int, block: int, seed: int = 0) -> np.ndarray:
    """Images of flat colour blocks with a little noise: segmenters find the blocks."""
    rng = np.random.default_rng(seed)
    colours = rng.random((n, size // block, size // block, 3))
    x = np.repeat(np.repeat(colours, block, axis=1), block, axis=2)
    return np.clip(x + 0.02 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)


def official_blur(view: np.ndarray, size: int, sigma: float = 100.0) -> np.ndarray:
    """``functional/Blur.py``: a delta blurred by gaussian_filter (2-D, reflect mode) as
    the kernel, applied per channel by conv2d with zero padding of size // 2."""
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1
    kernel = gaussian_filter(delta, sigma)
    return np.stack(
        [correlate(view[..., c].astype(np.float64), kernel, mode="constant") for c in range(3)],
        axis=-1,
    )


def pami_loop(
    model: FunctionAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    shifts: list[tuple[int, int]],
    blur_size: int,
) -> np.ndarray:
    """``methods/pre_segmentation.py`` one mask at a time, with ``Shift`` and the final
    ``importance_map / (N + 1e-9)`` of ``run_presegmentation.py``."""
    segmenters: dict[str, Any] = {
        "felzenszwalb": felzenszwalb,
        "slic": slic,
        "watershed": lambda img, **kw: watershed(sobel(rgb2gray(img)), **kw),
    }
    maps = []
    for image, target in zip(images, targets, strict=True):
        heat = np.zeros(image.shape[:2])
        coverage = np.zeros(image.shape[:2])
        for dy, dx in [(0, 0), *shifts]:
            view = np.roll(image, (-dy, -dx), axis=(0, 1))
            substrate = official_blur(view, blur_size)
            candidate = np.uint8(255 * view)
            masks = []
            for name, params in SMALL_SEGMENTATIONS:
                split = segmenters[name](candidate, **params)
                if split.min() == 0:
                    split = split + 1
                masks += [split == k for k in range(1, split.max() + 1)]
            coverage += np.sum(masks, axis=0)
            view_heat = np.zeros(image.shape[:2])
            for mask in masks:
                kept = view * mask[..., None] + substrate * ~mask[..., None]
                logits = model.predict(kept[None].astype(np.float32))[0].astype(np.float64)
                probabilities = np.exp(logits - logits.max())
                view_heat += probabilities[target] / probabilities.sum() * mask
            heat += np.roll(view_heat, (dy, dx), axis=(0, 1))
        maps.append(heat / (coverage + 1e-9))
    return np.stack(maps)


def test_equals_a_loop_transcribed_from_the_official_code() -> None:
    images = block_images(2, 16, 4)
    model = forward_only((16, 16, 3))
    targets = np.array([1, 3])
    shifts = [(3, 0), (0, -2)]
    # the paper's 49-pixel kernel (for 224 pixels) scaled to 16: 2 * round(24 * 16 / 224) + 1
    expected = pami_loop(model, images, targets, shifts, blur_size=5)
    method = PAMI(segmentations=SMALL_SEGMENTATIONS, shifts=shifts)
    maps = method.attribute(model, images, targets, batch_size=9).maps
    assert np.array_equal(maps[..., 0], maps[..., 2])  # one value per pixel, all channels
    np.testing.assert_allclose(maps[..., 0], expected, rtol=1e-6, atol=1e-9)


def test_the_blur_substrate_is_the_official_kernel_at_224_pixels() -> None:
    view = np.random.default_rng(0).random((224, 224, 3), dtype=np.float32)
    ours = PAMI()._substrate(view)
    np.testing.assert_allclose(ours, official_blur(view, 49), rtol=0, atol=1e-6)


def test_a_model_reading_one_quadrant_puts_nearly_all_mass_there() -> None:
    size = 32

    def predict(x: np.ndarray) -> np.ndarray:
        top_left = x[:, : size // 2, : size // 2, 0].mean(axis=(1, 2))
        return np.stack([50 * top_left - 5, np.zeros_like(top_left)], axis=1)

    model = FunctionAdapter(predict, image_shape=(size, size, 3))
    images = block_images(3, size, 8, seed=0)
    images[:, : size // 2, : size // 2, 0] = 0.5 + 0.5 * images[:, : size // 2, : size // 2, 0]
    maps = PAMI(shifts=(), substrate="black").attribute(model, images, 0).maps[..., 0]
    quadrant = maps[:, : size // 2, : size // 2]
    share = quadrant.sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    assert (share > 0.8).all()  # a quarter of the image holds over 80% of the mass
    # the rest is segments straddling the quadrant's edge: every pixel of the quadrant
    # still outranks every pixel outside it
    outside = maps.copy()
    outside[:, : size // 2, : size // 2] = -np.inf
    assert (quadrant.min(axis=(1, 2)) > outside.max(axis=(1, 2))).all()


def test_passes_the_conformance_suite_on_a_forward_only_model() -> None:
    images = block_images(3, 8, 2, seed=2)
    method = PAMI(segmentations=SMALL_SEGMENTATIONS, shifts=((2, 1),))
    check_attribution_method(method, forward_only((8, 8, 3)), images, [0, 2, 3])


def test_masked_copies_of_several_images_fill_every_model_call() -> None:
    images = block_images(3, 8, 2, seed=2)
    predict = softplus_model((8, 8, 3)).predict_fn
    sizes: list[int] = []

    def recording_predict(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return np.asarray(predict(x))

    model = FunctionAdapter(recording_predict, image_shape=(8, 8, 3))
    model.predict(images[:1])
    sizes.clear()
    PAMI(segmentations=SMALL_SEGMENTATIONS, shifts=((1, 1),)).attribute(
        model, images, [0, 1, 2], batch_size=16
    )
    # chunks run across segmentations, views and images: all full but the last
    assert len(sizes) > 3
    assert sizes[:-1] == [16] * (len(sizes) - 1)
    assert 1 <= sizes[-1] <= 16


def test_softmax_is_taken_from_the_outputs_whatever_the_adapter_target() -> None:
    images = block_images(2, 8, 2, seed=3)
    logits = softplus_model((8, 8, 3))
    probabilities = FunctionAdapter(logits.predict_fn, target="probability")
    params: dict[str, Any] = {"segmentations": SMALL_SEGMENTATIONS, "shifts": ()}
    paper = PAMI(**params).attribute(logits, images, [0, 1]).maps
    own_target = PAMI(softmax=False, **params).attribute(probabilities, images, [0, 1]).maps
    raw_logits = PAMI(softmax=False, **params).attribute(logits, images, [0, 1]).maps
    np.testing.assert_allclose(paper, own_target, rtol=1e-6)
    assert np.abs(raw_logits - paper).max() > 1e-3


def test_paper_defaults_at_224_pixels_and_scaled_below() -> None:
    method = PAMI()
    assert method.segmentation_list(224, 224) == [(n, dict(p)) for n, p in PAPER_SEGMENTATIONS]
    assert len(PAPER_SEGMENTATIONS) == 17  # the paper's 20 without SEEDS
    assert method.views(224, 224)[:5] == [(0, 0), (36, 0), (0, 36), (-36, 0), (0, -36)]
    assert len(method.views(224, 224)) == 13
    small = dict(method.segmentation_list(32, 32)[0][1])
    assert small["min_size"] == 16  # 784 scaled by (32 / 224) ** 2
    assert method.views(32, 32)[1:5] == [(5, 0), (0, 5), (-5, 0), (0, -5)]
    assert PAMI(shifts=()).views(32, 32) == [(0, 0)]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"segmentations": "fast"}, "segmentations"),
        ({"segmentations": []}, "segmentations"),
        ({"segmentations": [("seeds", {})]}, "felzenszwalb, slic, watershed"),
        ({"segmentations": [("slic", 10)]}, "params a dict"),
        ({"shifts": [(1, 2, 3)]}, "shifts"),
        ({"shifts": "none"}, "shifts"),
        ({"substrate": "grey"}, "unknown substrate"),
        ({"softmax": "yes"}, "softmax"),
        ({"pixel_range": (1.0, 0.0)}, "pixel_range"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        PAMI(**params)


def test_bad_segmenter_parameters_name_the_segmentation() -> None:
    method = PAMI(segmentations=[("slic", {"segments": 5})], shifts=())
    with pytest.raises(InvalidInputError, match="'slic' rejected"):
        method.attribute(forward_only((8, 8, 3)), block_images(1, 8, 2), 0)
