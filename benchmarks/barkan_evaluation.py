"""The Barkan papers' evaluation of DIX, IIA2, IIA3, IG and Grad-CAM on the demo's CNNs.

Two tasks, each with the demo's PyTorch CNN (``imacs.demo.models``) trained here:
digits (``imacs.demo.data``, no shortcut) and textures (``imacs.demo.watermark``,
watermarks at random). On held-out images, for the true class, each method's maps are
scored by imacs's quality measures: positive and negative perturbation AUC (POS lower,
NEG higher is better), insertion (higher) and deletion (lower) AUC, ADP (lower) and PIC
(higher). Every method takes its paper's defaults (10 steps per integral for DIX and
IIA; IG with 32 steps from black; Grad-CAM and DIX/IIA at the last feature map).
Results go to ``benchmarks/results/barkan_evaluation.json``::

    .venv/bin/python benchmarks/barkan_evaluation.py           # a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import imacs
from imacs.demo.data import shortcut_digits
from imacs.demo.models import train_torch_cnn
from imacs.demo.watermark import watermarked_textures
from imacs.quality.insertion_deletion import Deletion, Insertion
from imacs.quality.perturbation_tests import (
    AverageDropPercentage,
    NegativePerturbation,
    PercentageIncreaseInConfidence,
    PositivePerturbation,
)

RESULTS = Path(__file__).parent / "results" / "barkan_evaluation.json"
METHODS = {
    "dix": {},
    "iia2": {},
    "iia3": {},
    "integrated-gradients": {"n_steps": 32},
    "grad-cam": {},
}
MEASURES = {
    "POS": PositivePerturbation(),
    "NEG": NegativePerturbation(),
    "INS": Insertion(),
    "DEL": Deletion(),
    "ADP": AverageDropPercentage(),
    "PIC": PercentageIncreaseInConfidence(),
}


def tasks(
    n_train: int, n_test: int
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    digits = shortcut_digits(slice(0, n_train + n_test), shortcut=False, seed=0)
    textures = watermarked_textures(n_train + n_test, seed=0)
    return {
        name: (d.images[:n_train], d.labels[:n_train], d.images[n_train:], d.labels[n_train:])
        for name, d in (("digits", digits), ("textures", textures))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=900)
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args()
    table: dict[str, dict[str, dict[str, float]]] = {}
    accuracy = {}
    for task, (x, y, x_test, y_test) in tasks(args.train, args.images).items():
        model = imacs.load_model(train_torch_cnn(x, y), device="cpu")
        accuracy[task] = float((model.predict(x_test).argmax(1) == y_test).mean())
        table[task] = {}
        for method, params in METHODS.items():
            maps = imacs.attribute(model, x_test, y_test, method=method, **params).maps
            row = {}
            for measure_name, measure in MEASURES.items():
                result = measure.evaluate(model, x_test, y_test, maps)
                row[measure_name] = round(float(np.mean(result.scores)), 2)
            table[task][method] = row
            print(task, method, row, flush=True)
    holds = {
        task: {
            "POS": rows["iia3"]["POS"] < rows["grad-cam"]["POS"],
            "NEG": rows["iia3"]["NEG"] > rows["grad-cam"]["NEG"],
        }
        for task, rows in table.items()
    }
    result = {
        "command": "benchmarks/barkan_evaluation.py",
        "model": "imacs.demo.models.train_torch_cnn, 12 epochs, CPU",
        "train_images": args.train,
        "test_images": args.images,
        "test_accuracy": accuracy,
        "mean_scores": table,
        "iia3_ahead_of_grad_cam": holds,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
