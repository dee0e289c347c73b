"""The conformance kit for segmenters, clusterers and declared capabilities, on the
built-ins (which must pass it) and on components broken on purpose (which must not)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import imacs
from imacs.errors import (
    InvalidInputError,
    PluginError,
    PluginLoadWarning,
    UnknownComponentError,
)
from imacs.testing import (
    check_attribution_method,
    check_clusterer,
    check_segmenter,
    softplus_model,
)


def segment_images() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    square = np.zeros((24, 24, 3), dtype=np.float32)
    square[6:14, 8:18] = (0.9, 0.2, 0.1)
    return [square + 0.05 * rng.random(square.shape, dtype=np.float32), rng.random((20, 28, 3))]


@pytest.mark.parametrize("name", imacs.component_names("segmenter"))
def test_builtin_segmenters_pass_the_kit(name: str) -> None:
    check_segmenter(imacs.get_component("segmenter", name), segment_images())


class FloatLabels(imacs.Segmenter):
    name = "float-labels"

    def _segment(self, image: np.ndarray) -> np.ndarray:
        return image[..., 0] * 3.0  # floats that segment() would quietly round into regions


class Restless(imacs.Segmenter):
    name = "restless"

    def __init__(self) -> None:
        self._calls = 0

    def _segment(self, image: np.ndarray) -> np.ndarray:
        self._calls += 1
        labels = np.zeros(image.shape[:2], dtype=np.int32)
        labels[:, self._calls % image.shape[1] :] = 1
        return labels


@pytest.mark.parametrize(
    ("segmenter", "failure"),
    [(FloatLabels(), "dtype float"), (Restless(), "two calls gave different labels")],
)
def test_kit_rejects_float_labels_and_nondeterministic_segmenters(
    segmenter: imacs.Segmenter, failure: str
) -> None:
    with pytest.raises(AssertionError, match=failure):
        check_segmenter(segmenter, segment_images())


def blob_features() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    return np.concatenate([c + 0.3 * rng.standard_normal((12, 2)) for c in centres])


@pytest.mark.parametrize(
    ("name", "params"),
    [("kmeans", {"k_range": (2, 5), "n_init": 2, "n_jobs": 1}), ("agglomerative", {})],
)
def test_builtin_clusterers_pass_the_kit(name: str, params: dict[str, Any]) -> None:
    check_clusterer(imacs.get_component("clusterer", name, **params), blob_features())


class CoinFlips(imacs.Clusterer):
    name = "coin-flips"

    def _fit_predict(self, features: np.ndarray, seed: int) -> np.ndarray:
        return np.random.default_rng().integers(0, 3, len(features))  # ignores the seed


def test_kit_rejects_a_clusterer_that_ignores_its_seed() -> None:
    with pytest.raises(AssertionError, match="determinism"):
        check_clusterer(CoinFlips(), blob_features())


class ForwardOnlyMasking(imacs.AttributionMethod):
    """Occlusion of one pixel row at a time: forward passes only."""

    name = "row-masking"

    def _attribute(self, model, images, targets, batch_size):  # type: ignore[no-untyped-def]
        base = model.scores(images, targets, batch_size=batch_size)
        maps = np.zeros_like(images)
        for row in range(images.shape[1]):
            masked = images.copy()
            masked[:, row] = 0
            drop = base - model.scores(masked, targets, batch_size=batch_size)
            maps[:, row] = drop[:, None, None]
        return imacs.AttributionResult(maps, self.name, self.get_params())


class DeclaredForwardOnly(ForwardOnlyMasking):
    requires = frozenset()


def test_kit_catches_a_forward_only_method_that_keeps_the_gradients_default() -> None:
    images = np.random.default_rng(1).random((3, 8, 8, 3), dtype=np.float32)
    with pytest.raises(AssertionError, match="never asked the model for gradients"):
        check_attribution_method(ForwardOnlyMasking(), softplus_model(), images, [0, 1, 2])
    check_attribution_method(DeclaredForwardOnly(), softplus_model(), images, [0, 1, 2])


def test_get_component_creates_by_kind_and_name() -> None:
    slic = imacs.get_component("segmenter", "slic", n_segments=12)
    assert isinstance(slic, imacs.Segmenter) and slic.n_segments == 12
    assert isinstance(imacs.get_component("clusterer", "kmeans"), imacs.Clusterer)
    assert "cosine" in imacs.component_names("metric")
    with pytest.raises(UnknownComponentError, match=r"no segmenter named 'slick'.*'slic'"):
        imacs.get_component("segmenter", "slick")
    with pytest.raises(InvalidInputError, match="unknown component kind 'segmenters'"):
        imacs.get_component("segmenters", "slic")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="does not take parameter"):
        imacs.get_component("segmenter", "slic", colour=1)


LAZY_PLUGIN = """
    import imacs

    @imacs.hookimpl
    def register_segmenters(register):
        register("imacs_lazy_parts:Stripes", name="stripes")
        register("imacs_lazy_parts:Missing", name="missing")
"""

LAZY_PARTS = """
    import numpy as np
    import imacs

    class Stripes(imacs.Segmenter):
        name = "stripes"

        def _segment(self, image):
            return np.arange(image.shape[1])[None, :].repeat(image.shape[0], 0) // 2
"""


def test_a_class_registered_by_reference_is_imported_when_first_used(install_plugin) -> None:
    site = install_plugin("imacs-lazy", LAZY_PLUGIN)
    (site / "imacs_lazy_parts.py").write_text(textwrap.dedent(LAZY_PARTS))
    sys.modules.pop("imacs_lazy_parts", None)
    infos = {info.name: info for info in imacs.get_plugins()}
    assert infos["imacs-lazy"].components == {"segmenter": ["missing", "stripes"]}
    assert "imacs_lazy_parts" not in sys.modules  # listing imported nothing
    labels = imacs.get_component("segmenter", "stripes").segment(np.zeros((2, 4, 3)))
    assert labels.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    with (
        pytest.raises(PluginError, match=r"imacs-lazy.*'imacs_lazy_parts:Missing'.*cannot be"),
        pytest.warns(PluginLoadWarning, match="imacs skips this plugin"),
    ):
        imacs.get_component("segmenter", "missing")
    # a plugin is removed whole, as when its registration hook fails
    assert "stripes" not in imacs.component_names("segmenter")
    sys.modules.pop("imacs_lazy_parts", None)


def test_listing_plugins_imports_no_framework() -> None:
    code = (
        "import sys, imacs; imacs.get_plugins(); "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    assert out.strip() == "[]"


def test_compare_creates_the_clusterer_through_the_registry(imacs_host) -> None:
    from imacs.comparison.compare import _clusterer

    class Halving(imacs.Clusterer):
        name = "halving"

        def __init__(self, *, axis: int = 0):
            self.axis = axis

        def _fit_predict(self, features: np.ndarray, seed: int) -> np.ndarray:
            return (features[:, self.axis] > np.median(features[:, self.axis])).astype(int)

    class Plugin:
        @imacs.hookimpl
        def register_clusterers(self, register):  # type: ignore[no-untyped-def]
            register(Halving)

    imacs_host.register(Plugin(), name="halving-plugin")
    made = _clusterer("halving", {"axis": 1}, None)
    assert isinstance(made, Halving) and made.axis == 1
    assert _clusterer("kmeans", None, 4).n_clusters == 4  # type: ignore[attr-defined]
    assert _clusterer("agglomerative", None, None).n_clusters == 12  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="not to both"):
        _clusterer("kmeans", {"n_clusters": 3}, 4)
    with pytest.raises(InvalidInputError, match="'halving' does not take parameter"):
        _clusterer("halving", None, 4)
