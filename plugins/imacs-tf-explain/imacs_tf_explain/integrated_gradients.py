"""tf-explain's Integrated Gradients.

Sundararajan, Taly, Yan. "Axiomatic Attribution for Deep Networks". ICML 2017.
arXiv:1703.01365. Implementation: ``tf_explain.core.IntegratedGradients``
(``generate_interpolations`` and ``get_integrated_gradients``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from imacs.errors import InvalidInputError
from imacs_tf_explain.tf_explain_method import TfExplainMethod

if TYPE_CHECKING:
    from imacs_tensorflow.adapter import TensorFlowAdapter


class TfExplainIntegratedGradients(TfExplainMethod):
    """tf-explain's Integrated Gradients from the zero image, made an attribution.

    tf-explain's path has ``n_steps`` points ``alpha * x`` at ``alpha = s / (n_steps - 1)``,
    ``s = 0 .. n_steps - 1`` (both ends included), from its fixed all-zero baseline, and
    ``get_integrated_gradients`` returns the **mean gradient over the path, without the
    ``(x - baseline)`` factor** of the paper. This wrapper multiplies it by ``x - 0``, so
    the map is an IG attribution whose sum approximates ``F(x) - F(0)``; the plain mean
    weights the two end points fully where the trapezoid rule would halve them, so the
    completeness error shrinks only as ``1 / n_steps``. ``convergence_delta`` reports it
    per image: ``sum(map) - (F(x) - F(0))``.

    Parameters
    ----------
    n_steps:
        Points on the path (tf-explain's default 10; at least 2).

    ``batch_size`` images' whole paths go in one call when a path fits (``n_steps <=
    batch_size``); otherwise each path is split into calls of ``batch_size`` points and
    the means recombined.
    """

    name = "tf-explain-integrated-gradients"
    citation = "Sundararajan et al., ICML 2017, arXiv:1703.01365 (tf-explain)"
    builtin = "integrated-gradients"

    def __init__(self, *, n_steps: int = 10):
        if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 2:
            raise InvalidInputError(
                f"expected n_steps to be an int >= 2 (tf-explain divides by n_steps - 1); "
                f"got {n_steps!r}"
            )
        self.n_steps = n_steps

    def _explain(
        self, adapter: TensorFlowAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf
        from tf_explain.core.integrated_gradients import IntegratedGradients

        from imacs_tf_explain.keras_bridge import class_chunks, pixel_model

        model = pixel_model(adapter, images)
        n = int(self.n_steps)
        mean_gradients = np.empty_like(images)

        def path_mean(path: np.ndarray, k: int, steps: int) -> np.ndarray:
            # the mean gradient over each run of `steps` consecutive path points
            return IntegratedGradients.get_integrated_gradients(
                tf.constant(path, tf.float32), model, tf.constant(k), steps
            ).numpy()

        paths_per_call = batch_size // n
        if paths_per_call >= 1:
            for k, indices in class_chunks(targets, paths_per_call):
                path = IntegratedGradients.generate_interpolations(images[indices], n)
                mean_gradients[indices] = path_mean(path, k, n)
        else:  # a path longer than batch_size: its mean from means over parts of it
            for i in range(len(images)):
                path = IntegratedGradients.generate_interpolations(images[i : i + 1], n)
                total = np.zeros(images.shape[1:], np.float64)
                for start in range(0, n, batch_size):
                    part = path[start : start + batch_size]
                    total += len(part) * path_mean(part, int(targets[i]), len(part))[0]
                mean_gradients[i] = total / n
        maps = images * mean_gradients  # the (x - baseline) factor tf-explain leaves out
        change = adapter.scores(images, targets, batch_size=batch_size) - adapter.scores(
            np.zeros_like(images), targets, batch_size=batch_size
        )
        delta = maps.reshape(len(maps), -1).sum(axis=1, dtype=np.float64) - change
        return maps, delta
