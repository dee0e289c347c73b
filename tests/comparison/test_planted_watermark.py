"""Acceptance check on a second planted case, across frameworks: a watermark shortcut.

Model B is trained on scikit-image textures (brick, grass, gravel; ``imacs.demo.watermark``)
whose gravel images, and only those, carry a 9x9 watermark; model A on the same textures
with the watermark on a random half of the images. On held-out textures with random
watermarks the top-ranked cluster must be the watermark: most of its pixels inside the
watermark, at least 70% of the watermark's pixels among salient regions, B > A,
significant and meaningful, in at least 9 of 10 seeds. Once with A in PyTorch and B in
Keras, once the other way round. The comparison runs at its defaults but for the cost
settings below.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

import imacs
from imacs.testing.planted import top_cluster_is_planted

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

SEEDS = range(10)
N_TRAIN = 600
#: with 8 or 12 epochs the small CNN often fails to learn the shortcut at all (a PyTorch B
#: trained on 600 images for 12 epochs predicted gravel on 35% of marked images for one
#: seed): then there is nothing to find. With 24 epochs the weakest B, over both
#: frameworks and 10 seeds, still predicts gravel on 65% of them
EPOCHS = 24
N_TEST = 150
#: cheaper than the defaults where that does not change what is tested: the causal check
#: runs after the ranking and does not change it
SETTINGS = {
    "method_params": {"n_steps": 16},
    "n_permutations": 1000,
    "causal": None,
    "progress": False,
}


@cache
def trained(framework: str, shortcut: bool, seed: int) -> Any:
    from imacs.demo.models import train_keras_cnn, train_torch_cnn
    from imacs.demo.watermark import watermarked_textures

    data = watermarked_textures(N_TRAIN, shortcut_class=2 if shortcut else None, seed=seed)
    train = train_torch_cnn if framework == "torch" else train_keras_cnn
    return train(data.images, data.labels, seed=seed, epochs=EPOCHS)


@cache
def held_out(seed: int) -> Any:
    from imacs.demo.watermark import watermarked_textures

    return watermarked_textures(N_TEST, seed=1000 + seed)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("store"))


@pytest.mark.parametrize(("framework_a", "framework_b"), [("torch", "keras"), ("keras", "torch")])
def test_the_watermark_is_the_top_cluster_in_nine_of_ten_seeds(
    store: str, framework_a: str, framework_b: str
) -> None:
    from imacs.demo.watermark import watermark_mask

    found, seen = [], []
    for seed in SEEDS:
        data = held_out(seed)
        model_a = trained(framework_a, shortcut=False, seed=seed)
        model_b = trained(framework_b, shortcut=True, seed=seed)
        comparison = imacs.compare(
            model_a, model_b, data.images, data.labels, store=store, **SETTINGS
        )
        # the watermark's pixels on the images that carry it, none on the others
        mask = data.marked[:, None, None] & watermark_mask()[None]
        is_planted, line = top_cluster_is_planted(comparison, mask)
        found.append(is_planted)
        seen.append(f"seed {seed}: {line}")
    assert sum(found) >= 9, f"found in {sum(found)} of 10 seeds:\n" + "\n".join(seen)
