"""POS/NEG perturbation AUC and ADP/PIC equal the LTX reference's formulas, written here."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import auc

import imacs
from imacs.testing import check_quality_measure


def probabilities(model, images):
    z = model.predict(images).astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("name", "sign"), [("positive-perturbation", 1), ("negative-perturbation", -1)]
)
def test_perturbation_auc_equals_the_reference_loop(
    name, sign, toy_model, toy_images, toy_targets, toy_maps
):
    result = imacs.get_component("measure", name).evaluate(
        toy_model, toy_images, toy_targets, toy_maps, batch_size=7
    )
    for i, (image, target) in enumerate(zip(toy_images, toy_targets, strict=True)):
        saliency = sign * toy_maps[i].sum(axis=-1).reshape(-1)
        correct = [float(np.argmax(toy_model.predict(image[None])[0]) == target)]
        for step in np.arange(0.1, 1.0, 0.1):
            kept = image.reshape(64, 3).copy()
            kept[np.argsort(-saliency, kind="stable")[: int(64 * step)]] = 0
            correct.append(
                float(np.argmax(toy_model.predict(kept.reshape(1, 8, 8, 3))[0]) == target)
            )
        assert result.scores[i] == pytest.approx(auc(np.arange(0, 1, 0.1), correct) * 100)


def test_adp_and_pic_equal_the_reference_formulas(toy_model, toy_images, toy_targets, toy_maps):
    summed = toy_maps.sum(axis=-1, keepdims=True)
    low = summed.min(axis=(1, 2, 3), keepdims=True)
    scaled = (summed - low) / ((summed - low).max(axis=(1, 2, 3), keepdims=True) + 1e-7)
    rows = np.arange(8)
    p = probabilities(toy_model, toy_images)[rows, toy_targets]
    p_m = probabilities(toy_model, (toy_images * scaled).astype(np.float32))[rows, toy_targets]
    adp = imacs.get_component("measure", "adp").evaluate(
        toy_model, toy_images, toy_targets, toy_maps
    )
    pic = imacs.get_component("measure", "pic").evaluate(
        toy_model, toy_images, toy_targets, toy_maps
    )
    assert adp.mean == pytest.approx(float((np.maximum(p - p_m, 0) / p).mean() * 100), rel=1e-5)
    assert pic.mean == pytest.approx(float((p_m > p).mean() * 100))


@pytest.mark.parametrize("name", ["positive-perturbation", "negative-perturbation", "adp", "pic"])
def test_passes_the_conformance_check(name, toy_model, toy_images, toy_targets, toy_maps):
    measure = imacs.get_component("measure", name)
    check_quality_measure(measure, toy_model, toy_images, toy_targets, toy_maps)
