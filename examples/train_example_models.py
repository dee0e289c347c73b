"""Train the two small example models that `make demo` loads, and save them.

Both classify scikit-learn's 8x8 handwritten digits (shipped with scikit-learn, so nothing
is downloaded). The networks have the same shape in PyTorch and in Keras; each is trained
on the first 1,200 digits with inputs normalised by (x / 16 - 0.5) / 0.5 inside the
model-loading call, not inside the saved model, to show the adapter's preprocessing.

    python examples/train_example_models.py    # about 20 s on 2 CPU cores

writes examples/models/digits-cnn.pt (TorchScript) and examples/models/digits-cnn.keras.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

MODELS = Path(__file__).resolve().parent / "models"
N_TRAIN = 1200
EPOCHS = 40
SEED = 0


def digits() -> tuple[np.ndarray, np.ndarray]:
    """Digit images (N, 8, 8, 1) as float32 in [0, 16], and their labels."""
    data = load_digits()
    return data.images[..., None].astype(np.float32), data.target.astype(np.int64)


def normalise(images: np.ndarray) -> np.ndarray:
    return (images / 16.0 - 0.5) / 0.5


def train_torch(x: np.ndarray, y: np.ndarray) -> None:
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    inputs = torch.from_numpy(normalise(x)).permute(0, 3, 1, 2)
    labels = torch.from_numpy(y)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(inputs)).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimiser.step()
    torch.jit.script(model.eval()).save(str(MODELS / "digits-cnn.pt"))


def train_keras(x: np.ndarray, y: np.ndarray) -> None:
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(normalise(x), y, batch_size=64, epochs=EPOCHS, verbose=0)
    model.save(MODELS / "digits-cnn.keras")


def main() -> None:
    MODELS.mkdir(exist_ok=True)
    x, y = digits()
    train_torch(x[:N_TRAIN], y[:N_TRAIN])
    train_keras(x[:N_TRAIN], y[:N_TRAIN])
    print(f"wrote {sorted(p.name for p in MODELS.iterdir())} to {MODELS}")


if __name__ == "__main__":
    main()
