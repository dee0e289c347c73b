"""The ``prepare`` hook: methods that wrap another prepare it, and the dataset key is lazy.

A throwaway plugin registers ``centred-input``, a method that learns: ``prepare`` keeps
the mean image of the dataset per model, and each map is the image times that mean, so
the maps show which dataset the method learnt from (and an unprepared call fails).
SmoothGrad, VarGrad and XRAI wrap it, by name or as an instance.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import imacs
from imacs import store as store_module
from imacs.adapters.base import ModelAdapter
from imacs.attribute_folder import attribute_folder
from imacs.attribution import AttributionMethod, AttributionResult, DatasetView
from imacs.attribution.smoothgrad import SmoothGrad, VarGrad
from imacs.attribution.xrai import XRAI
from imacs.data.folder import ImageFolder
from imacs.errors import InvalidInputError
from imacs.plugins import PluginHost
from imacs.segmentation.grid import Grid
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


#: wrappers of ``centred-input``: the wrapper given the method's name, or given a method
WRAPPERS: dict[str, Callable[[Any], AttributionMethod]] = {
    "smoothgrad": lambda base: SmoothGrad(base_method=base, n_samples=3, stdev_spread=0.1),
    "vargrad": lambda base: VarGrad(base_method=base, n_samples=3, stdev_spread=0.1),
    "xrai": lambda base: XRAI(
        base_attribution=CentredInput() if base == "centred-input" else base,
        segments=Grid(rows=2, cols=2),
        min_pixel_diff=1,
    ),
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_a_wrapper_prepares_the_method_it_wraps_and_attributes_with_it(
    wrapper: str, centred_input: None
) -> None:
    models = [softplus_model(SHAPE, seed=seed) for seed in (0, 1)]
    learnt_from, other = images(1), images(2)
    targets = np.zeros(len(learnt_from), dtype=np.int64)
    data = DatasetView.from_arrays(learnt_from, targets)
    wrapping = WRAPPERS[wrapper]("centred-input")
    with pytest.raises(InvalidInputError, match="not prepared"):
        wrapping.attribute(models[0], other[:2], [0, 0])

    keys = [wrapping.prepare(model, data) for model in models]
    # the wrapped method's own key, per model
    expected_keys = [
        make_key("centred-input", m.fingerprint(), dataset_key(learnt_from)) for m in models
    ]
    assert keys == expected_keys
    assert CentredInput.prepared == [
        (m.fingerprint(), len(learnt_from), dataset_key(learnt_from)) for m in models
    ]
    for model in models:
        # the same maps as the wrapper of a method prepared directly, for both models
        prepared = CentredInput()
        prepared.prepare(model, data)
        expected = WRAPPERS[wrapper](prepared).attribute(model, other, [0] * 6).maps
        np.testing.assert_array_equal(wrapping.attribute(model, other, [0] * 6).maps, expected)
    assert len(CentredInput.prepared) == 4  # attributing prepared nothing again


def test_a_given_instance_is_the_one_prepared_and_a_method_that_learns_nothing_gives_none(
    centred_input: None,
) -> None:
    model = softplus_model(SHAPE)
    data = DatasetView.from_arrays(images(1), [0] * 6)
    base = CentredInput()
    smoothed = SmoothGrad(base_method=base, n_samples=2)
    assert smoothed.prepare(model, data) is not None
    assert smoothed.wrapped_method() is base and model.fingerprint() in base._means
    assert SmoothGrad().prepare(model, data) is None
    assert VarGrad(base_method="integrated-gradients").prepare(model, data) is None
    assert XRAI().prepare(model, data) is None
    assert XRAI(base_attribution=np.zeros((6, *SHAPE))).prepare(model, data) is None


def test_a_wrapper_built_from_a_name_keeps_its_instance_until_the_name_changes(
    centred_input: None,
) -> None:
    smoothed = SmoothGrad(base_method="centred-input")
    first = smoothed.wrapped_method()
    assert smoothed.wrapped_method() is first
    smoothed.base_method = "gradient"
    assert smoothed.wrapped_method().name == "gradient"


def test_a_comparison_prepares_the_wrapped_method_once_per_model_on_the_whole_dataset(
    centred_input: None, tmp_path: Path
) -> None:
    pictures = images(3, n=8)
    model_a, model_b = (
        imacs.load_model(softplus_model(SHAPE, seed=seed), name=name)
        for seed, name in ((0, "a"), (1, "b"))
    )
    comparison = imacs.compare(
        model_a,
        model_b,
        pictures,
        np.arange(8) % 4,
        method="smoothgrad",
        method_params={"base_method": "centred-input", "n_samples": 2},
        segmenter="grid",
        segmenter_params={"rows": 2, "cols": 2},
        causal=None,
        spatial=False,
        n_permutations=100,
        store=tmp_path,
        progress=False,
    )
    # on all eight images, under the comparison's dataset key (DatasetView.from_arrays's)
    key = dataset_key(pictures)
    assert CentredInput.prepared == [
        (model_a.fingerprint(), 8, key),
        (model_b.fingerprint(), 8, key),
    ]
    stored = Store(tmp_path)
    for side, model in (("a", model_a), ("b", model_b)):
        smoothed = SmoothGrad(base_method="centred-input", n_samples=2, seed=0)
        smoothed.prepare(model, DatasetView.from_arrays(pictures, np.arange(8) % 4))
        maps = [stored.load("attributions", k) for k in comparison.images[f"map_key_{side}"]]
        np.testing.assert_allclose(
            np.stack(maps), smoothed.attribute(model, pictures, [0] * 8).maps
        )


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
