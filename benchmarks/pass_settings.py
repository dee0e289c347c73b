"""Cheaper PyTorch passes: memory format, oneDNN, frozen parameters, and where the
gradients of the channels-last layout differ.

    .venv/bin/python benchmarks/pass_settings.py          # about two minutes on 2 cores

On the CNN of ``attribution_speed.py`` (64x64 photographs, batches of 64, the adapter's
``value_and_gradients``), times one forward+backward pass per input for:

- ``contiguous``: the adapter with ``channels_last=False`` (the default until 2026-12-06);
- ``channels_last``: the adapter's default for convolutions on the CPU since then;
- ``contiguous, oneDNN off``: ``torch.backends.mkldnn.flags(enabled=False)``, PyTorch's
  own convolutions;
- ``frozen``: a copy whose parameters have ``requires_grad_(False)``;
- ``frozen + channels_last``;

at 1 and 2 torch threads, alternating the variants so that drift in the machine's load
falls on all alike, best of ``--repeats``. Each variant's gradients are compared with the
contiguous layout's and with a float64 copy's (relative to the largest gradient), at
batch size 64 and at batch size 1, image by image.

Then the maps: Integrated Gradients (50 Gauss-Legendre steps, black baseline) of the 16
photographs in both layouts against a float64 copy's, image by image, for the ReLU CNN
and for the same CNN with Softplus(beta=10) in place of each ReLU (no kinks).

Then the diagnosis: for every image whose gradient is more than 1e-5 from float64's in
some variant, the ReLU units whose sign differs from float64's (a flipped unit passes or
blocks its whole gradient) and their float64 pre-activation relative to the layer's
largest. Writes ``benchmarks/results/pass_settings.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attribution_speed import build_cnn, natural_images

import imacs

RESULTS = Path(__file__).resolve().parent / "results"


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def per_image(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = len(a)
    return np.abs(a - b).reshape(n, -1).max(axis=1) / np.abs(b).max()


@contextlib.contextmanager
def onednn(enabled: bool) -> Iterator[None]:
    with torch.backends.mkldnn.flags(enabled=enabled):
        yield


def relu_flips(
    module: torch.nn.Sequential, image: np.ndarray, layout: torch.memory_format
) -> list[dict]:
    """ReLU units whose input has another sign in float32 (``layout``) than in float64."""
    x = torch.from_numpy(image[None]).permute(0, 3, 1, 2)
    exact = copy.deepcopy(module).double()
    flips = []
    with torch.no_grad():
        h32, h64 = x.contiguous(memory_format=layout), x.double()
        for k, (layer, layer64) in enumerate(zip(module, exact, strict=True)):
            if isinstance(layer, torch.nn.ReLU):
                flipped = (h32 > 0) != (h64 > 0)
                for value in h64[flipped].tolist():
                    flips.append(
                        {
                            "layer": k,
                            "float64_input": value,
                            "of_largest": value / float(h64.abs().max()),
                        }
                    )
            h32, h64 = layer(h32), layer64(h64)
    return flips


def ig_maps(module: torch.nn.Sequential, images: np.ndarray) -> list[dict]:
    """IG maps of both layouts against float64's, per image, for ReLU and Softplus."""
    from imacs.attribution.integrated_gradients import IntegratedGradients

    smooth = copy.deepcopy(module)
    for k, layer in enumerate(smooth):
        if isinstance(layer, torch.nn.ReLU):
            smooth[k] = torch.nn.Softplus(beta=10)
    method = IntegratedGradients(n_steps=50, quadrature="gausslegendre", baselines="black")
    rows = []
    for network, net in (("relu", module), ("softplus", smooth)):
        plain = imacs.load_model(net, device="cpu", channels_last=False)
        targets = plain.predict(images).argmax(axis=1)
        exact64 = imacs.load_model(copy.deepcopy(net).double(), device="cpu")
        exact = method.attribute(exact64, images.astype(np.float64), targets).maps
        today = method.attribute(plain, images, targets, batch_size=64).maps
        for layout, batch_size in (("contiguous", 64), ("contiguous", 1), ("channels_last", 64)):
            model = imacs.load_model(net, device="cpu", channels_last=layout == "channels_last")
            result = method.attribute(model, images, targets, batch_size=batch_size).maps
            rows.append(
                {
                    "network": network,
                    "layout": layout,
                    "batch_size": batch_size,
                    "vs_float64_per_image": per_image_own(result, exact).tolist(),
                    "vs_contiguous_per_image": per_image_own(result, today).tolist(),
                }
            )
            r = rows[-1]
            print(
                f"IG maps, {network}, {layout}, batch size {batch_size}: images > 1e-5 from "
                f"float64 {sum(e > 1e-5 for e in r['vs_float64_per_image'])} of {len(images)} "
                f"(largest {max(r['vs_float64_per_image']):.1e}); from the contiguous "
                f"layout at 64 {sum(e > 1e-5 for e in r['vs_contiguous_per_image'])} (largest "
                f"{max(r['vs_contiguous_per_image']):.1e})",
                flush=True,
            )
    return rows


def per_image_own(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each image's largest difference relative to its own largest |b|."""
    n = len(a)
    return np.abs(a - b).reshape(n, -1).max(axis=1) / np.abs(b).reshape(n, -1).max(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    module = build_cnn()
    frozen = copy.deepcopy(module)
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    plain = imacs.load_model(module, device="cpu", channels_last=False)
    fast = imacs.load_model(module, device="cpu", channels_last=True)
    variants: dict[
        str, tuple[imacs.ModelAdapter, Callable[[], contextlib.AbstractContextManager]]
    ] = {
        "contiguous": (plain, contextlib.nullcontext),
        "channels_last": (fast, contextlib.nullcontext),
        "contiguous, oneDNN off": (plain, lambda: onednn(False)),
        "frozen": (
            imacs.load_model(frozen, device="cpu", channels_last=False),
            contextlib.nullcontext,
        ),
        "frozen + channels_last": (
            imacs.load_model(frozen, device="cpu", channels_last=True),
            contextlib.nullcontext,
        ),
    }
    reference64 = imacs.load_model(copy.deepcopy(module).double(), device="cpu")
    images = natural_images(16, args.size)
    inputs = np.concatenate([images] * (args.batch_size // 16 + 1))[: args.batch_size]
    targets = plain.predict(inputs).argmax(axis=1)
    exact = reference64.gradients(inputs.astype(np.float64), targets)
    today = plain.gradients(inputs, targets)
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        best = dict.fromkeys(variants, float("inf"))
        for model, setting in variants.values():
            with setting():
                model.value_and_gradients(inputs, targets)
        for _ in range(args.repeats):
            for name, (model, setting) in variants.items():
                with setting():
                    start = time.perf_counter()
                    model.value_and_gradients(inputs, targets)
                    best[name] = min(best[name], time.perf_counter() - start)
        for name, (model, setting) in variants.items():
            with setting():
                grads = model.gradients(inputs, targets)
                one_by_one = model.gradients(images, targets[:16], batch_size=1)
            rows.append(
                {
                    "threads": threads,
                    "variant": name,
                    "ms_per_input": 1000 * best[name] / len(inputs),
                    "speedup": best["contiguous"] / best[name],
                    "vs_contiguous": relative(grads, today),
                    "vs_float64": relative(grads, exact),
                    "vs_float64_per_image": per_image(grads[:16], exact[:16]).tolist(),
                    "vs_float64_per_image_batch_size_1": per_image(one_by_one, exact[:16]).tolist(),
                }
            )
            r = rows[-1]
            off = [i for i, e in enumerate(r["vs_float64_per_image"]) if e > 1e-5]
            off1 = [i for i, e in enumerate(r["vs_float64_per_image_batch_size_1"]) if e > 1e-5]
            print(
                f"{threads} thread(s) {name:24s} {r['ms_per_input']:.2f} ms/input "
                f"({r['speedup']:.2f}x), vs contiguous {r['vs_contiguous']:.1e}, "
                f"vs float64 {r['vs_float64']:.1e}; images > 1e-5 from float64: {off} "
                f"(batch size 1: {off1})",
                flush=True,
            )
    torch.set_num_threads(2)
    suspects = sorted(
        {
            i
            for r in rows
            for key in ("vs_float64_per_image", "vs_float64_per_image_batch_size_1")
            for i, e in enumerate(r[key])
            if e > 1e-5
        }
    )
    diagnosis = []
    for i in suspects:
        for layout_name, layout in (
            ("contiguous", torch.contiguous_format),
            ("channels_last", torch.channels_last),
        ):
            flips = relu_flips(module, images[i], layout)
            diagnosis.append({"image": i, "layout": layout_name, "batch_size": 1, "flips": flips})
            print(
                f"image {i} {layout_name} (alone): ReLU inputs of another sign than "
                f"float64's: {flips}"
            )
    maps = ig_maps(module, images)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "pass_settings.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "torch": torch.__version__,
                "args": vars(args),
                "rows": rows,
                "ig_maps": maps,
                "diagnosis": diagnosis,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
