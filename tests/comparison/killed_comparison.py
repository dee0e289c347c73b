"""The kill suite's comparison: run it whole, or kill it with SIGKILL at a chosen call.

``python killed_comparison.py DATA STORE OUT POINT N`` runs :func:`run` on the images
and labels saved in ``DATA`` (see :func:`save_dataset`) and kills its own process at the
N-th call of the function that ``POINT`` names (see :data:`KILL_POINTS`), just before
(or, for the points so marked, just after) the call does its work: the store and the
output folder are left exactly as a kill from outside at that moment leaves them, but at
a moment chosen by the test instead of by a race. The hooks live here, in the child's
own copy of the code, so imacs itself carries none.

``test_kill_points.py`` imports this module for :func:`run`, the reference run and its
reruns after each kill; ``tests/report/test_save.py`` kills its saves with :func:`kill_at`.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import imacs
from imacs.store import Store
from imacs.testing.planted import planted_models

N_IMAGES = 40
#: small and fast: a fixed k skips the search over k; batches of 16 give each stage
#: several calls to die in
SETTINGS: dict[str, Any] = {
    "method_params": {"n_steps": 4},
    "n_permutations": 200,
    "n_clusters": 6,
    "batch_size": 16,
    "progress": False,
}
SAVE: dict[str, Any] = {"figures": False, "progress": False}


def save_dataset(path: Path, *, n_images: int = N_IMAGES, seed: int = 3) -> Path:
    """Save the digits to compare on; the child reads them instead of importing sklearn."""
    from imacs.demo.data import shortcut_digits, split_indices

    _, test = split_indices()
    data = shortcut_digits(test[:n_images], shortcut=False, seed=seed)
    np.savez(path, images=data.images, labels=data.labels)
    return path


def run(store: Path, out: Path, data: Path, *, models: tuple[Any, Any] | None = None) -> Any:
    """Compare the planted pair on the digits in ``data``; save the result into ``out``."""
    with np.load(data) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    model_a, model_b = models or planted_models()
    comparison = imacs.compare(model_a, model_b, images, labels, store=store, **SETTINGS)
    comparison.save(out, **SAVE)
    return comparison


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def kill_at(
    n: int,
    owner: Any,
    name: str,
    matches: Callable[..., bool] | None = None,
    *,
    after: bool = False,
) -> None:
    """Make the ``n``-th call of ``owner.name`` (that ``matches``) kill this process."""
    original = getattr(owner, name)
    calls = 0

    def hooked(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        hit = False
        if matches is None or matches(*args, **kwargs):
            calls += 1
            hit = calls == n
        if hit and not after:
            _die()
        result = original(*args, **kwargs)
        if hit:
            _die()
        return result

    setattr(owner, name, hooked)


Install = Callable[[int, Path, tuple[Any, Any]], None]


def storing(stage: str) -> Install:
    """Kill at a ``Store.save`` of a result of ``stage``, before it writes anything."""

    def install(n: int, out: Path, models: tuple[Any, Any]) -> None:
        kill_at(n, Store, "save", lambda store, saved, *args, **kwargs: saved == stage)

    return install


def half_written(stage: str) -> Install:
    """Kill after a result of ``stage`` is written to its temporary file, before the rename."""

    def install(n: int, out: Path, models: tuple[Any, Any]) -> None:
        folder = f"{os.sep}{stage}{os.sep}"
        kill_at(
            n,
            os,
            "replace",
            lambda source, target, *args, **kwargs: (
                str(source).endswith(".tmp") and folder in str(target)
            ),
        )

    return install


def model(side: str, function: str) -> Install:
    """Kill at a call of model ``side``'s ``predict_fn`` or ``gradient_fn``."""

    def install(n: int, out: Path, models: tuple[Any, Any]) -> None:
        kill_at(n, models["ab".index(side)], function)

    return install


def call(owner: str, name: str) -> Install:
    """Kill at a call of ``owner.name``; ``owner`` is ``"module"`` or ``"module:attribute"``.

    The owner is imported when the kill is installed, so a child that dies early never
    pays for the imports of the later stages.
    """

    def install(n: int, out: Path, models: tuple[Any, Any]) -> None:
        module, _, attribute = owner.partition(":")
        found = importlib.import_module(module)
        kill_at(n, getattr(found, attribute) if attribute else found, name)

    return install


def moved_into_output(n: int, out: Path, models: tuple[Any, Any]) -> None:
    """Kill right after the ``n``-th rename into the output folder (the commit is the first)."""
    kill_at(
        n, os, "replace", lambda source, target, *a, **k: Path(target).parent == out, after=True
    )


#: name -> (the stage it kills in, how to install the kill)
KILL_POINTS: dict[str, tuple[str, Install]] = {
    "ingest: storing an image": ("ingest", storing("images")),
    "ingest: an image half written": ("ingest", half_written("images")),
    "predict: model A": ("predict", model("a", "predict_fn")),
    "predict: storing an output": ("predict", storing("predictions")),
    "attribute: model A": ("attribute", model("a", "gradient_fn")),
    "attribute: storing a map": ("attribute", storing("attributions")),
    "attribute: model B": ("attribute", model("b", "gradient_fn")),
    "attribute: a map half written": ("attribute", half_written("attributions")),
    "segment": ("segment", call("imacs.segmentation.felzenszwalb:Felzenszwalb", "segment")),
    "segment: storing a segmentation": ("segment", storing("segments")),
    "score: a map metric": (
        "score",
        call("imacs.metrics.ssim:StructuralSimilarity", "score_batch"),
    ),
    "featurize": ("featurize", call("imacs.features.color:ColorHistogram", "featurize_batch")),
    "cluster": ("cluster", call("imacs.comparison.clustering:KMeansClusterer", "fit_predict")),
    "statistics: clusters": ("statistics", call("imacs.comparison.statistics", "cluster_table")),
    "statistics: classes": ("statistics", call("imacs.comparison.statistics", "class_table")),
    "causal check": ("causal", call("imacs.comparison.runner", "target_probabilities")),
    "save: writing a table": ("save", call("pandas:DataFrame", "to_json")),
    "save: writing the report": ("save", call("imacs.report.html", "write_report")),
    "save: moving the files in": ("save", moved_into_output),
}


def main(argv: list[str]) -> None:
    data, store, out = (Path(arg) for arg in argv[1:4])
    point, n = argv[4], int(argv[5])
    models = planted_models()
    KILL_POINTS[point][1](n, out, models)
    run(store, out, data, models=models)


if __name__ == "__main__":
    main(sys.argv)
