"""Attribution speed, imacs side by side with the peer libraries, in one run.

    python benchmarks/attribution_speed.py            # CPU here, the GPU when there is one
    python benchmarks/attribution_speed.py --quick    # smaller, for a smoke test

Every contest runs imacs and the peer on the same model, inputs and parameters, checks
that they agree, and reports per-image times, the peer/imacs speed ratio (above 1 means
imacs is faster) and imacs's time over the cost of the model passes the method must make
(1.0 would be no overhead at all). Rows of methods with a fixed number of passes also
give a *ceiling*: the peer's time over those passes at the cheapest batch size measured
(1 to ``--batch-size`` inputs per call), the ratio imacs would reach if it spent nothing
but those passes, so a target above the ceiling cannot be met on this machine by any
implementation that makes the same passes. The model is a ~1M-parameter CNN; it runs at
64x64 and at a larger size. Results are printed as a table and written as JSON beside
this file.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

import imacs
from imacs.attribution.blur_ig import BlurIG
from imacs.attribution.guided_ig import GuidedIG
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.attribution.xrai import SEGMENT_CACHE, XRAI

RESULTS = Path(__file__).resolve().parent / "results"


def build_cnn(n_classes: int = 10) -> torch.nn.Module:
    """A ~1M-parameter CNN (981,834 weights) of the shape image classifiers commonly have."""
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(128, 256, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, n_classes),
    )


def natural_images(n: int, size: int) -> np.ndarray:
    """Crops of scikit-image's sample photographs, float32 in [0, 1]."""
    from skimage import data
    from skimage.transform import resize

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, 100, 2)
        crop = photo[top : top + 300, left : left + 300] / 255.0
        out.append(resize(crop, (size, size), anti_aliasing=True))
    return np.stack(out).astype(np.float32)


def seconds(call: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed runs, after one untimed warm-up."""
    call()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def race(
    ours: Callable[[], object], peer: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Best times of ``ours`` and ``peer``, run alternately so that drift in the machine's
    load (other processes, CPU clocks) falls on both alike; one untimed warm-up each."""
    ours()
    peer()
    best = [float("inf"), float("inf")]
    for _ in range(repeats):
        for k, call in enumerate((ours, peer)):
            start = time.perf_counter()
            call()
            best[k] = min(best[k], time.perf_counter() - start)
    return best[0], best[1]


@dataclass
class Row:
    contest: str
    size: int
    images: int
    imacs_ms: float
    peer: str
    peer_ms: float
    speedup: float
    over_model_cost: float | None
    max_difference: float
    note: str = ""
    #: peer time over the method's passes at the cheapest batch size (see the docstring)
    ceiling: float | None = None


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() or 1.0))


def measure(
    contest: str,
    peer: str,
    images: np.ndarray,
    run_ours: Callable[[], np.ndarray],
    run_peer: Callable[[], np.ndarray],
    repeats: int,
    *,
    passes_per_image: int | None = None,
    cost_ms: float | None = None,
    compare_with: Callable[[], np.ndarray] | None = None,
    note: str = "",
) -> Row:
    """Race ``run_ours`` against ``run_peer`` and compare their maps (or ``compare_with``'s)."""
    imacs_s, peer_s = race(run_ours, run_peer, repeats)
    n = len(images)
    imacs_ms = 1000 * imacs_s / n
    over_cost = None
    if passes_per_image is not None and cost_ms is not None:
        over_cost = imacs_ms / (passes_per_image * cost_ms)
    reference = (compare_with or run_peer)()
    ceiling = None
    if passes_per_image is not None and images.shape[1] in CHEAPEST_PASS_MS:
        ceiling = 1000 * peer_s / n / (passes_per_image * CHEAPEST_PASS_MS[images.shape[1]])
    return Row(
        contest,
        images.shape[1],
        n,
        imacs_ms,
        peer,
        1000 * peer_s / n,
        peer_s / imacs_s,
        over_cost,
        relative_difference(run_ours(), reference),
        note,
        ceiling,
    )


#: per image size, the per-input cost of a pass at the cheapest batch size (``main`` fills it)
CHEAPEST_PASS_MS: dict[int, float] = {}


def cheapest_pass_ms(
    model: imacs.ModelAdapter, images: np.ndarray, batch_size: int, repeats: int
) -> tuple[float, int]:
    """The lowest per-input cost of a pass over batch sizes 1, 2, 4, ... ``batch_size``."""
    sizes = [1 << k for k in range(batch_size.bit_length()) if 1 << k <= batch_size]
    # small calls are short: more repeats, and the best of them
    costs = {size: gradient_cost_ms(model, images, size, max(repeats, 5)) for size in sizes}
    best = min(costs, key=lambda size: costs[size])
    return costs[best], best


def gradient_cost_ms(
    model: imacs.ModelAdapter, images: np.ndarray, batch_size: int, repeats: int
) -> float:
    """Per-input cost of one forward+backward pass at ``batch_size`` through the adapter."""
    inputs = np.concatenate([images] * (batch_size // len(images) + 1))[:batch_size]
    targets = np.zeros(len(inputs), dtype=int)
    return 1000 * seconds(lambda: model.value_and_gradients(inputs, targets), repeats) / batch_size


def captum_inputs(images: np.ndarray, layout: torch.memory_format, device) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(memory_format=layout)
    return x.to(device)


def contest_ig(model, module, images, targets, args, cost_ms) -> list[Row]:
    """imacs's Integrated Gradients against Captum's, four ways.

    1. Captum with its defaults (50 Gauss-Legendre steps, every step of every image in
       one call, the contiguous layout a user hands it) against imacs with the same 50
       points through its adapter as loaded (``--layout``; on the CPU the adapter's calls
       carry at most ``call_pixels`` pixels, 131,072 by default): the same computation, so
       the maps agree to float32 rounding (and to the kinks channels-last moves).
    2. The same, Captum given imacs's memory format and inputs per call: the attribution
       code alone, without the cheaper passes.
    3. imacs without the limit on pixels per call (``call_pixels=None``: ``--batch-size``
       inputs per call) against Captum's defaults: what the limit buys.
    4. imacs's adaptive steps (``n_steps="auto"``, trapezoid) with the tolerance set to
       the largest completeness error Captum's defaults leave on these images: a
       different quadrature, so the maps differ by the two rules' quadrature errors.
    """
    from captum.attr import IntegratedGradients as CaptumIG

    n_steps = args.ig_steps
    captum = CaptumIG(module)
    t = torch.from_numpy(targets).to(model.device)
    fast = torch.channels_last if model.channels_last else torch.contiguous_format
    plain_x = captum_inputs(images, torch.contiguous_format, model.device)
    fast_x = captum_inputs(images, fast, model.device)
    unlimited = imacs.load_model(
        module, device=str(model.device), channels_last=model.channels_last, call_pixels=None
    )
    fixed = IntegratedGradients(n_steps=n_steps, quadrature="gausslegendre", baselines="black")
    pixels = images.shape[1] * images.shape[2]
    per_call = args.batch_size
    if model.call_pixels is not None:
        per_call = min(per_call, max(1, model.call_pixels // pixels))

    def run_captum(x: torch.Tensor, internal_batch_size: int | None = None) -> np.ndarray:
        return (
            captum.attribute(x, target=t, n_steps=n_steps, internal_batch_size=internal_batch_size)
            .permute(0, 2, 3, 1)
            .detach()
            .cpu()
            .numpy()
        )

    def run_ours(adapter: imacs.ModelAdapter) -> np.ndarray:
        return fixed.attribute(adapter, images, targets, batch_size=args.batch_size).maps

    layout = "channels-last" if model.channels_last else "contiguous"
    everything = len(images) * n_steps
    rows = [
        measure(
            "IG vs Captum's defaults",
            "captum",
            images,
            lambda: run_ours(model),
            lambda: run_captum(plain_x),
            args.repeats,
            passes_per_image=n_steps,
            cost_ms=cost_ms,
            note=f"{n_steps} Gauss-Legendre steps both; imacs {layout}, {per_call} inputs "
            f"per call; Captum contiguous, all {everything} in one call (its defaults)",
        ),
        measure(
            "IG vs Captum, same calls",
            "captum",
            images,
            lambda: run_ours(model),
            lambda: run_captum(fast_x, per_call),
            args.repeats,
            passes_per_image=n_steps,
            cost_ms=cost_ms,
            note=f"Captum given imacs's layout ({layout}) and inputs per call "
            f"(internal_batch_size={per_call}): the attribution code alone",
        ),
        measure(
            "IG without the call limit vs Captum's defaults",
            "captum",
            images,
            lambda: run_ours(unlimited),
            lambda: run_captum(plain_x),
            args.repeats,
            passes_per_image=n_steps,
            note=f"imacs call_pixels=None ({args.batch_size} inputs per call), {layout}",
        ),
    ]
    _, captum_delta = captum.attribute(
        plain_x, target=t, n_steps=n_steps, return_convergence_delta=True
    )
    tolerance = float(captum_delta.abs().max())
    auto = IntegratedGradients(
        n_steps="auto", quadrature="trapezoid", baselines="black", tolerance=tolerance
    )
    row = measure(
        "IG auto at Captum's completeness error",
        "captum",
        images,
        lambda: auto.attribute(model, images, targets, batch_size=args.batch_size).maps,
        lambda: run_captum(plain_x),
        args.repeats,
    )
    result = auto.attribute(model, images, targets, batch_size=args.batch_size)
    assert auto.last_steps is not None
    passes = float(np.mean(auto.last_steps + 1))
    row.over_model_cost = row.imacs_ms / (passes * cost_ms)
    row.note = (
        f"imacs n_steps='auto' (trapezoid) at tolerance {tolerance:.3g} = Captum's largest "
        f"|delta| ({n_steps} Gauss-Legendre steps, contiguous); imacs {passes:.1f} "
        f"passes/image, largest |delta| {np.abs(result.convergence_delta).max():.3g}; "
        "different rules, so the maps differ by their quadrature errors"
    )
    rows.append(row)
    return rows


def pair_call_model_function(model: imacs.ModelAdapter):
    """PAIR saliency's model contract, served by the same imacs adapter."""
    import saliency.core as saliency

    def call(x_batch, call_model_args=None, expected_keys=None):
        targets = np.full(len(x_batch), call_model_args["target"])
        return {
            saliency.base.INPUT_OUTPUT_GRADIENTS: model.gradients(
                np.asarray(x_batch, np.float32), targets
            )
        }

    return call


def patched_pair_guided_ig():
    """PAIR 0.2.1's Guided IG calls np.quantile(interpolation=), gone in NumPy 2.4."""
    import types

    import saliency.core.guided_ig as pair_gig

    if "interpolation" in inspect.signature(np.quantile).parameters:  # older NumPy
        return pair_gig
    shim = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    shim.quantile = lambda a, q, interpolation="linear", **kw: np.quantile(
        a, q, method=interpolation, **kw
    )
    pair_gig.np = shim
    return pair_gig


def contest_guided_ig(model, module, images, targets, args, cost_ms) -> Row:
    pair_gig = patched_pair_guided_ig()
    steps = args.gig_steps
    ours = GuidedIG(x_steps=steps)
    call = pair_call_model_function(model)

    def run_pair() -> np.ndarray:
        return np.stack(
            [
                pair_gig.GuidedIG().GetMask(
                    images[i],
                    call,
                    {"target": int(targets[i])},
                    x_baseline=np.zeros_like(images[i]),
                    x_steps=steps,
                )
                for i in range(len(images))
            ]
        )

    return measure(
        "guided IG",
        "PAIR saliency",
        images,
        lambda: ours.attribute(model, images, targets, batch_size=args.batch_size).maps,
        run_pair,
        args.repeats,
        passes_per_image=steps,
        cost_ms=cost_ms,
        note=f"{steps} steps, {len(images)} images per call",
    )


def contest_blur_ig(model, module, images, targets, args, cost_ms) -> Row:
    import saliency.core as saliency

    steps = args.blur_steps
    ours = BlurIG(steps=steps)
    call = pair_call_model_function(model)
    per_image = max(1, args.batch_size)

    def run_pair(batch_size: int) -> np.ndarray:
        return np.stack(
            [
                saliency.BlurIG().GetMask(
                    images[i], call, {"target": int(targets[i])}, steps=steps, batch_size=batch_size
                )
                for i in range(len(images))
            ]
        )

    return measure(
        "blur IG",
        "PAIR saliency",
        images,
        lambda: ours.attribute(model, images, targets, batch_size=args.batch_size).maps,
        lambda: run_pair(per_image),
        args.repeats,
        passes_per_image=steps,
        cost_ms=cost_ms,
        compare_with=lambda: run_pair(1),
        note=f"{steps} steps; PAIR timed at batch_size={per_image}, compared at batch_size=1",
    )


def contest_xrai(model, module, images, targets, args, cost_ms) -> Row:
    import saliency.core as saliency

    base = (
        IntegratedGradients(n_steps=8, baselines=["black", "white"])
        .attribute(model, images, targets, batch_size=args.batch_size)
        .maps
    )
    call = pair_call_model_function(model)

    def run_ours() -> np.ndarray:
        SEGMENT_CACHE.clear()  # time a first look at the images, as PAIR always does
        return XRAI(base_attribution=base).attribute(model, images, targets).maps[..., 0]

    def run_pair() -> np.ndarray:
        return np.stack(
            [
                saliency.XRAI().GetMask(
                    images[i], call, {"target": int(targets[i])}, base_attribution=base[i]
                )
                for i in range(len(images))
            ]
        )

    return measure(
        "XRAI outside the model",
        "PAIR saliency",
        images,
        run_ours,
        run_pair,
        args.repeats,
        note="segmentation + selection from one base attribution, segment cache cleared",
    )


CONTESTS = {
    "ig": contest_ig,
    "guided-ig": contest_guided_ig,
    "blur-ig": contest_blur_ig,
    "xrai": contest_xrai,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="64,128", help="input sizes, comma-separated")
    parser.add_argument(
        "--images", default="16,8", help="images per contest, one count per size (comma-separated)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ig-steps", type=int, default=50, help="default: Captum's default")
    parser.add_argument("--gig-steps", type=int, default=200)
    parser.add_argument("--blur-steps", type=int, default=100)
    parser.add_argument("--contests", default=",".join(CONTESTS))
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument(
        "--layout",
        choices=("default", "channels-last", "contiguous"),
        default="default",
        help="the imacs adapter's memory format (PAIR calls the same adapter); default: "
        "the adapter's own, contiguous; channels-last is its opt-in channels_last=True",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="the same as --layout channels-last"
    )
    parser.add_argument("--out", default=None, help="the JSON file (default: results/...)")
    parser.add_argument("--quick", action="store_true", help="few images and steps: a smoke test")
    args = parser.parse_args()
    unknown = sorted(set(args.contests.split(",")) - set(CONTESTS))
    if unknown:
        parser.error(f"unknown contest {', '.join(unknown)}; choose from {', '.join(CONTESTS)}")
    if args.quick:
        args.sizes, args.images, args.repeats = "32", "4", 1
        args.ig_steps, args.gig_steps, args.blur_steps = 16, 20, 10

    module = build_cnn()
    if args.channels_last:
        args.layout = "channels-last"
    # "default" passes nothing, so the adapter's own default applies (None would be its
    # automatic choice, channels-last for convolutions on the CPU)
    layout = {"default": {}, "channels-last": {"channels_last": True}}.get(
        args.layout, {"channels_last": False}
    )
    model = imacs.load_model(module, device=args.device, **layout)
    # every call size up to --batch-size, for the ceiling: no limit on pixels per call
    any_call = imacs.load_model(module, device=args.device, call_pixels=None, **layout)
    console = Console(width=160)
    rows: list[Row] = []
    counts = [int(n) for n in str(args.images).split(",")]
    for k, size in enumerate(int(s) for s in args.sizes.split(",")):
        images = natural_images(counts[min(k, len(counts) - 1)], size)
        targets = model.predict(images).argmax(axis=1)
        cost_ms = gradient_cost_ms(model, images, args.batch_size, args.repeats)
        console.print(
            f"{size}x{size}: one forward+backward pass costs {cost_ms:.3f} ms per input "
            f"through the adapter (--batch-size {args.batch_size}, call_pixels "
            f"{model.call_pixels})"
        )
        CHEAPEST_PASS_MS[size], cheapest_batch = cheapest_pass_ms(
            any_call, images, args.batch_size, args.repeats
        )
        console.print(
            f"  cheapest: {CHEAPEST_PASS_MS[size]:.3f} ms per input at {cheapest_batch} per call"
        )
        for name in args.contests.split(","):
            result = CONTESTS[name](model, module, images, targets, args, cost_ms)
            for row in result if isinstance(result, list) else [result]:
                rows.append(row)
                console.print(
                    f"  {row.contest}: imacs {row.imacs_ms:.1f} ms/image, {row.peer} "
                    f"{row.peer_ms:.1f} ms/image ({row.speedup:.2f}x), max rel diff "
                    f"{row.max_difference:.1e}"
                )

    table = Table(title=f"imacs vs peers on {model.describe().get('device', 'cpu')}")
    for column in (
        "contest",
        "size",
        "imacs ms/img",
        "peer",
        "peer ms/img",
        "peer/imacs",
        "imacs/model cost",
        "ceiling",
        "max rel diff",
        "note",
    ):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.contest,
            str(r.size),
            f"{r.imacs_ms:.1f}",
            r.peer,
            f"{r.peer_ms:.1f}",
            f"{r.speedup:.2f}x",
            "-" if r.over_model_cost is None else f"{r.over_model_cost:.2f}",
            "-" if r.ceiling is None else f"{r.ceiling:.2f}x",
            f"{r.max_difference:.1e}",
            r.note,
        )
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    device = str(model.describe().get("device", "cpu"))
    suffix = "-quick" if args.quick else ""  # a smoke test never overwrites a real run
    out = (
        Path(args.out)
        if args.out
        else RESULTS / f"attribution_speed-{device.replace(':', '')}{suffix}.json"
    )
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpu_count": os.cpu_count(),
                "torch": torch.__version__,
                "device": device,
                "args": vars(args),
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
    )
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
