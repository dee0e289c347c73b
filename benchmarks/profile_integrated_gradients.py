"""Where imacs's path methods spend their time: torch, or imacs's own NumPy work.

    python benchmarks/profile_integrated_gradients.py [--size 128] [--images 8]
    python benchmarks/profile_integrated_gradients.py --method guided-ig --n-steps 40

Profiles one run of Integrated Gradients (default), Guided IG or Blur IG on the
benchmark CNN and prints the share of the time spent inside torch's forward and backward
passes, then the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats

from attribution_speed import build_cnn, natural_images

import imacs
from imacs.attribution.blur_ig import BlurIG
from imacs.attribution.guided_ig import GuidedIG
from imacs.attribution.integrated_gradients import IntegratedGradients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--method", choices=("ig", "guided-ig", "blur-ig"), default="ig")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    model = imacs.load_model(build_cnn(), device="cpu")
    images = natural_images(args.images, args.size)
    targets = model.predict(images).argmax(axis=1)
    method = {
        "ig": lambda: IntegratedGradients(n_steps=args.n_steps),
        "guided-ig": lambda: GuidedIG(x_steps=args.n_steps),
        "blur-ig": lambda: BlurIG(steps=args.n_steps),
    }[args.method]()
    method.attribute(model, images, targets, batch_size=args.batch_size)  # warm-up

    profile = cProfile.Profile()
    profile.enable()
    method.attribute(model, images, targets, batch_size=args.batch_size)
    profile.disable()

    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values())
    in_torch = sum(
        row[2]
        for (filename, _, name), row in stats.stats.items()
        if "torch" in filename
        or name.startswith("<method 'run_backward'")
        or name.startswith("<built-in method torch")
    )
    print(
        f"{args.method}, {args.images} images, {args.size}x{args.size}, {args.n_steps} steps: "
        f"{total:.2f} s, {100 * in_torch / total:.1f}% of it inside torch's own code"
    )
    stats.sort_stats("tottime").print_stats(10)


if __name__ == "__main__":
    main()
