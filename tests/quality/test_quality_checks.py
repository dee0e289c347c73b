"""The quality-measure kind: registration, the result type, and the conformance check."""

from __future__ import annotations

import numpy as np
import pytest

import imacs
from imacs.errors import InvalidInputError
from imacs.quality.base import QualityMeasure, QualityResult, bootstrap_interval, image_rng
from imacs.testing import check_quality_measure


class MeanScore(QualityMeasure):
    """A well-behaved toy: the target probability of the image times its noisy map mean."""

    name = "toy-mean-score"

    def _evaluate(self, model, images, targets, maps, method, seed, batch_size):
        outputs = model.predict(images, batch_size=batch_size)
        noise = np.array([image_rng(seed, i).normal() for i in range(len(images))])
        return self.result(outputs[np.arange(len(images)), targets] + 0.01 * noise)


class BatchDependent(MeanScore):
    """Broken: normalises each model call's outputs by that call's mean."""

    name = "toy-batch-dependent"

    def _evaluate(self, model, images, targets, maps, method, seed, batch_size):
        parts = []
        for start in range(0, len(images), batch_size):
            out = model.predict(images[start : start + batch_size], batch_size=batch_size)
            parts.append(out - out.mean())
        outputs = np.concatenate(parts)
        return self.result(outputs[np.arange(len(images)), targets])


class Nondeterministic(MeanScore):
    """Broken: draws noise from an unseeded generator."""

    name = "toy-nondeterministic"

    def _evaluate(self, model, images, targets, maps, method, seed, batch_size):
        outputs = model.predict(images, batch_size=batch_size)
        noise = np.random.default_rng().normal(size=len(images))
        return self.result(outputs[np.arange(len(images)), targets] + noise)


class NeedsMethod(MeanScore):
    name = "toy-needs-method"
    needs_method = True


def test_a_well_behaved_measure_passes(toy_model, toy_images, toy_targets, toy_maps):
    check_quality_measure(MeanScore(), toy_model, toy_images, toy_targets, toy_maps)


@pytest.mark.parametrize(
    ("measure", "failing"),
    [
        (BatchDependent(), "batch_size_does_not_matter"),
        (Nondeterministic(), "determinism"),
    ],
)
def test_the_check_catches_a_broken_measure(
    measure, failing, toy_model, toy_images, toy_targets, toy_maps
):
    with pytest.raises(AssertionError, match=failing):
        check_quality_measure(measure, toy_model, toy_images, toy_targets, toy_maps)


def test_a_measure_that_needs_the_method_refuses_to_run_without(
    toy_model, toy_images, toy_targets, toy_maps
):
    with pytest.raises(InvalidInputError, match="needs the attribution method"):
        NeedsMethod().evaluate(toy_model, toy_images, toy_targets, toy_maps)
    method = imacs.get_method("gradient")
    check_quality_measure(
        NeedsMethod(), toy_model, toy_images, toy_targets, toy_maps, method=method
    )


def test_maps_of_another_shape_are_refused(toy_model, toy_images, toy_targets, toy_maps):
    with pytest.raises(InvalidInputError, match="expected maps of shape"):
        MeanScore().evaluate(toy_model, toy_images, toy_targets, toy_maps[:, :4])


def test_single_channel_maps_are_accepted(toy_model, toy_images, toy_targets, toy_maps):
    result = MeanScore().evaluate(toy_model, toy_images, toy_targets, toy_maps.sum(axis=3))
    assert result.scores.shape == (8,)


def test_built_ins_are_registered_as_the_measure_kind():
    names = imacs.component_names("measure")
    assert {"insertion", "deletion"} <= set(names)
    measure = imacs.get_component("measure", "deletion", n_steps=4)
    assert isinstance(measure, QualityMeasure) and measure.n_steps == 4
    builtin = {info.name: info for info in imacs.get_plugins()}
    assert builtin["imacs.quality.insertion_deletion"].components == {
        "measure": ["deletion", "insertion"]
    }


def test_a_plugin_registers_a_measure_through_its_entry_point(install_plugin):
    install_plugin(
        "imacs-toy-measure",
        """
        import imacs
        from imacs.quality.base import QualityMeasure

        class Constant(QualityMeasure):
            name = "constant-one"

            def _evaluate(self, model, images, targets, maps, method, seed, batch_size):
                return self.result([1.0] * len(images))

        @imacs.hookimpl
        def register_quality_measures(register):
            register(Constant)
        """,
    )
    assert "constant-one" in imacs.component_names("measure")
    assert imacs.get_component("measure", "constant-one").name == "constant-one"


def test_the_interval_is_a_percentile_bootstrap_of_the_mean():
    scores = np.random.default_rng(0).normal(size=200)
    low, high = bootstrap_interval(scores)
    standard_error = scores.std(ddof=1) / np.sqrt(len(scores))
    assert low < scores.mean() < high
    assert high - low == pytest.approx(2 * 1.96 * standard_error, rel=0.1)
    assert bootstrap_interval([0.5]) == (0.5, 0.5)
    result = QualityResult("x", np.array([1.0, 2.0, 3.0]), higher_is_better=True)
    summary = result.summary()
    assert summary["mean"] == 2.0 and summary["n_images"] == 3
    assert 1.0 <= summary["ci_low"] <= 2.0 <= summary["ci_high"] <= 3.0
