"""How big the HTML report gets and how fast a browser opens it, at thousands of images.

Compares the planted NumPy pair (:mod:`imacs.testing.planted`: templates only against
templates plus the corner-patch shortcut) on 2,000 digits with random patch shades (all
1,797 scikit-learn digits, then more colourings of them), clustered by k-means into a
fixed 50 clusters, writes the report, and measures:

- the time to write it and its size on disk;
- in headless Chromium, from disk: the time from navigation start until the ranked
  cluster list is rendered with the exemplar thumbnails on screen drawn (the page opens
  at ``#clusters``, so the list and its thumbnails are what the first screen shows);
- the time from a click on the top cluster until its first page of region tiles is
  decoded and drawn, and from a click on a tile until the image's four drill-down
  canvases are drawn.

Each browser measurement opens the page afresh, so nothing is cached between repeats; the
median is reported. Targets: load and open a cluster each under 2 s.

    .venv/bin/python benchmarks/report_speed.py                    # 2,000 images, 50 clusters
    .venv/bin/python benchmarks/report_speed.py --images 500 --clusters 20 --repeats 3

Writes ``benchmarks/results/report_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from imacs.testing.browser import CHROMIUM, CHROMIUM_ARGS, VIEWPORT

RESULTS = Path(__file__).resolve().parent / "results"

# Resolves with the milliseconds from a click on `clickSelector` until `viewSelector` is
# shown with data-ready="true", counting the frame that paints it.
CLICK_UNTIL_READY = """async ([clickSelector, viewSelector]) => {
  const view = document.querySelector(viewSelector);
  const done = () => !view.hidden && view.dataset.ready === 'true';
  const start = performance.now();
  const ready = new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (done()) { observer.disconnect(); resolve(); }
    });
    observer.observe(view, { attributes: true, attributeFilter: ['hidden', 'data-ready'] });
  });
  view.dataset.ready = 'false';
  document.querySelector(clickSelector).click();
  await ready;
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  return performance.now() - start;
}"""


def build(n_images: int, n_clusters: int, steps: int, store: Path) -> tuple[Any, float]:
    import numpy as np

    import imacs
    from imacs.comparison.clustering import KMeansClusterer
    from imacs.demo.data import shortcut_digits
    from imacs.testing.planted import planted_models

    parts, labels, seed = [], [], 0
    while sum(len(p) for p in parts) < n_images:
        data = shortcut_digits(shortcut=False, seed=100 + seed)
        parts.append(data.images)
        labels.append(data.labels)
        seed += 1
    images = np.concatenate(parts)[:n_images]
    start = time.perf_counter()
    comparison = imacs.compare(
        *planted_models(),
        images,
        np.concatenate(labels)[:n_images],
        method_params={"n_steps": steps},
        clusterer=KMeansClusterer(n_clusters=n_clusters),
        class_names=[f"digit {k}" for k in range(10)],
        store=store,
        progress=False,
    )
    return comparison, time.perf_counter() - start


def measure(report: Path, repeats: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    url = report.resolve().as_uri()
    runs: dict[str, list[float]] = {
        "dom_content_loaded_ms": [],
        "load_ms": [],
        "open_cluster_ms": [],
        "open_image_ms": [],
        "js_heap_mib": [],
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_ARGS))
        try:
            for _ in range(repeats):
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
                page.on(
                    "console",
                    lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None,
                )
                page.goto(url + "#clusters", timeout=60_000)
                page.wait_for_selector("body[data-ready=true]", state="attached", timeout=60_000)
                timing = page.evaluate(
                    """() => ({
                      list: performance.getEntriesByName('imacs:clusters-ready')[0].startTime,
                      dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
                    })"""
                )
                runs["load_ms"].append(timing["list"])
                runs["dom_content_loaded_ms"].append(timing["dcl"])
                runs["open_cluster_ms"].append(
                    page.evaluate(
                        CLICK_UNTIL_READY,
                        ["[data-testid=cluster-row] td.rank", "[data-testid=cluster-view]"],
                    )
                )
                runs["open_image_ms"].append(
                    page.evaluate(
                        CLICK_UNTIL_READY,
                        ["[data-testid=region-tile]", "[data-testid=image-view]"],
                    )
                )
                heap = page.evaluate(
                    "() => performance.memory && performance.memory.usedJSHeapSize"
                )
                runs["js_heap_mib"].append((heap or 0) / 2**20)
                if errors:
                    raise RuntimeError(f"the report logged errors: {errors[:3]}")
                context.close()
        finally:
            browser.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--steps", type=int, default=16, help="Integrated Gradients steps")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from imacs.report.html import write_report

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        comparison, compare_s = build(args.images, args.clusters, args.steps, folder / "store")
        start = time.perf_counter()
        report = write_report(comparison, folder / "report.html", progress=False)
        write_s = time.perf_counter() - start
        size = report.stat().st_size
        runs = measure(report, args.repeats)

    medians = {name: statistics.median(values) for name, values in runs.items()}
    summary = {
        "n_images": len(comparison.images),
        "n_regions": len(comparison.regions),
        "n_clusters": len(comparison.clusters),
        "compare_s": compare_s,
        "write_s": write_s,
        "size_mib": size / 2**20,
        "kib_per_image": size / 1024 / len(comparison.images),
        **{f"median_{name}": value for name, value in medians.items()},
    }
    rows = [
        ("images / regions / clusters",
         f"{summary['n_images']} / {summary['n_regions']} / {summary['n_clusters']}", ""),
        ("write the report", f"{write_s:.1f} s", ""),
        ("file size", f"{summary['size_mib']:.1f} MiB ({summary['kib_per_image']:.1f} KiB/image)",
         ""),
        ("DOMContentLoaded", f"{medians['dom_content_loaded_ms']:.0f} ms", ""),
        ("load: cluster list drawn", f"{medians['load_ms']:.0f} ms", "< 2000 ms"),
        ("open the top cluster", f"{medians['open_cluster_ms']:.0f} ms", "< 2000 ms"),
        ("open an image", f"{medians['open_image_ms']:.0f} ms", ""),
        ("JS heap after both", f"{medians['js_heap_mib']:.0f} MiB", ""),
    ]  # fmt: skip
    print(f"{'measure':<30} {'median of ' + str(args.repeats):<32} target")
    for name, value, target in rows:
        print(f"{name:<30} {value:<32} {target}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "report_speed.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "browser": "headless Chromium " + CHROMIUM,
                "args": vars(args),
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
