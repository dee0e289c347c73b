"""How a comparison's time and memory grow with the dataset, and what the stages cost.

Trains the planted-shortcut pair (a PyTorch CNN on clean digits, one on digits whose
corner patch encodes the label), then compares them with Integrated Gradients (64 steps)
on 250, 500 and 1,000 images, each run in a fresh process with a fresh store, and
prints per run:

- the seconds the process spent importing the libraries the stages use (scikit-learn,
  scikit-image, scipy, pandas). They are imported before the clock starts, as in any
  session that has already run one comparison, and reported apart: about 1.5 s once
  per process, which would otherwise weigh on the smallest run most;
- the time of each stage, and the stages after attribution (segment, score, featurize,
  cluster, statistics) as a share of the attribution time (target: at most 20%);
- the causal check (on by default: the top 5 clusters, at most 50 images each) as a share
  of the whole comparison (target: at most 15%), and the statistics likewise (target:
  under 2% at 1,000 images);
- seconds per image, wall and CPU (all the process's threads), which stay flat when the
  runtime grows linearly; CPU seconds are less disturbed by other work on the machine;
- the peak resident memory the comparison added on top of the loaded data and models,
  sampled every 20 ms while it runs, overall and per stage (the stage running when
  each sample was taken), so a growing peak names the stage that holds it.

Each size runs ``--repeats`` times (default 2) and the fastest run is kept, so that a
slow spell of a shared machine does not count as the method's cost.

``--folder`` writes the images as PNG files in one folder per class and compares on the
folder, as a user with a folder of images would: the images are then read in batches, not
held in memory, so the peak memory is the comparison's own. ``--set textures224`` runs
the same on the watermarked textures at 224x224 (the demo CNN trained for two epochs on
300 of them, since the cost, not the finding, is measured).

    .venv/bin/python benchmarks/compare_speed.py            # about 6 minutes on 2 CPU cores
    .venv/bin/python benchmarks/compare_speed.py --sizes 250 --steps 16   # a quick look
    # the scale runs: 10,000 images at 32 px and 1,000 at 224 px, from folders
    .venv/bin/python benchmarks/compare_speed.py --folder --steps 16 --repeats 1 \
        --sizes 1250 2500 5000 10000
    .venv/bin/python benchmarks/compare_speed.py --folder --steps 16 --repeats 1 \
        --set textures224 --sizes 125 250 500 1000

``--executor ray`` runs the comparisons on a Ray instance that the child process starts
on ``--threads`` CPUs before the clock (the actors, one per CPU with one framework thread
each, start inside the comparison, as they would in a first comparison). Memory and CPU
then count the process and all its descendants: the actors and Ray's own services.

    .venv/bin/python benchmarks/compare_speed.py --folder --steps 16 --repeats 1 \
        --threads 2 --executor ray --sizes 2500 5000 10000

Writes ``benchmarks/results/compare_speed-cpu.json`` (``compare_speed-<set>-folder.json``
for the other sets and the folder runs, with ``-ray`` appended for Ray runs).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
AFTER_ATTRIBUTION = ("segment", "score", "featurize", "cluster", "statistics")

CHILD = """
import json, os, sys, threading, time
from pathlib import Path
import numpy as np
import torch
import imacs
from imacs.demo.data import shortcut_digits

folder = sys.argv[1]
n_images, n_steps, threads = (int(v) for v in sys.argv[2:5])
data_set, from_folder, executor = sys.argv[5], sys.argv[6] == "folder", sys.argv[7]
torch.set_num_threads(threads)
if executor == "ray":
    # started before the clock, as in a session that has run a comparison already; the
    # actors start inside the comparison, and their memory is counted with the process's
    import ray
    ray.init(num_cpus=threads, include_dashboard=False, log_to_driver=False)
# TorchScript written by this script a moment ago: trusted. PNG files are read as 0..255
scale = {"preprocessing": {"scale": 1 / 255}} if from_folder else {}
model_a = imacs.load_model(folder + "/clean.pt", trust=True, **scale)
model_b = imacs.load_model(folder + "/shortcut.pt", trust=True, **scale)
if data_set == "digits":
    # n_images digits with random patch shades; repeats of a digit get other colours
    parts, seed = [], 0
    while sum(len(p) for p in parts) < n_images:
        parts.append(shortcut_digits(shortcut=False, seed=100 + seed).images)
        seed += 1
    images = np.concatenate(parts)[:n_images]
    labels = np.tile(shortcut_digits(shortcut=False).labels, seed)[:n_images]
else:
    from imacs.demo.watermark import watermarked_textures
    textures = watermarked_textures(n_images, seed=100, size=224)
    images, labels = textures.images, textures.labels
if from_folder:
    from PIL import Image
    data = folder + f"/images-{n_images}"
    for i, (image, label) in enumerate(zip(images, labels)):
        Path(data, str(label)).mkdir(parents=True, exist_ok=True)
        pixels = np.rint(image * 255).astype(np.uint8)
        Image.fromarray(pixels).save(Path(data, str(label), f"{i:05d}.png"))
    del images
    data_args = (data,)
else:
    data_args = (images, labels)
def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:  # ended meanwhile
        pass
    return 0

def tree():
    # this process and its descendants: with Ray, the actors and Ray's own services
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found

known = {"pids": [], "at": -1.0}

def rss_mib():
    # this process's resident memory; with Ray, its descendants' too. Scanning /proc for
    # the descendants costs milliseconds, so the list is renewed every half second only:
    # a sampler scanning every 20 ms would take a fifth of a core from the comparison
    if executor != "ray":
        return rss_kib("self") / 1024
    if time.perf_counter() - known["at"] > 0.5:
        known["pids"], known["at"] = tree(), time.perf_counter()
    return sum(rss_kib(pid) for pid in known["pids"]) / 1024

def cpu_seconds():
    # CPU seconds of this process; with Ray, of its descendants too (live ones)
    if executor != "ray":
        return time.process_time()
    total = 0
    for pid in tree():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")

start = time.perf_counter()
import pandas, scipy.ndimage, scipy.stats, skimage.color, skimage.feature, skimage.metrics
import skimage.segmentation, sklearn.cluster, sklearn.metrics
imports_s = time.perf_counter() - start

# the peak is sampled during the comparison only, above the resident memory just before
# it (the data and both models are loaded by then), overall and per stage: each stage's
# method is wrapped to name the stage the sampler charges
import functools
import imacs.comparison.statistics as statistics
from imacs.comparison.clustering import Clusterer
from imacs.comparison.runner import ComparisonRun
stage, peaks = ["setup"], {}
def charged(owner, method, name):
    original = getattr(owner, method)
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        outer, stage[0] = stage[0], name
        try:
            return original(*args, **kwargs)
        finally:
            stage[0] = outer
    setattr(owner, method, wrapper)
for method, name in (("ingest", "ingest"), ("predict", "predict"), ("attribute", "attribute"),
                     ("score", "score"), ("featurize", "featurize"), ("_image_table", "tables"),
                     ("causal_check", "causal"), ("spatial_analysis", "spatial"),
                     ("quality_analysis", "quality"), ("_cluster_names", "statistics")):
    charged(ComparisonRun, method, name)
charged(Clusterer, "fit_predict", "cluster")
charged(statistics, "cluster_table", "statistics")
charged(statistics, "class_table", "statistics")
before, peak, running = rss_mib(), [0.0], [True]
own_before, own_peak = rss_kib("self") / 1024, [0.0]  # the comparison's process alone
def watch():
    while running[0]:
        rss = rss_mib()
        peak[0] = max(peak[0], rss)
        own_peak[0] = max(own_peak[0], rss_kib("self") / 1024)
        peaks[stage[0]] = max(peaks.get(stage[0], 0.0), rss)
        time.sleep(0.02)
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
start, cpu_start = time.perf_counter(), cpu_seconds()
comparison = imacs.compare(
    model_a, model_b, *data_args, store=folder + f"/store-{n_images}",
    method_params={"n_steps": n_steps}, progress=False, executor=executor,
)
total, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
running[0] = False
watcher.join()
print(json.dumps({
    "n_images": n_images, "total_s": total, "cpu_s": cpu, "imports_s": imports_s,
    "timings": comparison.timings,
    "peak_added_mib": peak[0] - before, "n_regions": len(comparison.regions),
    "peak_added_own_process_mib": own_peak[0] - own_before,
    "peak_added_by_stage_mib": {name: value - before for name, value in peaks.items()},
    "n_clusters": len(comparison.clusters),
    "top_cluster_difference": float(comparison.clusters.iloc[0]["difference"]),
}))
"""


def train(folder: Path, seed: int, data_set: str) -> None:
    import torch

    from imacs.demo.data import shortcut_digits, split_indices
    from imacs.demo.models import train_torch_cnn
    from imacs.demo.watermark import watermarked_textures

    train_idx, _ = split_indices()
    for name, shortcut in (("clean", False), ("shortcut", True)):
        if data_set == "digits":
            data = shortcut_digits(train_idx, shortcut=shortcut, seed=seed)
            model = train_torch_cnn(data.images, data.labels, seed=seed)
        else:
            textures = watermarked_textures(
                300, shortcut_class=0 if shortcut else None, seed=seed, size=224
            )
            model = train_torch_cnn(textures.images, textures.labels, seed=seed, epochs=2)
        torch.jit.script(model).save(str(folder / f"{name}.pt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000])
    parser.add_argument("--steps", type=int, default=64, help="Integrated Gradients steps")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs per size; the fastest counts")
    parser.add_argument("--set", choices=("digits", "textures224"), default="digits")
    parser.add_argument("--folder", action="store_true", help="compare on a folder of PNG files")
    parser.add_argument(
        "--executor",
        choices=("in-process", "ray"),
        default="in-process",
        help="ray: a Ray instance on --threads CPUs, one actor per CPU with one thread each",
    )
    args = parser.parse_args()

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train(folder, args.seed, args.set)
        for n in args.sizes:
            repeats = []
            for _ in range(args.repeats):
                shutil.rmtree(folder / f"store-{n}", ignore_errors=True)
                output = subprocess.run(
                    [
                        *(sys.executable, "-c", CHILD, tmp),
                        *(str(n), str(args.steps), str(args.threads)),
                        *(args.set, "folder" if args.folder else "array", args.executor),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                repeats.append(json.loads(output.strip().splitlines()[-1]))
            best = min(repeats, key=lambda run: run["total_s"])
            best["all_totals_s"] = [run["total_s"] for run in repeats]
            runs.append(best)

    print(
        f"{'images':>7} {'total s':>8} {'s/image':>8} {'cpu s/image':>12} {'attribute s':>12} "
        f"{'after s':>8} {'after/attr':>11} {'causal':>7} {'stats':>6} {'peak +MiB':>10} "
        f"{'imports s':>10}"
    )
    for run in runs:
        t = run["timings"]
        after = sum(t.get(stage, 0.0) for stage in AFTER_ATTRIBUTION)
        run["after_attribution_s"] = after
        run["after_over_attribution"] = after / t["attribute"]
        run["causal_share"] = t.get("causal", 0.0) / run["total_s"]
        run["statistics_share"] = t.get("statistics", 0.0) / run["total_s"]
        print(
            f"{run['n_images']:>7} {run['total_s']:>8.1f} {run['total_s'] / run['n_images']:>8.3f} "
            f"{run['cpu_s'] / run['n_images']:>12.3f} {t['attribute']:>12.1f} {after:>8.1f} "
            f"{run['after_over_attribution']:>10.1%} "
            f"{run['causal_share']:>7.1%} {run['statistics_share']:>6.1%} "
            f"{run['peak_added_mib']:>10.1f} {run['imports_s']:>10.1f}"
        )
        stages = ", ".join(f"{k} {v:.1f}" for k, v in t.items())
        print(f"{'':>7} stages (s): {stages}")
        peaks = ", ".join(f"{k} {v:.0f}" for k, v in run["peak_added_by_stage_mib"].items())
        print(f"{'':>7} peak +MiB by stage: {peaks}")
        if args.executor != "in-process":
            own = run["peak_added_own_process_mib"]
            print(f"{'':>7} peak +MiB of the comparison's own process: {own:.0f}")
    RESULTS.mkdir(exist_ok=True)
    default = args.set == "digits" and not args.folder
    name = "cpu" if default else f"{args.set}{'-folder' if args.folder else ''}"
    if args.executor != "in-process":
        name += f"-{args.executor}"
    out = RESULTS / f"compare_speed-{name}.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "args": vars(args),
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
