"""Evaluating gradients at many points per image without ever exceeding ``batch_size``.

Path methods (Integrated Gradients, Blur IG, Split IG, SmoothGrad's samples) need the
gradient at ``n_steps`` points for each of ``N`` images: ``N * n_steps`` model inputs.
Materialising them all at once costs ``N * n_steps`` images of memory, and sending them
in one call can exhaust the accelerator. ``evaluate_points`` walks the ``(image, step)``
grid in chunks of at most ``batch_size`` inputs, builds only the chunk's inputs, and hands
each chunk's scores and gradients to a callback that folds them into the result, so
memory stays bounded by ``batch_size`` whatever the method multiplies.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from imacs.adapters.base import ModelAdapter

#: (image indices (B,), step indices (B,)) -> model inputs (B, H, W, C)
MakeInputs = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: (image indices, step indices, target scores (B,), gradients (B, H, W, C)) -> None
OnGradients = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]


def point_grid(n_images: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(image, step)`` pairs, image-major: every step of image 0, then image 1..."""
    image_index = np.repeat(np.arange(n_images), n_steps)
    step_index = np.tile(np.arange(n_steps), n_images)
    return image_index, step_index


def evaluate_points(
    model: ModelAdapter,
    targets: np.ndarray,
    n_steps: int,
    make_inputs: MakeInputs,
    on_gradients: OnGradients,
    batch_size: int,
) -> None:
    """Call the model on every ``(image, step)`` point, ``batch_size`` inputs per call.

    ``targets`` holds one class per image; each point is scored for its image's target.
    Chunks follow the image-major order of :func:`point_grid`, so a chunk may span
    several images: one call serves as many images as fit.
    """
    image_index, step_index = point_grid(len(targets), n_steps)
    for start in range(0, len(image_index), batch_size):
        images = image_index[start : start + batch_size]
        steps = step_index[start : start + batch_size]
        inputs = make_inputs(images, steps)
        values, grads = model.value_and_gradients(inputs, targets[images])
        on_gradients(images, steps, values, grads)


def accumulate_weighted_gradients(
    model: ModelAdapter,
    targets: np.ndarray,
    shape: tuple[int, ...],
    n_steps: int,
    make_inputs: MakeInputs,
    weights: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``sum_s weights(i, s, grad_is)`` per image, and the scores at every point.

    ``weights(images, steps, grads) -> (B, H, W, C)`` turns each chunk's gradients into
    the terms to add (for IG: the gradient times the quadrature weight). Returns the sums
    ``shape`` (``(N, H, W, C)``, accumulated in float64) and the scores ``(N, n_steps)``.
    """
    total = np.zeros(shape, dtype=np.float64)
    scores = np.zeros((shape[0], n_steps), dtype=np.float64)

    def fold(images: np.ndarray, steps: np.ndarray, values: np.ndarray, grads: np.ndarray) -> None:
        # chunks are image-major, so each image's points are one contiguous run
        owners, starts = np.unique(images, return_index=True)
        total[owners] += np.add.reduceat(weights(images, steps, grads), starts, axis=0)
        scores[images, steps] = values

    evaluate_points(model, targets, n_steps, make_inputs, fold, batch_size)
    return total, scores


#: (model inputs (B, H, W, C), their targets (B,)) -> one score per input (B,)
ScoreFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: (image indices (B,), point indices (B,), scores (B,)) -> None
OnScores = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def score_points(
    score: ScoreFunction,
    targets: np.ndarray,
    n_points: int,
    make_inputs: MakeInputs,
    on_scores: OnScores,
    batch_size: int,
) -> None:
    """The forward-only twin of :func:`evaluate_points`, for perturbation methods.

    Scores every ``(image, point)`` input (an occluded copy, a masked copy...) with
    ``score(inputs, targets)`` (usually ``model.scores``), ``batch_size`` inputs per
    call, in the image-major order of :func:`point_grid`; needs no gradients.
    """
    image_index, point_index = point_grid(len(targets), n_points)
    for start in range(0, len(image_index), batch_size):
        images = image_index[start : start + batch_size]
        points = point_index[start : start + batch_size]
        on_scores(images, points, score(make_inputs(images, points), targets[images]))
