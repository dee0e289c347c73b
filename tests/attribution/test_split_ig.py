"""Split IG: left + right is right-Riemann IG, and the split lands where the score saturates."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.adapters.function import FunctionAdapter
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.attribution.split_ig import SplitIGResult, SplitIntegratedGradients
from imacs.errors import InvalidInputError
from imacs.testing import check_attribution_method, softplus_model

SHAPE = (6, 6, 3)
W = np.random.default_rng(0).uniform(0.5, 1.5, size=SHAPE)


def saturating_model(gain: float = 1.0) -> FunctionAdapter:
    """Class 0 scores ``tanh(gain * <w, x>)``, class 1 its negative: both saturate."""

    def inner(x: np.ndarray) -> np.ndarray:
        return gain * (x.astype(np.float64) * W).sum(axis=(1, 2, 3))

    def predict(x: np.ndarray) -> np.ndarray:
        f = np.tanh(inner(x))
        return np.stack([f, -f], 1).astype(np.float32)

    def gradients(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        slope = gain * (1 - np.tanh(inner(x)) ** 2) * np.where(t == 0, 1.0, -1.0)
        return (slope[:, None, None, None] * W).astype(np.float32)

    return FunctionAdapter(predict, gradients, fingerprint=f"tanh:{gain}")


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(1).random((3, *SHAPE), dtype=np.float32)


def test_left_plus_right_is_right_riemann_ig(images: np.ndarray) -> None:
    model = softplus_model(image_shape=SHAPE)
    targets = [0, 1, 2]
    split = SplitIntegratedGradients(n_steps=30, ratio=0.7).attribute(
        model, images, targets, batch_size=7
    )
    ig = IntegratedGradients(n_steps=30, quadrature="riemann_right").attribute(
        model, images, targets
    )
    assert isinstance(split, SplitIGResult)
    assert split.saturated_maps is not None
    scale = np.abs(ig.maps).max()
    assert np.abs(split.maps + split.saturated_maps - ig.maps).max() <= 1e-5 * scale
    np.testing.assert_allclose(split.convergence_delta, ig.convergence_delta, atol=1e-6)


@pytest.mark.parametrize("target", [0, 1])  # rising and falling scores split alike
@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_split_lands_where_the_score_passes_the_ratio(
    images: np.ndarray, target: int, ratio: float
) -> None:
    gain = 0.05  # <w, x> is about 50, so the score goes from 0 to tanh(2.5)
    n = 200
    result = SplitIntegratedGradients(n_steps=n, ratio=ratio).attribute(
        saturating_model(gain), images, target, batch_size=64
    )
    # along the path from black, the score is tanh(alpha * s): it passes
    # ratio * tanh(s) at alpha* = atanh(ratio * tanh(s)) / s, so the left part holds
    # the points alpha = i / n <= alpha*
    s = gain * (images.astype(np.float64) * W).sum(axis=(1, 2, 3))
    alpha_star = np.arctanh(ratio * np.tanh(s)) / s
    np.testing.assert_array_equal(result.split_index, np.floor(alpha_star * n))
    # the score saturates, so it passes the ratio before a linear score would
    assert (result.split_index < ratio * n).all()
    # the left part carries `ratio` of the score change, up to about one step's worth
    change = np.tanh(s) * (1 if target == 0 else -1)
    left_share = result.maps.reshape(3, -1).sum(axis=1) / change
    assert np.all(np.abs(left_share - ratio) < 2 * s.max() / n)


def test_baseline_may_be_a_list_of_one(images: np.ndarray) -> None:
    model = saturating_model(0.05)
    listed = SplitIntegratedGradients(n_steps=8, baseline=[0.2]).attribute(model, images, 0)
    single = SplitIntegratedGradients(n_steps=8, baseline=0.2).attribute(model, images, 0)
    np.testing.assert_array_equal(listed.maps, single.maps)


def test_unchanged_score_leaves_everything_on_the_left() -> None:
    model = saturating_model()
    x = np.zeros((1, *SHAPE), dtype=np.float32)  # the image is its own black baseline
    result = SplitIntegratedGradients(n_steps=10).attribute(model, x, 0)
    assert result.split_index is not None and result.split_index[0] == 10
    assert result.saturated_maps is not None and not result.saturated_maps.any()


def test_ratio_zero_puts_everything_right_and_one_everything_left(images: np.ndarray) -> None:
    model = saturating_model(0.4)
    nothing_left = SplitIntegratedGradients(n_steps=20, ratio=0.0).attribute(model, images, 0)
    assert (nothing_left.split_index == 0).all()
    assert not nothing_left.maps.any()
    all_left = SplitIntegratedGradients(n_steps=20, ratio=1.0).attribute(model, images, 0)
    # the last point is x itself, whose score equals the threshold, so never passes it
    assert (all_left.split_index == 20).all()


def test_passes_the_conformance_suite(images: np.ndarray) -> None:
    check_attribution_method(
        SplitIntegratedGradients(n_steps=20), softplus_model(image_shape=SHAPE), images, [0, 1, 2]
    )
    check_attribution_method(
        SplitIntegratedGradients(n_steps=20, ratio=0.3), saturating_model(0.4), images, [0, 1, 0]
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"ratio": 1.5}, "ratio"),
        ({"ratio": "half"}, "ratio"),
        ({"n_steps": 0}, "n_steps"),
        ({"baseline": ["black", "white"]}, "one baseline"),
        ({"baseline": "grey"}, "unknown baseline"),
    ],
)
def test_bad_parameters_are_refused(params: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        SplitIntegratedGradients(**params)


def test_registered_as_split_ig(imacs_host, images: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    import imacs

    result = imacs.attribute(saturating_model(), images, 0, method="split-ig", n_steps=8)
    assert isinstance(result, SplitIGResult) and result.method == "split-ig"
