"""Perturbation curves: the model's target score as an image is changed step by step.

Insertion, deletion, ROAD and the positive/negative perturbation tests all build, for
every image, a sequence of changed images and record the model's score of the target on
each. This module sends those images to the model in calls of at most ``batch_size``,
filling each call with steps of as many images as fit, so ``S`` steps of ``N`` images
cost exactly ``N * S`` forward passes in ``ceil(N * S / batch_size)`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.parameters import check_choice

#: what a curve records for each changed image
SCORES = ("probability", "output", "correct", "target")

#: writes the changed images of one image for some of its steps into ``out``: (image
#: index, step indices, out of shape (len(steps), H, W, C)) -> None. Writing in place
#: spares a temporary array and a copy per call, a few percent of a deletion curve.
StepBuilder = Callable[[int, np.ndarray, np.ndarray], None]


def check_score(score: str) -> None:
    """Raise ``InvalidInputError`` unless ``score`` is one of :data:`SCORES`."""
    check_choice(score, "score", SCORES)


def target_scores(outputs: np.ndarray, targets: np.ndarray, score: str) -> np.ndarray:
    """The recorded value of each row of model ``outputs`` ``(M, K)`` for ``targets`` ``(M,)``.

    ``"probability"``: the softmax probability of the target (the model's outputs are
    read as logits); ``"output"``: the target's raw output (for a model whose outputs are
    already probabilities); ``"correct"``: 1.0 when the target is the top class, else 0.0.
    (``"target"``, the adapter's own target score, is asked of the model directly.)
    """
    z = np.asarray(outputs, dtype=np.float64)
    rows = np.arange(len(z))
    if score == "output":
        return z[rows, targets]
    if score == "correct":
        return (np.argmax(z, axis=1) == targets).astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z[rows, targets] - np.log(np.exp(z).sum(axis=1))
    return np.exp(log_p)


def _pairs_in_calls(n_images: int, n_steps: int, batch_size: int) -> Iterator[np.ndarray]:
    # the (image, step) pairs of one model call, image-major
    total = n_images * n_steps
    for start in range(0, total, batch_size):
        flat = np.arange(start, min(start + batch_size, total))
        yield np.stack([flat // n_steps, flat % n_steps], axis=1)


def perturbation_curves(
    model: ModelAdapter,
    targets: np.ndarray,
    n_steps: int,
    build: StepBuilder,
    *,
    score: str,
    batch_size: int,
    image_shape: tuple[int, ...],
) -> np.ndarray:
    """The curve ``(N, n_steps)`` of each image: ``score`` of the target at every step.

    ``build(i, steps, out)`` writes image ``i`` changed as at each of ``steps`` into
    ``out`` (float32, ``(len(steps), *image_shape)``); it is called with the steps of one
    image that fall into one model call, so at most ``batch_size`` images are built at
    once, into one buffer reused by every call.
    """
    curves = np.empty((len(targets), n_steps), dtype=np.float64)
    buffer = np.empty((min(batch_size, len(targets) * n_steps), *image_shape), np.float32)
    for pairs in _pairs_in_calls(len(targets), n_steps, batch_size):
        # pairs are image-major: each image's steps are one run of rows, built in place
        images, starts = np.unique(pairs[:, 0], return_index=True)
        ends = [*starts[1:], len(pairs)]
        for i, start, end in zip(images, starts, ends, strict=True):
            build(int(i), pairs[start:end, 1], buffer[start:end])
        batch = buffer[: len(pairs)]
        rows = targets[pairs[:, 0]]
        if score == "target":  # what the adapter takes gradients of (logit by default)
            values = model.scores(batch, rows, batch_size=batch_size).astype(np.float64)
        else:
            values = target_scores(model.predict(batch, batch_size=batch_size), rows, score)
        curves[pairs[:, 0], pairs[:, 1]] = values
    return curves


def trapezoid_auc(curves: np.ndarray) -> np.ndarray:
    """Area under each curve ``(N, S)`` with its points spread evenly over ``[0, 1]``.

    The trapezoid rule as RISE's ``auc`` writes it: ``(sum - first / 2 - last / 2) / (S - 1)``.
    """
    c = np.asarray(curves, dtype=np.float64)
    return (c.sum(axis=1) - c[:, 0] / 2.0 - c[:, -1] / 2.0) / (c.shape[1] - 1)


def relevance_order(relevance: np.ndarray) -> np.ndarray:
    """Each pixel's place ``(N, P)`` when pixels are sorted most relevant first.

    Ties keep the pixels' row-major order, so the order is reproducible on every machine.
    """
    order = np.argsort(-relevance, axis=1, kind="stable")
    place = np.empty_like(order)
    np.put_along_axis(place, order, np.arange(relevance.shape[1])[None, :], axis=1)
    return place
