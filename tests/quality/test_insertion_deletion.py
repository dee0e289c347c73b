"""Insertion and deletion equal RISE's loop, written here one image and one step at a time."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import imacs
from imacs.testing import check_quality_measure


def softmax_target(model, image, target):
    z = model.predict(image[None]).astype(np.float64)[0]
    p = np.exp(z - z.max())
    return p[target] / p.sum()


def rise_loop(model, image, target, saliency, mode, step):
    """RISE's CausalMetric.single_run: move `step` pixels per step, most salient first."""
    h, w, c = image.shape
    n_steps = (h * w + step - 1) // step
    if mode == "del":
        start, finish = image.copy(), np.zeros_like(image)
    else:
        impulse = np.zeros((11, 11))
        impulse[5, 5] = 1
        kernel = ndimage.gaussian_filter(impulse, 5)
        blurred = np.stack(
            [
                ndimage.convolve(image[..., k].astype(np.float64), kernel, mode="constant")
                for k in range(c)
            ],
            axis=-1,
        ).astype(np.float32)
        start, finish = blurred, image.copy()
    order = np.argsort(-saliency.reshape(-1), kind="stable")
    scores = np.empty(n_steps + 1)
    for i in range(n_steps + 1):
        scores[i] = softmax_target(model, start, target)
        if i < n_steps:
            coords = order[step * i : step * (i + 1)]
            start.reshape(h * w, c)[coords] = finish.reshape(h * w, c)[coords]
    return (scores.sum() - scores[0] / 2 - scores[-1] / 2) / (len(scores) - 1)


@pytest.mark.parametrize(("name", "mode"), [("insertion", "ins"), ("deletion", "del")])
@pytest.mark.parametrize("n_steps", [None, 5])
def test_equals_the_direct_loop(name, mode, n_steps, toy_model, toy_images, toy_targets, toy_maps):
    measure = imacs.get_component("measure", name, n_steps=n_steps)
    result = measure.evaluate(toy_model, toy_images, toy_targets, toy_maps, batch_size=5)
    step = 8 if n_steps is None else -(-64 // 5)
    expected = [
        rise_loop(toy_model, x, t, m.sum(axis=-1), mode, step)
        for x, t, m in zip(toy_images, toy_targets, toy_maps, strict=True)
    ]
    np.testing.assert_allclose(result.scores, expected, rtol=1e-6, atol=1e-9)
    assert result.curves.shape == (8, -(-64 // step) + 1)
    assert result.curve_x[0] == 0 and result.curve_x[-1] == 1


@pytest.mark.parametrize("name", ["insertion", "deletion"])
def test_passes_the_conformance_check(name, toy_model, toy_images, toy_targets, toy_maps):
    check_quality_measure(
        imacs.get_component("measure", name, n_steps=6),
        toy_model,
        toy_images,
        toy_targets,
        toy_maps,
    )


def test_costs_one_forward_pass_per_point_and_image(toy_model, toy_images, toy_targets, toy_maps):
    from imacs.testing import RecordingAdapter

    recorder = RecordingAdapter(toy_model)
    recorder.predict(toy_images[:1])  # learn the class count before counting
    recorder.reset()
    measure = imacs.get_component("measure", "deletion", n_steps=8)
    measure.evaluate(recorder, toy_images, toy_targets, toy_maps, batch_size=16)
    assert recorder.calls == -(-8 * 9 // 16)
