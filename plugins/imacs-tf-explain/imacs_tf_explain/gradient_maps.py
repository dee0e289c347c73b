"""One tf-explain gradient helper over a whole batch: grouped by class, chunked.

``VanillaGradients.compute_gradients`` and ``GradientsInputs.compute_gradients`` share a
signature, ``(images, model, class_index) -> maps``, and this loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from imacs_tensorflow.adapter import TensorFlowAdapter

from imacs_tf_explain.keras_bridge import class_chunks, pixel_model


def gradient_maps(
    helper: Callable[[Any, Any, Any], Any],
    adapter: TensorFlowAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """``helper(images, model, class_index)`` for each class's images, ``batch_size`` at a time."""
    model = pixel_model(adapter, images)
    maps = np.empty_like(images)
    for k, indices in class_chunks(targets, batch_size):
        # A tensor class index: the helper's tf.function traces once per batch shape,
        # not once per class.
        maps[indices] = helper(tf.constant(images[indices]), model, tf.constant(k)).numpy()
    return maps
