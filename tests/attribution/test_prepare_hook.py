"""The ``prepare`` hook: the dataset key a method is given is computed only if it is read.

A throwaway plugin registers ``centred-input``, a method that learns: ``prepare`` keeps
the mean image of the dataset per model, and each map is the image times that mean, so
the maps show which dataset the method learnt from (and an unprepared call fails).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import imacs
from imacs import store as store_module
from imacs.adapters.base import ModelAdapter
from imacs.attribute_folder import attribute_folder
from imacs.attribution import AttributionMethod, AttributionResult, DatasetView
from imacs.data.folder import ImageFolder
from imacs.errors import InvalidInputError
from imacs.plugins import PluginHost
from imacs.store import Store, array_digest, make_key
from imacs.testing import softplus_model

SHAPE = (8, 8, 3)


class CentredInput(AttributionMethod):
    """The image times the mean image of the dataset ``prepare`` saw for the model."""

    name = "centred-input"
    requires: ClassVar[frozenset[str]] = frozenset()

    #: (model fingerprint, number of images, dataset key) of every prepare call, in order
    prepared: ClassVar[list[tuple[str, int, str]]] = []

    def __init__(self) -> None:
        self._means: dict[str, np.ndarray] = {}

    def prepare(
        self,
        model: ModelAdapter,
        data: DatasetView,
        *,
        batch_size: int = 32,
        store: Store | None = None,
    ) -> str:
        CentredInput.prepared.append((model.fingerprint(), len(data), data.key))
        self._means[model.fingerprint()] = data.images(np.arange(len(data))).mean(axis=0)
        return make_key(self.name, model.fingerprint(), data.key)

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        mean = self._means.get(model.fingerprint())
        if mean is None:
            raise InvalidInputError(f"{self.name} was not prepared for {model.fingerprint()}")
        return AttributionResult(images * mean, self.name, self.get_params())


class Plugin:
    @imacs.hookimpl
    def register_attribution_methods(self, register: Callable[[type], None]) -> None:
        register(CentredInput)


@pytest.fixture
def centred_input(imacs_host: PluginHost) -> Iterator[None]:
    imacs_host.register(Plugin(), name="centred-input-plugin")
    CentredInput.prepared.clear()
    yield
    CentredInput.prepared.clear()


def images(seed: int, n: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


def dataset_key(pictures: np.ndarray) -> str:
    """The key a comparison gives these images (``DatasetView.key``)."""
    return make_key("dataset", [array_digest(image) for image in pictures])


# -- the dataset key is computed only when a method reads it ---------------------------


@pytest.fixture
def digested(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shapes of the arrays ``imacs.store.array_digest`` digests from now on."""
    shapes: list[tuple[int, ...]] = []

    def counting(array: np.ndarray) -> str:
        shapes.append(np.shape(array))
        return array_digest(array)

    monkeypatch.setattr(store_module, "array_digest", counting)
    return shapes


def test_a_dataset_view_digests_its_images_on_the_first_read_of_its_key_only(
    digested: list[tuple[int, ...]],
) -> None:
    pictures = images(4)
    view = DatasetView.from_arrays(pictures, [0] * 6)
    assert len(view) == 6 and view.images([1, 2]).shape == (2, *SHAPE)
    assert digested == []
    assert view.key == dataset_key(pictures)
    assert view.key == dataset_key(pictures)
    assert digested == [SHAPE] * 6
    # given as text, as a comparison does, it is that text
    assert DatasetView("a key", np.zeros(6), lambda index: pictures[index]).key == "a key"


def folder_of(pictures: np.ndarray) -> ImageFolder:
    return ImageFolder(pictures, [f"{i}.png" for i in range(len(pictures))])


def test_imacs_attribute_does_not_digest_the_images_for_a_method_that_learns_nothing(
    digested: list[tuple[int, ...]], tmp_path: Path
) -> None:
    pictures = images(5)
    run = attribute_folder(
        softplus_model(SHAPE),
        folder_of(pictures),
        tmp_path,
        method="gradient",
        params={},
        targets=np.zeros(6, dtype=np.int64),
        batch_size=4,
    )
    assert run.computed == 6
    assert SHAPE not in digested


def test_imacs_attribute_gives_a_method_that_reads_it_the_right_key(
    centred_input: None, tmp_path: Path
) -> None:
    pictures = images(6)
    model = softplus_model(SHAPE)
    attribute_folder(
        model,
        folder_of(pictures),
        tmp_path,
        method="centred-input",
        params={},
        targets=np.zeros(6, dtype=np.int64),
        batch_size=4,
        chunk=4,
    )
    manifest = json.loads((tmp_path / "attributions.json").read_text())
    key = dataset_key(pictures)
    assert CentredInput.prepared == [(model.fingerprint(), 6, key)]
    assert manifest["settings"]["learnt"] == make_key("centred-input", model.fingerprint(), key)
