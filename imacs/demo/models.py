"""Two small CNNs for the demo data, one in PyTorch and one in Keras, trained in seconds.

The networks have one shape in both frameworks: two 3x3 convolutions with max pooling,
a third convolution, global average pooling and a linear classifier (about 7,000
parameters). Images are taken in [0, 1], channel-last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from imacs.parameters import check_positive_int, check_seed

EPOCHS = 12
BATCH = 64
LEARNING_RATE = 5e-3


def torch_cnn(channels: int = 3, classes: int = 10) -> Any:
    """The demo's PyTorch CNN, untrained (its weights from torch's global generator)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, classes),
    )


def keras_cnn(shape: tuple[Any, ...] = (None, None, 3), classes: int = 10) -> Any:
    """The demo's Keras CNN for channel-last inputs of ``shape``, untrained."""
    import keras

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape),
            layers.Conv2D(8, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(classes),
        ]
    )


def train_torch_cnn(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    epochs: int = EPOCHS,
    on_epoch: Callable[[int], None] | None = None,
) -> Any:
    """A ``torch.nn.Module`` trained on channel-last images in [0, 1]; eval mode.

    ``on_epoch(n)`` is called after each epoch with the number of epochs done.
    """
    import torch
    from torch import nn

    check_seed(seed)
    check_positive_int(epochs, "epochs")
    torch.manual_seed(seed)
    model = torch_cnn(images.shape[-1], int(labels.max()) + 1)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(labels.astype(np.int64))
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        for epoch in range(epochs):
            for batch in torch.randperm(len(x), generator=generator).split(BATCH):
                optimiser.zero_grad()
                nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
            if on_epoch is not None:
                on_epoch(epoch + 1)
    return model.eval()


def train_keras_cnn(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    epochs: int = EPOCHS,
    on_epoch: Callable[[int], None] | None = None,
) -> Any:
    """A ``keras.Model`` of the same shape, trained on channel-last images in [0, 1].

    ``on_epoch(n)`` is called after each epoch with the number of epochs done.
    """
    import keras

    check_seed(seed)
    check_positive_int(epochs, "epochs")
    keras.utils.set_random_seed(seed)
    model = keras_cnn(images.shape[1:], int(labels.max()) + 1)
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callbacks = []
    if on_epoch is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, _logs: on_epoch(epoch + 1))
        )
    model.fit(
        images,
        labels,
        batch_size=BATCH,
        epochs=epochs,
        verbose=0,
        shuffle=True,
        callbacks=callbacks,
    )
    return model
