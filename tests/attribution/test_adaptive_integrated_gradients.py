"""Integrated Gradients with ``n_steps="auto"``: per-image doubling of the trapezoid rule."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.errors import InvalidInputError
from imacs.testing import check_attribution_method, softplus_model

TARGETS = np.array([0, 1, 2, 3, 0])


@pytest.fixture
def images() -> np.ndarray:
    # bright images: the softplus network bends along their paths, so they need many steps
    images = 3 * np.random.default_rng(0).random((5, 8, 8, 3), dtype=np.float32)
    images[4] *= 0.01  # near the black baseline: the path is almost straight in F
    return images


def auto(tolerance: float = 1e-4, **params: object) -> IntegratedGradients:
    return IntegratedGradients(
        n_steps="auto", quadrature="trapezoid", tolerance=tolerance, **params
    )


def test_every_image_ends_within_the_tolerance(images: np.ndarray) -> None:
    method = auto(1e-4)
    result = method.attribute(softplus_model(), images, TARGETS, batch_size=7)
    assert result.convergence_delta is not None
    assert (np.abs(result.convergence_delta) <= 1e-4).all()
    assert method.last_steps is not None and method.last_steps.shape == (1, 5)


def test_maps_equal_the_fixed_trapezoid_rule_with_the_steps_each_image_took(
    images: np.ndarray,
) -> None:
    model = softplus_model()
    method = auto(1e-4)
    result = method.attribute(model, images, TARGETS, batch_size=16)
    assert method.last_steps is not None
    for i, intervals in enumerate(method.last_steps[0]):
        fixed = IntegratedGradients(n_steps=int(intervals) + 1, quadrature="trapezoid")
        expected = fixed.attribute(model, images[i : i + 1], TARGETS[i : i + 1])
        np.testing.assert_allclose(result.maps[i : i + 1], expected.maps, rtol=1e-5, atol=1e-7)


def test_an_easy_image_stops_early_and_the_passes_are_counted(images: np.ndarray) -> None:
    model = softplus_model()
    inner = model.value_and_gradients
    sizes: list[int] = []

    def counting(inputs: np.ndarray, targets: np.ndarray, **options: object) -> object:
        sizes.append(len(inputs))
        return inner(inputs, targets, **options)  # type: ignore[arg-type]

    model.value_and_gradients = counting  # type: ignore[method-assign,assignment]
    method = auto(1e-4)
    method.attribute(model, images, TARGETS, batch_size=64)
    assert method.last_steps is not None
    steps = method.last_steps[0]
    assert steps[4] == 8 and steps[:4].min() > 8
    # each path saw intervals + 1 gradients, the earlier points reused
    assert sum(sizes) == int((steps + 1).sum())


def test_results_do_not_depend_on_batch_size(images: np.ndarray) -> None:
    model = softplus_model()
    results = []
    for batch_size in (3, 64):
        method = auto(1e-4, baselines=["black", "white"])
        results.append((method.attribute(model, images, TARGETS, batch_size=batch_size), method))
    (first, m1), (second, m2) = results
    np.testing.assert_array_equal(m1.last_steps, m2.last_steps)
    np.testing.assert_allclose(first.maps, second.maps, rtol=1e-6, atol=1e-9)


def test_max_steps_caps_the_doubling(images: np.ndarray) -> None:
    method = auto(1e-12, max_steps=16)
    result = method.attribute(softplus_model(), images, TARGETS)
    assert method.last_steps is not None and method.last_steps.max() == 16
    assert result.convergence_delta is not None


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"quadrature": "gausslegendre"}, "quadrature='trapezoid'"),
        ({"quadrature": "trapezoid", "tolerance": 0}, "tolerance"),
        ({"quadrature": "trapezoid", "max_steps": 24}, "power of two"),
        ({"quadrature": "trapezoid", "max_steps": 4}, "power of two"),
    ],
)
def test_bad_auto_settings_are_refused(params: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        IntegratedGradients(n_steps="auto", **params)  # type: ignore[arg-type]


def test_fixed_step_counts_keep_their_parameters() -> None:
    assert "tolerance" not in IntegratedGradients().get_params()
    assert auto().get_params()["tolerance"] == 1e-4


def test_the_conformance_kit_passes(images: np.ndarray) -> None:
    check_attribution_method(
        auto(1e-3),
        softplus_model(),
        images,
        TARGETS,
        completeness=True,
    )
    check_attribution_method(
        auto(1e-3, baselines=[0.0, 1.0]),
        softplus_model(),
        images,
        TARGETS,
        completeness=True,
        baselines=[0.0, 1.0],
    )
