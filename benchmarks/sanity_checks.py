"""Sanity checks on the demo's networks: randomisation, the input multiplier, smoothing.

Trains the demo's CNN (``imacs.demo.models``) on digits without the shortcut, in PyTorch
and in Keras, and on held-out images measures:

1. the model-parameter randomisation test (Adebayo et al. 2018), cascading from the logits
   down and independent, for gradient, gradient x input and integrated gradients (IG
   carries the input multiplier too), by Spearman (signed and absolute), SSIM and HOG;
2. the random-logit test (SSIM), the same methods;
3. the smooth surrogate (ReLU -> Softplus(beta), max-pool -> LogSumExp, Kokhlikyan et al.
   2021) at several betas: the infidelity (Yeh et al. 2019, imacs's measure, which equals
   Captum's) of each method's maps, evaluated on the original model, at several noise
   scales, and the randomisation test with the surrogate;
4. whether the PyTorch and Keras networks, given the same weights, give the same
   similarities (the Keras model is the PyTorch one's weights copied over).

Results go to ``benchmarks/results/sanity_checks.json``; ``docs/quality.md`` quotes them::

    .venv/bin/python benchmarks/sanity_checks.py            # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/sanity_checks.py --images 16 --quick
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import imacs
from imacs.demo.data import shortcut_digits
from imacs.demo.models import train_keras_cnn, train_torch_cnn
from imacs.quality.infidelity import Infidelity
from imacs.quality.randomisation import SIMILARITIES, model_randomisation, random_logit

RESULTS = Path(__file__).parent / "results" / "sanity_checks.json"
METHODS = {
    "gradient": {},
    "gradient-times-input": {},
    "integrated-gradients": {"n_steps": 32},
}
BETAS = (1.0, 3.0, 10.0, 30.0)
NOISE_SCALES = (0.003, 0.03, 0.1)


def summary(values: np.ndarray) -> dict[str, float]:
    """Mean, median and a 95% bootstrap interval of the mean over images."""
    from imacs.quality.base import bootstrap_interval

    low, high = bootstrap_interval(values)

    def four(value: float) -> float:  # four significant digits: infidelity is ~1e-4
        return float(f"{value:.4g}")

    return {
        "mean": four(float(np.mean(values))),
        "median": four(float(np.median(values))),
        "ci_low": four(low),
        "ci_high": four(high),
    }


def randomisation_table(model: Any, images: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for name, params in METHODS.items():
        method = imacs.get_method(name, **params)
        maps = method.attribute(model, images, targets).maps
        entry: dict[str, Any] = {}
        for mode in ("cascading", "independent"):
            result = model_randomisation(
                model, images, targets, method, mode=mode, maps=maps, seed=42
            )
            entry[mode] = {
                "steps": result.labels,
                "per_step_mean": {
                    s: [round(float(v), 4) for v in result.similarity[s].mean(axis=0)]
                    for s in SIMILARITIES
                },
                "final": {s: summary(result.final(s)) for s in SIMILARITIES},
            }
        entry["random_logit_ssim"] = summary(
            random_logit(model, images, targets, method, maps=maps, seed=42)
        )
        table[name] = entry
        final = entry["cascading"]["final"]
        print(
            f"  {name:22s} cascading |spearman| {final['spearman_abs']['mean']:.3f}"
            f"  ssim {final['ssim']['mean']:.3f}  hog {final['hog']['mean']:.3f}"
            f"  random-logit ssim {entry['random_logit_ssim']['mean']:.3f}",
            flush=True,
        )
    return table


def surrogate_table(module: Any, images: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    from imacs_torch import TorchAdapter

    original = TorchAdapter(module, device="cpu")
    table: dict[str, Any] = {}
    for name, params in METHODS.items():
        method = imacs.get_method(name, **params)
        rows: dict[str, Any] = {}
        for beta in (None, *BETAS):
            model = TorchAdapter(module, device="cpu", smooth_surrogate=beta)
            maps = method.attribute(model, images, targets).maps
            row: dict[str, Any] = {}
            for noise in NOISE_SCALES:
                measure = Infidelity(n_perturb_samples=20, noise_scale=noise)
                # the original model is what the maps must predict
                scores = measure.evaluate(original, images, targets, maps, seed=0).scores
                row[f"infidelity@{noise}"] = summary(scores)
                normalised = Infidelity(n_perturb_samples=20, noise_scale=noise, normalize=True)
                scores = normalised.evaluate(original, images, targets, maps, seed=0).scores
                row[f"infidelity_normalised@{noise}"] = summary(scores)
            if beta is not None:
                result = model_randomisation(
                    model, images, targets, method, mode="cascading", maps=maps, seed=42
                )
                row["cascading_spearman_abs"] = summary(result.final("spearman_abs"))
            rows["relu" if beta is None else f"beta={beta:g}"] = row
        table[name] = rows
        shown = [
            f"{k} infidelity@0.03 {v['infidelity@0.03']['mean']:.3g}"
            f" @0.1 {v['infidelity@0.1']['mean']:.3g}"
            for k, v in rows.items()
        ]
        print(f"  {name}: " + "; ".join(shown), flush=True)
    return table


def keras_twin(module: Any, input_shape: tuple[int, ...], n_classes: int) -> Any:
    """The demo's Keras network holding the PyTorch network's weights."""
    import keras

    model = train_keras_cnn(
        np.zeros((2, *input_shape), np.float32), np.array([0, n_classes - 1]), epochs=1
    )
    weights = []
    for p in module.parameters():
        value = p.detach().cpu().numpy()
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        weights.append(value)
    model.set_weights(weights)
    assert isinstance(model, keras.Model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="held-out images to test on")
    parser.add_argument("--train", type=int, default=1200, help="training images")
    parser.add_argument(
        "--surrogate-images", type=int, default=16, help="of those, how many for the surrogate"
    )
    parser.add_argument("--quick", action="store_true", help="skip the surrogate table")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    from imacs_tensorflow import TensorFlowAdapter
    from imacs_torch import TorchAdapter

    start = time.perf_counter()
    train = shortcut_digits(slice(0, args.train), shortcut=False, seed=0)
    test = shortcut_digits(slice(args.train, args.train + args.images), shortcut=False, seed=1)
    module = train_torch_cnn(train.images, train.labels, seed=0)
    keras_model = train_keras_cnn(train.images, train.labels, seed=0)
    torch_model = TorchAdapter(module, device="cpu")
    keras_trained = TensorFlowAdapter(keras_model)
    images = test.images
    targets = test.labels
    accuracy = {
        "torch": float((torch_model.predict(images).argmax(1) == targets).mean()),
        "keras": float((keras_trained.predict(images).argmax(1) == targets).mean()),
    }
    print(f"trained in {time.perf_counter() - start:.0f} s; accuracy {accuracy}", flush=True)

    results: dict[str, Any] = {
        "setup": {
            "train_images": args.train,
            "test_images": args.images,
            "surrogate_images": args.surrogate_images,
            "methods": METHODS,
            "seed": 42,
            "accuracy": accuracy,
        }
    }
    print("PyTorch demo CNN:", flush=True)
    results["torch"] = randomisation_table(torch_model, images, targets)
    print("Keras demo CNN (trained on its own):", flush=True)
    results["keras"] = randomisation_table(keras_trained, images, targets)

    # the same weights in both frameworks: the similarities must agree
    twin = TensorFlowAdapter(keras_twin(module, images.shape[1:], 10))
    small = slice(0, min(16, len(images)))
    method = imacs.get_method("gradient")
    by_framework = {
        side: model_randomisation(
            model, images[small], targets[small], method, mode="cascading", seed=42
        )
        for side, model in (("torch", torch_model), ("keras", twin))
    }
    results["same_weights_max_difference"] = {
        s: float(
            np.abs(by_framework["torch"].similarity[s] - by_framework["keras"].similarity[s]).max()
        )
        for s in SIMILARITIES
    }
    print("same weights, largest difference:", results["same_weights_max_difference"], flush=True)

    if not args.quick:
        print("smooth surrogate (PyTorch):", flush=True)
        few = slice(0, args.surrogate_images)
        results["surrogate"] = surrogate_table(module, images[few], targets[few])
    results["seconds"] = round(time.perf_counter() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output} in {results['seconds']} s")


if __name__ == "__main__":
    main()
