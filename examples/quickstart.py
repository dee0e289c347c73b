"""Load a PyTorch and a Keras model through one contract and compare their answers.

Run it with `.venv/bin/python examples/quickstart.py`: it loads the two example digit
classifiers shipped in examples/models (retrain them with
examples/train_example_models.py), predicts on digits neither saw in training, takes
input gradients from both, and lists the installed plugins.
"""

from __future__ import annotations

import os
import time

# TensorFlow's start-up notes about CPU instructions are noise for a demo
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_digits

import imacs
from imacs.cli import plugin_table

MODELS = Path(__file__).resolve().parent / "models"
N_TRAIN = 1200  # the example models were trained on the first 1,200 digits
# The models were trained on (x / 16 - 0.5) / 0.5; the adapters apply it inside the model
# call, so gradients are with respect to the raw 0..16 pixel values.
PREPROCESSING = imacs.Preprocessing(scale=1 / 16, mean=(0.5,), std=(0.5,))


def main() -> None:
    console = Console()
    data = load_digits()
    images = data.images[N_TRAIN:, :, :, None].astype(np.float32)
    labels = data.target[N_TRAIN:]

    models = {
        # TorchScript runs code from the file while it loads: trust=True, for our own file
        "PyTorch": imacs.load_model(
            MODELS / "digits-cnn.pt", preprocessing=PREPROCESSING, trust=True
        ),
        "Keras": imacs.load_model(MODELS / "digits-cnn.keras", preprocessing=PREPROCESSING),
    }

    summary = Table(title=f"{len(images)} held-out digits (8x8, pixel values 0..16)")
    for column in ("model", "adapter", "accuracy", "predict (ms/image)", "gradients (ms/image)"):
        summary.add_column(column)
    predictions, grads = {}, {}
    for label, model in models.items():
        start = time.perf_counter()
        predictions[label] = model.predict(images, batch_size=256).argmax(axis=1)
        predict_ms = 1000 * (time.perf_counter() - start) / len(images)
        start = time.perf_counter()
        grads[label] = model.gradients(images, labels, batch_size=256)
        gradient_ms = 1000 * (time.perf_counter() - start) / len(images)
        accuracy = float((predictions[label] == labels).mean())
        summary.add_row(
            label, model.name, f"{accuracy:.1%}", f"{predict_ms:.3f}", f"{gradient_ms:.3f}"
        )
    console.print(summary)

    agree = predictions["PyTorch"] == predictions["Keras"]
    console.print(f"The two models agree on {agree.mean():.1%} of the images.")

    flat = {k: np.abs(v).reshape(len(v), -1) for k, v in grads.items()}
    a, b = flat["PyTorch"], flat["Keras"]
    a = (a - a.mean(axis=1, keepdims=True)) / (a.std(axis=1, keepdims=True) + 1e-12)
    b = (b - b.mean(axis=1, keepdims=True)) / (b.std(axis=1, keepdims=True) + 1e-12)
    correlation = (a * b).mean(axis=1)
    console.print(
        "Correlation of the two models' |gradient| maps for the true class: "
        f"median {np.median(correlation):.2f}, lowest {correlation.min():.2f} "
        f"(image {int(correlation.argmin()) + N_TRAIN} of the digits set)."
    )

    first = Table(title="First ten held-out digits")
    for column in ("label", "PyTorch", "Keras"):
        first.add_column(column)
    for i in range(10):
        row = [str(labels[i])] + [
            f"[{'green' if p[i] == labels[i] else 'red'}]{p[i]}[/]" for p in predictions.values()
        ]
        first.add_row(*row)
    console.print(first)
    console.print(plugin_table(imacs.get_plugins()))


if __name__ == "__main__":
    main()
