"""What the "where in the frame" analysis adds to a comparison.

Runs one comparison of the demo's two CNNs (PyTorch against Keras) with the default
method on the demo's digits, in a fresh store, and reports the seconds of each stage and
the spatial share: the positional maps (gathered while scoring the stored maps) and the
model-needing parts (padding check, mean activation maps, blind-spot probe).

    .venv/bin/python benchmarks/spatial_speed.py [N_IMAGES]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import imacs
from imacs.demo.data import shortcut_digits
from imacs.demo.models import train_keras_cnn, train_torch_cnn


def main(n_images: int = 200) -> None:
    data = shortcut_digits(shortcut=False, seed=0)
    train, test = slice(400, None), slice(0, n_images)
    model_a = train_torch_cnn(data.images[train], data.labels[train], epochs=4)
    model_b = train_keras_cnn(data.images[train], data.labels[train], epochs=4)
    with tempfile.TemporaryDirectory() as store:
        start = time.perf_counter()
        comparison = imacs.compare(
            model_a, model_b, data.images[test], data.labels[test], store=store, progress=False
        )
        total = time.perf_counter() - start
    spatial = comparison.timings.get("spatial", 0.0)
    result = {
        "n_images": n_images,
        "image_shape": list(data.images.shape[1:]),
        "total_seconds": round(total, 2),
        "spatial_seconds": round(spatial, 3),
        "spatial_share": round(spatial / total, 4),
        "timings": {k: round(v, 3) for k, v in comparison.timings.items()},
    }
    print(json.dumps(result, indent=1))
    out = Path(__file__).parent / "results" / "spatial_speed.json"
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
