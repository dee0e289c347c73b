"""A comparison checks itself: each broken setup raises its alert, a sound one raises none.

The broken setups are the ones users hit: images in 0-255 fed to a model trained on
0-1 with no preprocessing, a model B whose classes are numbered in another order, a
model that guesses, and Integrated Gradients with too few steps. Each runs as a whole
comparison of small NumPy models on the demo digits (about a second each).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import imacs
from imacs.adapters.function import FunctionAdapter
from imacs.adapters.preprocessing import Preprocessing
from imacs.comparison import alerts
from imacs.comparison.alerts import Alert, find_alerts
from imacs.comparison.result import Comparison
from imacs.demo.data import N_CLASSES, shortcut_digits, split_indices
from imacs.errors import InvalidInputError
from imacs.testing.planted import _templates, planted_models

N_IMAGES = 96
FAST = {"method_params": {"n_steps": 8}, "n_permutations": 200, "progress": False}

Function = Callable[[np.ndarray], np.ndarray]
Gradient = Callable[[np.ndarray, np.ndarray], np.ndarray]


class PreprocessedAdapter(FunctionAdapter):
    """A NumPy model behind declared preprocessing, described as the torch and Keras
    adapters describe theirs: the functions see the preprocessed pixels."""

    def __init__(
        self, function: Function, gradient: Gradient, *, preprocessing: Any = None, **options: Any
    ):
        self.preprocessing = Preprocessing.coerce(preprocessing)
        scale = np.float32(self.preprocessing.scale)
        super().__init__(
            lambda x: function(self.preprocessing.apply(x)),
            lambda x, t: gradient(self.preprocessing.apply(x), t) * scale,
            **options,
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "preprocessing": self.preprocessing.as_dict()}

    def fingerprint(self) -> str:
        return f"{super().fingerprint()}:{self.preprocessing.as_dict()}"


@pytest.fixture(scope="module")
def data() -> Any:
    _, test = split_indices()
    return shortcut_digits(test[:N_IMAGES], shortcut=False, seed=7)


@pytest.fixture(scope="module")
def templates() -> np.ndarray:
    return _templates(0)


@pytest.fixture(scope="module")
def planted() -> tuple[FunctionAdapter, FunctionAdapter]:
    return planted_models()


def bright_model(templates: np.ndarray, preprocessing: Any = None) -> PreprocessedAdapter:
    """The planted templates plus a term in the squared mean brightness.

    On the 0-1 digits the brightness term is small and the templates decide; on 0-255
    pixels it outgrows them and one class wins every image, as a network trained on 0-1
    input does when its activations blow up.
    """
    weights = 5.0 * np.arange(N_CLASSES)
    n_pixels = templates[0].size

    def function(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float64)
        brightness = x.mean(axis=(1, 2, 3))
        logits = np.einsum("nhwc,khwc->nk", x, templates) + weights * brightness[:, None] ** 2
        return logits.astype(np.float32)

    def gradient(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        brightness = x.astype(np.float64).mean(axis=(1, 2, 3))
        slope = 2 * weights[t] * brightness / n_pixels
        return (templates[t] + slope[:, None, None, None]).astype(np.float32)

    return PreprocessedAdapter(
        function, gradient, preprocessing=preprocessing, fingerprint="bright-templates"
    )


def saturating_model(templates: np.ndarray) -> FunctionAdapter:
    """Steep tanh of the template scores (plus a small linear part that keeps their order).

    Along the path from black the tanh rises within the first few percent of the way, so
    a coarse quadrature misses most of the score change.
    """

    def scores(x: np.ndarray) -> np.ndarray:
        return np.einsum("nhwc,khwc->nk", x.astype(np.float64), templates) / 0.5

    def function(x: np.ndarray) -> np.ndarray:
        z = scores(x)
        return (10 * np.tanh(z) + 0.005 * z).astype(np.float32)

    def gradient(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        z = scores(x)[np.arange(len(t)), t]
        slope = (20 * (1 - np.tanh(z) ** 2) + 0.01)[:, None, None, None]
        return (slope * templates[t]).astype(np.float32)

    return FunctionAdapter(function, gradient, fingerprint="saturating-templates")


def renumbered(model: FunctionAdapter, order: np.ndarray) -> FunctionAdapter:
    """``model`` with its outputs in another order: output ``j`` is ``model``'s ``order[j]``."""
    return FunctionAdapter(
        lambda x: model.predict(x)[:, order],
        lambda x, t: model.gradients(x, order[t]),
        fingerprint=f"renumbered-{order.tolist()}",
    )


def guessing_model(templates: np.ndarray) -> FunctionAdapter:
    """Random templates: outputs that depend on the image but not on its digit."""
    noise = np.random.default_rng(1).normal(size=templates.shape) * np.abs(templates).mean()
    return FunctionAdapter(
        lambda x: np.einsum("nhwc,khwc->nk", x.astype(np.float64), noise).astype(np.float32),
        lambda x, t: np.broadcast_to(noise[t], x.shape).astype(np.float32),
        fingerprint="random-templates",
    )


def codes(comparison: Any) -> set[str]:
    return {alert.code for alert in comparison.alerts}


def alert(comparison: Any, code: str) -> Alert:
    return next(a for a in comparison.alerts if a.code == code)


# -- sound comparisons raise nothing ------------------------------------------------------


def test_the_planted_pair_raises_no_alert(data: Any, planted: Any, tmp_path: Path) -> None:
    result = imacs.compare(*planted, data.images, data.labels, store=tmp_path, **FAST)
    assert result.alerts == []
    assert "alert" not in repr(result)


@pytest.mark.torch
@pytest.mark.tensorflow
def test_the_demo_raises_no_alert(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, process = demo_run
    assert process.returncode == 0, process.stderr[-3000:]
    assert json.loads((out / "comparison.json").read_text())["alerts"] == []
    assert Comparison.load(out).alerts == []
    for code in alerts.CHECKS:
        assert f"[{code}]" not in process.stderr + process.stdout


# -- each broken setup raises its alert ---------------------------------------------------


def test_0_255_images_without_preprocessing_are_an_error(
    data: Any, templates: np.ndarray, planted: Any, tmp_path: Path
) -> None:
    images = data.images * 255
    linear = planted[0]  # a linear model ranks classes alike at any scale: B stays accurate
    result = imacs.compare(
        bright_model(templates), linear, images, data.labels, store=tmp_path, **FAST
    )
    assert codes(result) >= {"input-range", "chance-accuracy"}
    found = alert(result, "input-range")
    assert found.severity == "error"  # A is at chance as well
    assert "0 to 255" in found.message.replace("0.0003124", "0")
    assert "preprocessing={'scale': 1/255}" in found.message
    assert set(alert(result, "chance-accuracy").details) == {"a"}

    fixed = imacs.compare(
        bright_model(templates, preprocessing={"scale": 1 / 255}),
        linear,
        images,
        data.labels,
        store=tmp_path,
        **FAST,
    )
    assert not codes(fixed) & {"input-range", "chance-accuracy"}


@pytest.mark.torch
def test_a_torch_model_given_0_255_images_without_preprocessing_is_flagged(
    data: Any, planted: Any, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    # untrained: what the check reads is the adapter's description, not the weights
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(3600, 10)
    )
    images, labels = data.images[:40] * 255, data.labels[:40]
    bare = imacs.compare(
        imacs.load_model(module), planted[0], images, labels, store=tmp_path, **FAST
    )
    found = alert(bare, "input-range")
    assert "Model A (pytorch) receives values from" in found.message
    assert "preprocessing={'scale': 1/255}" in found.message
    scaled = imacs.load_model(module, preprocessing={"scale": 1 / 255})
    fixed = imacs.compare(scaled, planted[0], images, labels, store=tmp_path, **FAST)
    assert "input-range" not in codes(fixed)


def test_images_scaled_twice_are_flagged(
    data: Any, templates: np.ndarray, planted: Any, tmp_path: Path
) -> None:
    twice = bright_model(templates, preprocessing={"scale": 1 / 255})
    result = imacs.compare(twice, planted[0], data.images, data.labels, store=tmp_path, **FAST)
    found = alert(result, "input-range")
    assert "scaled twice" in found.message and found.severity == "warning"


def test_classes_in_another_order_are_named_with_the_mapping_that_fixes_them(
    data: Any, planted: Any, tmp_path: Path
) -> None:
    order = np.roll(np.arange(N_CLASSES), 3)  # B's output j is A's class order[j]
    model_b = renumbered(planted[0], order)
    result = imacs.compare(planted[0], model_b, data.images, data.labels, store=tmp_path, **FAST)
    found = alert(result, "class-permutation")
    assert found.severity == "error"
    mapping = {int(a): int(b) for a, b in found.details["class_mapping"].items()}
    assert mapping == {int(order[j]): j for j in range(N_CLASSES)}
    assert found.details["agreement"] == 0 and found.details["permuted_agreement"] == 1
    assert "class_mapping={0: 3, 1: 4, 2: 5," in found.message
    assert "b" in alert(result, "chance-accuracy").details  # B scored against A's labels

    fixed = imacs.compare(
        planted[0],
        model_b,
        data.images,
        data.labels,
        class_mapping=mapping,
        store=tmp_path,
        **FAST,
    )
    assert fixed.alerts == []
    assert fixed.summary()["agreement"] == 1


def test_a_model_that_guesses_is_at_chance(
    data: Any, templates: np.ndarray, planted: Any, tmp_path: Path
) -> None:
    result = imacs.compare(
        planted[0], guessing_model(templates), data.images, data.labels, store=tmp_path, **FAST
    )
    found = alert(result, "chance-accuracy")
    assert found.severity == "error"
    assert set(found.details) == {"b"}
    assert found.details["b"]["p_value"] >= alerts.CHANCE_P_VALUE
    assert "Model B" in found.message and "Model A" not in found.message


def test_two_step_integrated_gradients_has_not_converged(
    data: Any, templates: np.ndarray, planted: Any, tmp_path: Path
) -> None:
    model = saturating_model(templates)
    coarse = {**FAST, "method_params": {"n_steps": 2}}
    result = imacs.compare(model, planted[0], data.images, data.labels, store=tmp_path, **coarse)
    assert codes(result) == {"convergence"}
    found = alert(result, "convergence")
    assert set(found.details) == {"tolerance", "a"}  # the linear B is exact at any step count
    assert found.details["a"]["share"] > 0.5
    assert "n_steps (now 2)" in found.message
    deltas = result.images["convergence_delta_a"]
    assert (deltas > alerts.CONVERGENCE_TOLERANCE).mean() == found.details["a"]["share"]
    assert (result.images["convergence_delta_b"] < 1e-4).all()

    # a resumed run computes nothing and still knows every map's delta
    again = imacs.compare(model, planted[0], data.images, data.labels, store=tmp_path, **coarse)
    assert again.work == {"attributed_a": 0, "attributed_b": 0}
    pd.testing.assert_series_equal(again.images["convergence_delta_a"], deltas)
    assert codes(again) == {"convergence"}

    fine = {**FAST, "method_params": {"n_steps": 32}}
    converged = imacs.compare(model, planted[0], data.images, data.labels, store=tmp_path, **fine)
    assert converged.alerts == []


def test_adaptive_integrated_gradients_is_told_to_lower_its_tolerance_or_raise_max_steps(
    data: Any, templates: np.ndarray, planted: Any, tmp_path: Path
) -> None:
    params = {"n_steps": "auto", "quadrature": "trapezoid", "tolerance": 100.0, "max_steps": 8}
    coarse = {**FAST, "method_params": params}
    model = saturating_model(templates)
    result = imacs.compare(model, planted[0], data.images, data.labels, store=tmp_path, **coarse)
    found = alert(result, "convergence")
    assert "lower tolerance (now 100.0) or raise max_steps (now 8)" in found.message


def test_methods_without_a_delta_leave_the_column_empty(
    data: Any, planted: Any, tmp_path: Path
) -> None:
    result = imacs.compare(
        *planted,
        data.images[:40],
        data.labels[:40],
        method="gradient",
        store=tmp_path,
        **{**FAST, "method_params": None},
    )
    assert result.images["convergence_delta_a"].isna().all()
    assert "convergence" not in codes(result)


def test_a_white_baseline_outside_the_images_range_is_flagged(
    data: Any, planted: Any, tmp_path: Path
) -> None:
    images = data.images * 255
    settings = {**FAST, "method_params": {"n_steps": 8, "baselines": ["black", "white"]}}
    result = imacs.compare(planted[0], planted[0], images, data.labels, store=tmp_path, **settings)
    found = alert(result, "method-pixel-range")
    assert "'pixel_range': (0, 255)" in found.message
    black = imacs.compare(planted[0], planted[0], images, data.labels, store=tmp_path, **FAST)
    assert "method-pixel-range" not in codes(black)  # black is 0 in either range


def test_few_images_and_small_clusters(data: Any, planted: Any, tmp_path: Path) -> None:
    few = imacs.compare(*planted, data.images[:12], data.labels[:12], store=tmp_path, **FAST)
    assert alert(few, "few-images").details == {"n_images": 12, "minimum": alerts.MIN_IMAGES}

    many = imacs.compare(
        *planted, data.images[:40], data.labels[:40], n_clusters=12, store=tmp_path, **FAST
    )
    found = alert(many, "small-clusters")
    small = many.clusters[many.clusters["n_images"] < alerts.MIN_CLUSTER_IMAGES]
    assert set(found.details["clusters"]) >= {str(c) for c in small["cluster"]}
    assert "few-images" not in codes(many)


def test_checks_can_be_turned_off_and_unknown_codes_are_refused(
    data: Any, planted: Any, tmp_path: Path
) -> None:
    images, labels = data.images[:12], data.labels[:12]
    quiet = imacs.compare(
        *planted,
        images,
        labels,
        ignore_alerts=["few-images", "small-clusters"],
        store=tmp_path,
        **FAST,
    )
    assert not codes(quiet) & {"few-images", "small-clusters"}
    assert quiet.settings["ignore_alerts"] == ["few-images", "small-clusters"]
    with pytest.raises(InvalidInputError, match="few-images"):
        imacs.compare(*planted, images, labels, ignore_alerts=["few_images"], store=tmp_path)


def test_alerts_are_saved_and_loaded_with_the_comparison(
    data: Any, planted: Any, tmp_path: Path
) -> None:
    result = imacs.compare(
        *planted, data.images[:12], data.labels[:12], store=tmp_path / "store", **FAST
    )
    assert result.alerts
    result.save(tmp_path / "out", report=False, figures=False)
    meta = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [a["code"] for a in meta["alerts"]] == [a.code for a in result.alerts]
    loaded = Comparison.load(tmp_path / "out")
    assert loaded.alerts == result.alerts
    assert find_alerts(loaded) == result.alerts  # the checks read only what is saved


# -- the thresholds, on hand-made tables ---------------------------------------------------


def table_comparison(
    pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray | None = None
) -> Comparison:
    n = len(pred_a)
    labels = np.full(n, -1) if labels is None else labels
    known = labels >= 0
    images = pd.DataFrame(
        {
            "image": np.arange(n),
            "label": labels,
            "pred_a": pred_a,
            "pred_b": pred_b,
            "correct_a": pd.array(np.where(known, pred_a == labels, False), dtype="boolean"),
            "correct_b": pd.array(np.where(known, pred_b == labels, False), dtype="boolean"),
            "agree": pred_a == pred_b,
        }
    )
    empty = pd.DataFrame({"cluster": [], "n_images": []})
    return Comparison(
        clusters=empty,
        regions=pd.DataFrame(),
        images=images,
        classes=pd.DataFrame(),
        models={"a": {"num_classes": 10}, "b": {"num_classes": 10}},
    )


def test_a_large_dataset_does_not_make_a_barely_better_model_sound() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 20_000)
    good = np.where(rng.random(labels.size) < 0.9, labels, (labels + 1) % 10)
    # 14% right against 10% chance: significant with 20,000 images, still useless
    barely = np.where(rng.random(labels.size) < 0.045, labels, rng.integers(0, 10, labels.size))
    found = alerts.check_chance_accuracy(table_comparison(good, barely, labels))
    assert found is not None and set(found.details) == {"b"}
    assert found.details["b"]["p_value"] < 1e-6


def test_a_renumbering_fitted_to_few_images_is_not_taken_for_one() -> None:
    rng = np.random.default_rng(0)
    fired = 0
    for _ in range(20):
        # two unrelated 10-class models on 20 images: a fitted renumbering often agrees
        # on half of them, more than twice the agreement as numbered
        unrelated = table_comparison(rng.integers(0, 10, 20), rng.integers(0, 10, 20))
        fired += alerts.check_class_permutation(unrelated) is not None
    assert fired == 0
    order = np.roll(np.arange(10), 1)
    pred_a = rng.integers(0, 10, 20)
    assert alerts.check_class_permutation(table_comparison(pred_a, order[pred_a])) is not None


def test_an_alert_has_a_known_severity() -> None:
    with pytest.raises(InvalidInputError, match="severity"):
        Alert("few-images", "info", "?")
    alert = Alert("few-images", "warning", "twelve images", {"n_images": 12})
    assert Alert.from_dict(alert.as_dict()) == alert
    assert str(alert) == "warning [few-images]: twelve images"


def test_a_failing_check_warns_and_the_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(comparison: Any) -> Alert | None:
        raise KeyError("num_classes")

    monkeypatch.setitem(alerts.CHECKS, "chance-accuracy", broken)
    order = np.roll(np.arange(10), 1)
    pred_a = np.random.default_rng(0).integers(0, 10, 40)
    with pytest.warns(RuntimeWarning, match="'chance-accuracy' check failed"):
        found = find_alerts(table_comparison(pred_a, order[pred_a]))
    assert [a.code for a in found] == ["class-permutation"]


# -- the sanity check reads the quality table ------------------------------------------


def _with_quality(rows: list[dict[str, Any]]) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(
        quality=pd.DataFrame(rows),
        settings={"method": "gradient-times-input"},
        models={"a": {"name": "clean"}, "b": {}},
    )


def test_maps_that_survive_randomisation_are_flagged() -> None:
    rows = [
        {"side": "a", "measure": "model-randomisation", "mode": "cascading",
         "similarity": "spearman_abs", "mean": 0.54},
        {"side": "b", "measure": "model-randomisation", "mode": "cascading",
         "similarity": "spearman_abs", "mean": 0.09},
        {"side": "b", "measure": "model-randomisation", "mode": "cascading",
         "similarity": "ssim", "mean": 0.9},
        {"side": "b", "measure": "insertion", "mean": 0.9},
    ]  # fmt: skip
    found = alerts.check_sanity(_with_quality(rows))
    assert found is not None and found.code == "sanity-check"
    assert "clean (0.54)" in found.message and "model B" not in found.message
    assert "say more about the method than about the models" in found.message
    assert found.details["similarity"] == {"a": 0.54}
    rows[0]["mean"] = 0.2
    assert alerts.check_sanity(_with_quality(rows)) is None
    assert alerts.check_sanity(_with_quality([])) is None
