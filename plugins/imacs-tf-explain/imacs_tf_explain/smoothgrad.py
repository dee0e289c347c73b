"""tf-explain's SmoothGrad.

Smilkov, Thorat, Kim, Viégas, Wattenberg. "SmoothGrad: removing noise by adding noise".
arXiv:1706.03825, 2017. Implementation: ``tf_explain.core.SmoothGrad``
(``generate_noisy_images`` and ``get_averaged_gradients``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs.parameters import check_non_negative, check_positive_int, check_seed
from imacs_tf_explain.tf_explain_method import TfExplainMethod

if TYPE_CHECKING:
    from imacs_tensorflow.adapter import TensorFlowAdapter

#: how far a row of target scores may be from summing to 1 and still count as probabilities
PROBABILITY_TOLERANCE = 1e-3


class TfExplainSmoothGrad(TfExplainMethod):
    """tf-explain's SmoothGrad: gradients averaged over noisy copies of each image.

    tf-explain does not differentiate the class score: ``get_averaged_gradients`` takes the
    gradient of its loss, Keras's categorical cross-entropy between the one-hot class and
    the model's outputs read as probabilities (``-log p_c``, outputs normalised to sum 1
    and clipped to ``[1e-7, 1 - 1e-7]``). The map returned is the **negative** of
    tf-explain's averaged gradients, the SmoothGrad of ``log p_c``: positive where a pixel
    raises the class's probability, the sign the other methods use. The outputs must
    therefore be probabilities: a model ending in a softmax with ``target="logit"``, or a
    logit model loaded with ``target="probability"``; other targets are refused.

    Parameters
    ----------
    num_samples:
        Noisy copies per image (tf-explain's default 5).
    noise:
        Standard deviation of the Gaussian noise, in pixel units (tf-explain's default
        1.0; for pixels in ``[0, 1]`` the paper's 10-20 % of the range is ``0.1``-``0.2``).
    seed:
        tf-explain draws the noise from ``np.random``; it is seeded per image from
        ``seed`` and the image's content, and restored after.

    Whole images' samples go in one call when they fit (``num_samples <= batch_size``);
    otherwise an image's samples are split into calls of ``batch_size`` and the means
    recombined.
    """

    #: 2: each image's noise is seeded by its content, no longer by its place in the call
    version = "2"

    name = "tf-explain-smoothgrad"
    citation = "Smilkov et al., arXiv:1706.03825 (tf-explain)"
    builtin = "smoothgrad"

    def __init__(self, *, num_samples: int = 5, noise: float = 1.0, seed: int = 0):
        check_positive_int(num_samples, "num_samples")
        check_non_negative(noise, "noise")
        check_seed(seed)
        self.num_samples = num_samples
        self.noise = noise
        self.seed = seed

    def _explain(
        self, adapter: TensorFlowAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> tuple[np.ndarray, None]:
        import tensorflow as tf
        from tf_explain.core.smoothgrad import SmoothGrad

        from imacs_tf_explain.keras_bridge import class_chunks, numpy_seeded, pixel_model

        model = pixel_model(adapter, images)
        self._check_probabilities(model, images, batch_size)
        n = int(self.num_samples)
        noisy = np.empty((len(images), n, *images.shape[1:]), np.float32)
        for i in range(len(images)):
            with numpy_seeded(self.seed, images[i]):
                noisy[i] = SmoothGrad.generate_noisy_images(images[i : i + 1], n, self.noise)

        def averaged(samples: np.ndarray, k: int, per_image: int) -> np.ndarray:
            return SmoothGrad.get_averaged_gradients(
                tf.constant(samples), model, tf.constant(k), per_image
            ).numpy()

        gradients = np.empty_like(images)
        images_per_call = batch_size // n
        if images_per_call >= 1:
            for k, indices in class_chunks(targets, images_per_call):
                samples = noisy[indices].reshape(-1, *images.shape[1:])
                gradients[indices] = averaged(samples, k, n)
        else:  # more samples than batch_size: the mean from means over parts
            for i in range(len(images)):
                total = np.zeros(images.shape[1:], np.float64)
                for start in range(0, n, batch_size):
                    part = noisy[i, start : start + batch_size]
                    total += len(part) * averaged(part, int(targets[i]), len(part))[0]
                gradients[i] = total / n
        return -gradients, None

    def _check_probabilities(self, model: Any, images: np.ndarray, batch_size: int) -> None:
        import tensorflow as tf

        for start in range(0, len(images), batch_size):
            scores = model(tf.constant(images[start : start + batch_size])).numpy()
            sums = scores.sum(axis=1)
            if (scores < 0).any() or (np.abs(sums - 1) > PROBABILITY_TOLERANCE).any():
                raise InvalidInputError(
                    "tf-explain-smoothgrad differentiates tf-explain's cross-entropy loss, "
                    "which reads the model's target scores as probabilities; these are not "
                    f"(rows sum to {sums.min():.3g}..{sums.max():.3g}, smallest score "
                    f"{scores.min():.3g}): load a logit model with target='probability', "
                    "or use the built-in 'smoothgrad', which smooths any target's gradient"
                )
