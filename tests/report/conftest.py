"""Comparisons to report on: the planted NumPy models, once with names meant to break HTML."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.testing.planted import planted_models

N_IMAGES = 64
FAST = {"method_params": {"n_steps": 8}, "n_permutations": 200, "progress": False}
#: a page that runs this string as a script (or HTML) fails the escaping tests
SCRIPT = "<script>alert(1)</script>"
#: the class names of the hostile comparison: a script, quotes of both kinds, an ampersand
HOSTILE_CLASSES = [f'{SCRIPT} "c{k}" \'&amp; {k}' for k in range(10)]
#: a model name that would run code as an attribute
HOSTILE_MODEL = '"><img src=x onerror=alert(2)>'


def hostile_file_name(index: int) -> str:
    """File names with an event-handler tag, quotes and a stray tag (no '/' in a name)."""
    if index % 2:
        return f'{index:02d} "q" <img src=x onerror=alert({index})>.png'
    return f"{index:02d} it's <b>bold & {SCRIPT[:8]}.png"


@dataclass(frozen=True)
class Hostile:
    """The strings the hostile comparison is built from, for tests to look for."""

    script: str = SCRIPT
    classes: tuple[str, ...] = tuple(HOSTILE_CLASSES)
    model: str = HOSTILE_MODEL

    def file_name(self, index: int) -> str:
        return hostile_file_name(index)


@pytest.fixture(scope="session")
def hostile() -> Hostile:
    return Hostile()


@pytest.fixture(scope="session")
def report_comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A comparison of the planted pair on 64 digits, with class names."""
    _, test = split_indices()
    data = shortcut_digits(test[:N_IMAGES], shortcut=False, seed=7)
    return imacs.compare(
        *planted_models(),
        data.images,
        data.labels,
        store=tmp_path_factory.mktemp("report-store"),
        class_names=[f"digit {k}" for k in range(10)],
        **FAST,
    )


@pytest.fixture(scope="session")
def report_file(report_comparison: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imacs.report.html import write_report

    # a small page size, so that the top cluster's panel has several pages
    path = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(report_comparison, path, progress=False, page_size=12)


@pytest.fixture(scope="session")
def bare_comparison(report_comparison: Any) -> Any:
    """The same images without labels, class names or any salient region."""
    images = report_comparison.images.copy()
    images["label"] = -1
    for column in ("correct_a", "correct_b"):
        images[column] = images[column].astype("boolean").mask(images["label"] < 0)
    return dataclasses.replace(
        report_comparison,
        images=images,
        regions=report_comparison.regions.iloc[0:0],
        clusters=report_comparison.clusters.iloc[0:0],
        classes=report_comparison.classes.iloc[0:0],
        dataset={**report_comparison.dataset, "class_names": None},
    )


@pytest.fixture(scope="session")
def hostile_comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """24 digits read from PNG files whose names, like the class names, are hostile HTML."""
    _, test = split_indices()
    data = shortcut_digits(test[:24], shortcut=False, seed=3)
    folder = tmp_path_factory.mktemp("hostile-images")
    for index, image in enumerate(data.images):
        pixels = np.round(image * 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / hostile_file_name(index))
    comparison = imacs.compare(
        *planted_models(),
        folder,
        data.labels,
        store=tmp_path_factory.mktemp("hostile-store"),
        class_names=HOSTILE_CLASSES,
        **FAST,
    )
    # model names come from adapters, which plugins write; treat them as hostile too
    comparison.models["a"]["name"] = HOSTILE_MODEL
    comparison.settings["method"]["params"]["note"] = SCRIPT
    return comparison


@pytest.fixture(scope="session")
def hostile_report(hostile_comparison: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from imacs.report.html import write_report

    path = tmp_path_factory.mktemp("hostile-report") / "report.html"
    return write_report(hostile_comparison, path, progress=False, title=f"{SCRIPT} title")


@pytest.fixture(scope="session")
def quality_comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two demo CNNs trained for one epoch, compared with gradient x input on 16 digits,
    with the deletion and randomisation measures: both models fail the sanity check."""
    torch = pytest.importorskip("torch")
    from imacs.demo.models import train_torch_cnn

    train = shortcut_digits(slice(0, 200), shortcut=False, seed=0)
    data = shortcut_digits(slice(600, 616), shortcut=False, seed=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks only wait on threads of a busy CPU
    try:
        models = [
            imacs.load_model(train_torch_cnn(train.images, train.labels, seed=s, epochs=1), name=n)
            for s, n in ((0, "first"), (1, "second"))
        ]
        return imacs.compare(
            *models,
            data.images,
            data.labels,
            method="gradient-times-input",
            quality=["deletion", "model-randomisation"],
            quality_params={"deletion": {"n_steps": 8}},
            quality_images=12,
            causal=None,
            spatial=False,
            n_clusters=3,
            n_permutations=200,
            store=tmp_path_factory.mktemp("quality-store"),
            progress=False,
        )
    finally:
        torch.set_num_threads(threads)
