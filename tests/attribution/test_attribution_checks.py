"""The attribution conformance suite passes good methods and names what is wrong with bad ones."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.attribution.gradient import Gradient
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.testing import RecordingAdapter, check_attribution_method, softplus_model
from imacs.testing.attribution_checks import check_completeness


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)


TARGETS = np.array([0, 1, 2, 3])


class IgnoresBatchSize(AttributionMethod):
    name = "ignores-batch-size"

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        return AttributionResult(model.gradients(images, targets), self.name)


class Random(AttributionMethod):
    name = "random"

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        noise = np.random.default_rng().normal(size=images.shape)
        return AttributionResult(
            model.gradients(images, targets, batch_size=batch_size) + noise, self.name
        )


class WrongShape(AttributionMethod):
    name = "wrong-shape"

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        grads = model.gradients(images, targets, batch_size=batch_size)
        return AttributionResult(grads.sum(axis=-1, keepdims=True), self.name)


class ModifiesInputs(AttributionMethod):
    name = "modifies-inputs"

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        images *= 1.0001  # the validated array may be the caller's own
        return AttributionResult(model.gradients(images, targets, batch_size=batch_size), self.name)


class DependsOnBatchSize(AttributionMethod):
    name = "depends-on-batch-size"

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        grads = model.gradients(images, targets, batch_size=batch_size)
        return AttributionResult(grads * min(batch_size, 8), self.name)


class LyingDelta(IntegratedGradients):
    """IG that reports no completeness error at all."""

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        result = super()._attribute(model, images, targets, batch_size)
        result.convergence_delta = np.zeros(len(images))
        return result


def failures_of(method: AttributionMethod, images: np.ndarray, **options: object) -> str:
    with pytest.raises(AssertionError) as info:
        check_attribution_method(method, softplus_model(), images, TARGETS, **options)  # type: ignore[arg-type]
    return str(info.value)


def test_good_methods_pass(images: np.ndarray) -> None:
    check_attribution_method(Gradient(), softplus_model(), images, TARGETS)
    check_attribution_method(
        IntegratedGradients(n_steps=16), softplus_model(), images, TARGETS, completeness=True
    )


def test_catches_a_method_that_ignores_batch_size(images: np.ndarray) -> None:
    message = failures_of(IgnoresBatchSize(), images)
    assert "check_respects_batch_size" in message
    assert "with batch_size=1 the model received 4 inputs in one call" in message


def test_catches_a_random_method(images: np.ndarray) -> None:
    message = failures_of(Random(), images)
    assert "check_determinism: two identical calls gave different maps" in message
    assert "check_batch_size_invariance" in message


def test_catches_wrong_shapes(images: np.ndarray) -> None:
    message = failures_of(WrongShape(), images)
    assert "check_output" in message and "returned maps of shape (4, 8, 8, 1)" in message


def test_catches_a_method_that_modifies_its_inputs(images: np.ndarray) -> None:
    assert "modified the caller's images" in failures_of(ModifiesInputs(), images)


def test_catches_batch_size_dependence(images: np.ndarray) -> None:
    message = failures_of(DependsOnBatchSize(), images)
    assert "maps with batch_size=1 differ from batch_size=4096" in message
    assert "check_determinism" not in message  # deterministic, just batch-dependent


def test_catches_incompleteness_and_a_wrong_convergence_delta(images: np.ndarray) -> None:
    few_steps = failures_of(
        IntegratedGradients(n_steps=1, quadrature="riemann_left"), images, completeness=True
    )
    assert "check_completeness: image 0: sum of the map" in few_steps
    lying = failures_of(
        LyingDelta(n_steps=16, quadrature="riemann_left"),
        images,
        completeness=True,
        completeness_rtol=0.1,  # a coarse rule passes a loose bound, but its error is real
    )
    assert "convergence_delta is 0 but" in lying


def test_completeness_uses_the_given_baselines(images: np.ndarray) -> None:
    model = softplus_model()
    method = IntegratedGradients(n_steps=16, baselines=["black", "white"])
    check_completeness(method, model, images, TARGETS, baselines=[0.0, 1.0])
    with pytest.raises(AssertionError, match="F\\(x\\) - F\\(x'\\)"):
        check_completeness(method, model, images, TARGETS, baselines=0.0)


def test_reports_all_failures_at_once(images: np.ndarray) -> None:
    message = failures_of(IgnoresBatchSize(), images, completeness=True)
    assert "fails 2 conformance check(s)" in message  # batch size, and no convergence_delta
    assert "check_respects_batch_size" in message and "check_completeness" in message


def test_recording_adapter_records_the_largest_call(images: np.ndarray) -> None:
    recorder = RecordingAdapter(softplus_model())
    recorder.gradients(images, TARGETS, batch_size=3)
    assert recorder.largest_batch == 3 and recorder.calls >= 2
    recorder.reset()
    recorder.scores(images, TARGETS)
    assert recorder.largest_batch == 4 and recorder.calls == 1
    np.testing.assert_array_equal(
        recorder.gradients(images, TARGETS), softplus_model().gradients(images, TARGETS)
    )
