"""A smooth copy of a Keras graph model: ReLU -> Softplus(beta), MaxPooling2D -> LogSumExp.

See :mod:`imacs.adapters.surrogate` for why and what the adapter does with it. The copy is
made with ``keras.models.clone_model``, so only functional and Sequential models qualify.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from imacs.errors import InvalidInputError


class LogSumExpPooling2D(keras.layers.Layer):
    """``T * log(mean(exp(x / T)))`` over each pooling window: a smooth max-pool.

    Channel-last, ``"valid"`` padding; the twin of ``imacs_torch.surrogate.LogSumExpPool2d``.
    """

    def __init__(
        self, pool_size: tuple[int, int], strides: tuple[int, int], temperature: float, **kwargs
    ):
        super().__init__(**kwargs)
        self.pool_size = tuple(pool_size)
        self.strides = tuple(strides)
        self.temperature = float(temperature)

    def call(self, inputs: Any) -> Any:
        kh, kw = self.pool_size
        patches = tf.image.extract_patches(
            inputs,
            sizes=[1, kh, kw, 1],
            strides=[1, *self.strides, 1],
            rates=[1, 1, 1, 1],
            padding="VALID",
        )
        shape = tf.shape(patches)
        channels = inputs.shape[-1]
        # extract_patches lays each window out row by row, channels innermost
        patches = tf.reshape(patches, [shape[0], shape[1], shape[2], kh * kw, channels])
        t = self.temperature
        return t * tf.reduce_logsumexp(patches / t, axis=3) - t * math.log(kh * kw)

    def compute_output_shape(self, input_shape: Any) -> Any:
        n, h, w, c = input_shape
        kh, kw = self.pool_size
        sh, sw = self.strides
        out_h = None if h is None else (h - kh) // sh + 1
        out_w = None if w is None else (w - kw) // sw + 1
        return (n, out_h, out_w, c)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "temperature": self.temperature,
        }


def _is_relu(activation: Any) -> bool:
    return activation is keras.activations.relu or activation == "relu"


def smooth_surrogate(model: Any, beta: float, temperature: float) -> Any:
    """A clone of ``model`` (same weights) with ReLUs as Softplus(beta), max-pools as LSE.

    Replaced: ``ReLU`` layers with their default arguments, ``Activation("relu")``, and
    any layer built with ``activation="relu"``; ``MaxPooling2D`` with ``"valid"`` padding
    and channel-last data. Raises :class:`~imacs.errors.InvalidInputError` for other max
    pooling, and when there is nothing to replace.
    """

    def softplus(x: Any) -> Any:
        return keras.ops.softplus(beta * x) / beta

    replaced = 0

    def clone(layer: Any) -> Any:
        nonlocal replaced
        config = layer.get_config()
        if isinstance(layer, keras.layers.MaxPooling2D):
            if config.get("padding") != "valid" or config.get("data_format") == "channels_first":
                raise InvalidInputError(
                    f"smooth_surrogate replaces MaxPooling2D by LogSumExp pooling only with "
                    f"padding='valid' on channel-last data; layer {layer.name!r} has "
                    f"padding={config.get('padding')!r}: leave smooth_surrogate out"
                )
            replaced += 1
            pool = tuple(config["pool_size"])
            strides = tuple(config.get("strides") or pool)
            return LogSumExpPooling2D(pool, strides, temperature, name=layer.name)
        if isinstance(layer, keras.layers.ReLU) and (
            config.get("max_value") is None
            and not config.get("negative_slope")
            and not config.get("threshold")
        ):
            replaced += 1
            return keras.layers.Activation(softplus, name=layer.name)
        if _is_relu(getattr(layer, "activation", None)):
            replaced += 1
            return layer.__class__.from_config({**config, "activation": softplus})
        return layer.__class__.from_config(config)

    try:
        surrogate = keras.models.clone_model(model, clone_function=clone)
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            "smooth_surrogate needs a functional or Sequential Keras model it can clone; "
            f"cloning this one failed ({type(exc).__name__}: {exc})"
        ) from exc
    if replaced == 0:
        raise InvalidInputError(
            "smooth_surrogate found no ReLU or MaxPooling2D layer to replace in the model: "
            "leave smooth_surrogate out"
        )
    surrogate.set_weights(model.get_weights())
    return surrogate
