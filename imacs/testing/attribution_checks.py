"""The conformance suite for attribution methods.

``check_attribution_method`` is to an attribution method what ``check_model_adapter`` is
to an adapter: run it on your method, a model and a few images, and it raises one
``AssertionError`` listing every way the method departs from the contract:

- maps are finite float32 with the images' shape;
- results do not depend on ``batch_size`` (1, 7 and one large batch agree);
- two identical calls give identical maps, and the caller's arrays are left alone;
- no model call ever receives more than ``batch_size`` inputs (checked through a
  :class:`RecordingAdapter`);
- targets out of range and too few targets raise ``InvalidInputError``;
- every capability in ``requires`` is used: a method that declares ``"gradients"`` (the
  default of :class:`~imacs.AttributionMethod`) must ask the model for gradients, and a
  forward-only method must set ``requires = frozenset()``, or it would be refused by
  forward-only models (a ``FunctionAdapter`` without ``gradient_fn``, black boxes);
- optionally, for path methods, completeness: ``sum(map) ~ F(x) - F(x')`` within
  ``completeness_rtol``, and the reported ``convergence_delta`` equals the actual error.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.errors import InvalidInputError
from imacs.testing.reporting import run_checks

#: a check: (method, model, images, targets) -> None, raising AssertionError
AttributionCheck = Callable[[AttributionMethod, ModelAdapter, np.ndarray, np.ndarray], None]

#: the batch sizes whose results must agree; the last one is "everything in one call"
BATCH_SIZES = (1, 7, 4096)


class RecordingAdapter(ModelAdapter):
    """Wraps an adapter and records the most inputs the model received in one call.

    Every call is passed on to the wrapped adapter unchanged, in one piece, so the sizes
    recorded are exactly those a method asked for. ``used`` holds the capabilities that
    were called (``"gradients"``, ``"layers"``, ``"embedding"``, ``"injection"``,
    ``"vjp"``). ``largest_batch``, ``calls`` and ``used`` can be reset with :meth:`reset`.
    """

    name = "recording"
    framework = "any"

    def __init__(self, adapter: ModelAdapter):
        super().__init__(target=adapter.target)
        self.adapter = adapter
        self.capabilities = adapter.capabilities
        self._image_shape = adapter._image_shape
        self._num_classes = adapter.num_classes
        self.largest_batch = 0
        self.calls = 0
        self.used: set[str] = set()

    def reset(self) -> None:
        """Forget what was recorded so far."""
        self.largest_batch = 0
        self.calls = 0
        self.used = set()

    def _record(self, n: int) -> None:
        self.largest_batch = max(self.largest_batch, n)
        self.calls += 1

    def _predict(self, images: np.ndarray) -> Any:
        self._record(len(images))
        return self.adapter.predict(images, batch_size=len(images))

    def _scores(self, images: np.ndarray, targets: np.ndarray) -> Any:
        self._record(len(images))
        return self.adapter.scores(images, targets, batch_size=len(images))

    def _value_and_gradients(self, images: np.ndarray, targets: np.ndarray) -> tuple[Any, Any]:
        self._record(len(images))
        self.used.add("gradients")
        return self.adapter.value_and_gradients(images, targets, batch_size=len(images))

    def fingerprint(self) -> str:
        return self.adapter.fingerprint()

    def layer_names(self) -> list[str]:
        return self.adapter.layer_names()

    def parameter_layers(self) -> list[str]:
        return self.adapter.parameter_layers()

    def randomised_copy(self, layers: Any, *, seed: int = 0) -> RecordingAdapter:
        """The wrapped adapter's randomised copy, recorded into this adapter's counts."""
        self.used.add("randomise")
        copy = RecordingAdapter(self.adapter.randomised_copy(layers, seed=seed))
        copy.used = self.used
        copy._record = self._record  # type: ignore[method-assign]
        return copy

    def default_layer(self, images: Any) -> str | None:
        return self.adapter.default_layer(images)

    def _layer_activations(
        self, inputs: np.ndarray, layer: str, from_layer: str | None
    ) -> np.ndarray:
        self._record(len(inputs))
        self.used.add("injection")
        return self.adapter.layer_activations(
            inputs, layer, from_layer=from_layer, batch_size=len(inputs)
        )

    def _injected_gradients(
        self, activations: np.ndarray, targets: np.ndarray, layer: str
    ) -> tuple[Any, Any]:
        self._record(len(activations))
        self.used.add("injection")
        return self.adapter.injected_gradients(
            activations, targets, layer, batch_size=len(activations)
        )

    def _output_vjp(self, images: np.ndarray, weights: np.ndarray) -> tuple[Any, Any]:
        self._record(len(images))
        self.used.add("vjp")
        return self.adapter.output_vjp(images, weights, batch_size=len(images))

    def _chunk(self, images: Any, batch_size: int | None) -> int:
        n = len(images)
        size = min(n, batch_size or self.batch_size or n)
        for start in range(0, n, size):
            self._record(min(size, n - start))
        return size

    def layer_gradients(
        self, images: Any, targets: Any, layer: str, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        size = self._chunk(images, batch_size)
        self.used.add("layers")
        return self.adapter.layer_gradients(images, targets, layer, batch_size=size)

    def embed(
        self, images: Any, *, layer: str | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        size = self._chunk(images, batch_size)
        self.used.add("embedding")
        return self.adapter.embed(images, layer=layer, batch_size=size)


def _scale(*arrays: np.ndarray) -> float:
    return max(max(float(np.abs(a).max()) for a in arrays), 1e-12)


def _attribute(
    method: AttributionMethod,
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int = BATCH_SIZES[-1],
) -> AttributionResult:
    result = method.attribute(model, images, targets, batch_size=batch_size)
    assert isinstance(result, AttributionResult), (
        f"attribute returned {type(result).__name__}; expected an AttributionResult"
    )
    return result


def check_output(
    method: AttributionMethod, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
) -> None:
    """Maps are finite float32 with the images' shape, labelled with the method's name."""
    result = _attribute(method, model, images, targets)
    maps = np.asarray(result.maps)
    assert maps.shape == images.shape, (
        f"maps have shape {maps.shape}; expected the images' shape {images.shape}"
    )
    assert maps.dtype == np.float32, f"maps have dtype {maps.dtype}; expected float32"
    assert np.isfinite(maps).all(), "maps contain NaN or infinity"
    assert result.method == method.name, (
        f"result.method is {result.method!r}; expected the method's name {method.name!r}"
    )
    if result.convergence_delta is not None:
        delta = np.asarray(result.convergence_delta)
        assert delta.shape == (len(images),), (
            f"convergence_delta has shape {delta.shape}; expected one value per image "
            f"({len(images)},)"
        )


def check_batch_size_invariance(
    method: AttributionMethod,
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    rtol: float = 1e-4,
) -> None:
    """``batch_size`` 1, 7 and one large batch give the same maps (within ``rtol``)."""
    results = {bs: _attribute(method, model, images, targets, bs).maps for bs in BATCH_SIZES}
    reference = results[BATCH_SIZES[-1]]
    for bs, maps in results.items():
        error = float(np.abs(maps - reference).max())
        assert error <= rtol * _scale(maps, reference), (
            f"maps with batch_size={bs} differ from batch_size={BATCH_SIZES[-1]} by up to "
            f"{error:.3g} (largest value {_scale(reference):.3g}): results must not depend "
            "on how the work is split; draw random numbers per image, not per batch"
        )


def check_determinism(
    method: AttributionMethod, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
) -> None:
    """Two identical calls give identical maps; the caller's arrays are not modified."""
    images_before, targets_before = images.copy(), targets.copy()
    first = _attribute(method, model, images, targets, 7).maps
    assert np.array_equal(images, images_before), "the method modified the caller's images"
    assert np.array_equal(targets, targets_before), "the method modified the caller's targets"
    second = _attribute(method, model, images, targets, 7).maps
    assert np.array_equal(first, second), (
        "two identical calls gave different maps: take randomness from a seed parameter"
    )


def check_respects_batch_size(
    method: AttributionMethod, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
) -> None:
    """No model call receives more than ``batch_size`` inputs."""
    recorder = RecordingAdapter(model)
    for bs in BATCH_SIZES[:2]:
        recorder.reset()
        _attribute(method, recorder, images, targets, bs)
        assert recorder.largest_batch <= bs, (
            f"with batch_size={bs} the model received {recorder.largest_batch} inputs in "
            "one call: batch_size bounds every model call, whatever the method multiplies "
            "(steps x images x samples); see imacs.attribution.paths.evaluate_points"
        )


def check_bad_targets(
    method: AttributionMethod, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
) -> None:
    """Targets out of range, or too few, raise ``InvalidInputError``."""
    cases: dict[str, Any] = {
        "a target out of range": np.full(len(images), 10**6),
        "a negative target": np.full(len(images), -1),
        "too few targets": targets[:-1] if len(targets) > 1 else np.zeros(0, dtype=np.int64),
    }
    for what, bad in cases.items():
        try:
            method.attribute(model, images, bad, batch_size=7)
        except InvalidInputError:
            continue
        except Exception as exc:
            raise AssertionError(
                f"{what}: raised {type(exc).__name__} ({exc}); expected InvalidInputError"
            ) from exc
        raise AssertionError(f"{what}: no error raised; expected InvalidInputError")


def check_requirements_are_used(
    method: AttributionMethod, model: ModelAdapter, images: np.ndarray, targets: np.ndarray
) -> None:
    """Every capability the method declares in ``requires`` is one it calls.

    ``AttributionMethod.requires`` defaults to ``{"gradients"}``; a forward-only method
    that keeps the default passes every other check on a model with gradients, and is
    then refused by every forward-only model. (A wrapper whose needs depend on the method
    it wraps declares nothing and lets the wrapped method ask; that is not checked here.)
    """
    recorder = RecordingAdapter(model)
    _attribute(method, recorder, images, targets, 7)
    unused = sorted(set(method.requires) - recorder.used)
    if "gradients" in unused:
        raise AssertionError(
            f"the method declares requires={sorted(method.requires)} but never asked the model "
            "for gradients: a forward-only method sets requires = frozenset(), so that it "
            "runs on forward-only models (a FunctionAdapter without gradient_fn, black boxes)"
        )
    assert not unused, (
        f"the method declares requires={sorted(method.requires)} but never used {unused}: "
        "declare only the capabilities the method calls"
    )


def _baseline_batches(baselines: Any, images: np.ndarray) -> list[np.ndarray]:
    specs = list(baselines) if isinstance(baselines, list | tuple) else [baselines]
    return [np.broadcast_to(np.asarray(b, dtype=np.float32), images.shape) for b in specs]


def check_completeness(
    method: AttributionMethod,
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    baselines: Any = 0.0,
    rtol: float = 1e-4,
    completeness_rtol: float = 1e-2,
) -> None:
    """``sum(map) = F(x) - F(x')`` within ``completeness_rtol``; ``convergence_delta`` agrees.

    ``baselines``: the baseline the method integrates from (a number or an array
    broadcastable to the images), or a list of them when the method averages over several;
    ``F(x')`` is then the mean of their scores.
    """
    result = _attribute(method, model, images, targets)
    f_x = model.scores(images, targets).astype(np.float64)
    f_baseline = np.mean(
        [model.scores(b, targets).astype(np.float64) for b in _baseline_batches(baselines, images)],
        axis=0,
    )
    change = f_x - f_baseline
    error = result.maps.reshape(len(images), -1).astype(np.float64).sum(axis=1) - change
    floor = 1e-6 * (1.0 + np.abs(f_x))  # where F(x) ~ F(x'), relative error means nothing
    for i in range(len(images)):
        assert abs(error[i]) <= completeness_rtol * abs(change[i]) + floor[i], (
            f"image {i}: sum of the map is {error[i] + change[i]:.6g} but F(x) - F(x') is "
            f"{change[i]:.6g} (error {error[i]:.3g}, allowed {completeness_rtol:g} of it): "
            "more steps, or a path from the given baseline"
        )
    assert result.convergence_delta is not None, (
        "a path method should report convergence_delta (sum(map) - (F(x) - F(x'))) per image"
    )
    delta = np.asarray(result.convergence_delta, dtype=np.float64)
    for i in range(len(images)):
        assert abs(delta[i] - error[i]) <= rtol * abs(change[i]) + floor[i], (
            f"image {i}: convergence_delta is {delta[i]:.6g} but sum(map) - (F(x) - F(x')) "
            f"is {error[i]:.6g}"
        )


ATTRIBUTION_CHECKS: tuple[AttributionCheck, ...] = (
    check_output,
    check_batch_size_invariance,
    check_determinism,
    check_respects_batch_size,
    check_bad_targets,
    check_requirements_are_used,
)


def check_attribution_method(
    method: AttributionMethod,
    model: ModelAdapter,
    images: Any,
    targets: Any,
    *,
    completeness: bool = False,
    baselines: Any = 0.0,
    rtol: float = 1e-4,
    completeness_rtol: float = 1e-2,
) -> None:
    """Run every attribution check; raise one ``AssertionError`` listing all failures.

    Use a small model and 2-4 small images with valid targets: the method runs about ten
    times, once with ``batch_size=1``. The model should offer every capability the method
    declares in ``requires``; a forward-only method is best checked on a model with
    gradients too, which is how a wrongly declared ``"gradients"`` is caught.

    ``rtol`` bounds differences that should be float rounding only (batch sizes,
    ``convergence_delta``), relative to the largest value. ``completeness=True`` (path
    methods: IG and its relatives) also checks ``sum(map) = F(x) - F(baseline)`` within
    ``completeness_rtol``, with ``baselines`` the baseline(s) the method integrates from
    (a number, an array broadcastable to the images, or a list of them when the method
    averages over several); use a smooth model and enough steps.
    """
    images = np.ascontiguousarray(images, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.int64).reshape(-1)
    options: dict[Any, dict[str, Any]] = {check_batch_size_invariance: {"rtol": rtol}}
    checks = [
        (check.__name__, partial(check, method, model, images, targets, **options.get(check, {})))
        for check in ATTRIBUTION_CHECKS
    ]
    if completeness:
        checks.append(
            (
                check_completeness.__name__,
                partial(
                    check_completeness,
                    method,
                    model,
                    images,
                    targets,
                    baselines=baselines,
                    rtol=rtol,
                    completeness_rtol=completeness_rtol,
                ),
            )
        )
    run_checks(f"attribution method {method.name!r}", checks)
