"""The acceptance checks of the comparison on trained networks.

Planted shortcut: model B is trained on digits whose corner patch shade encodes the label,
model A on the same digits with random shades; on test digits with random shades the
top-ranked cluster must be the patch, with B > A, significant, in at least 9 of 10 seeds,
once with A in PyTorch and B in Keras and once the other way round. The top cluster must
also hold at least 70% of the patch's pixels among salient regions and be meaningful (at
least ``min_effect``). Seed-twins, two PyTorch models trained alike but for the seed, must
show no meaningful cluster in 9 of 10 pairs. Differences are shares of each image's
L1-normalised attribution. Each model explains its own prediction.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

import imacs
from imacs.demo.data import PATCH, shortcut_digits, split_indices
from imacs.testing.planted import top_cluster_is_planted

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

SEEDS = range(10)
PATCH_MASK = np.zeros((32, 32), dtype=bool)
PATCH_MASK[:PATCH, :PATCH] = True
N_TEST = 200
SETTINGS = {
    "method_params": {"n_steps": 16},
    "n_permutations": 500,
    "progress": False,
    # the causal check runs after the ranking and does not change it
    "causal": None,
}


@cache
def trained(seed: int, shortcut: bool, model_seed: int, framework: str = "torch") -> Any:
    from imacs.demo.models import train_keras_cnn, train_torch_cnn

    train, _ = split_indices()
    data = shortcut_digits(train, shortcut=shortcut, seed=seed)
    fit = train_torch_cnn if framework == "torch" else train_keras_cnn
    return fit(data.images, data.labels, seed=model_seed)


@cache
def held_out(seed: int) -> Any:
    _, test = split_indices()
    return shortcut_digits(test[:N_TEST], shortcut=False, seed=1000 + seed)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("store"))


@pytest.mark.parametrize(("framework_a", "framework_b"), [("torch", "keras"), ("keras", "torch")])
def test_the_planted_shortcut_is_found_in_nine_of_ten_seeds(
    store: str, framework_a: str, framework_b: str
) -> None:
    found, seen = [], []
    for seed in SEEDS:
        data = held_out(seed)
        model_a = trained(seed, shortcut=False, model_seed=seed, framework=framework_a)
        model_b = trained(seed, shortcut=True, model_seed=seed, framework=framework_b)
        comparison = imacs.compare(
            model_a, model_b, data.images, data.labels, store=store, **SETTINGS
        )
        is_planted, line = top_cluster_is_planted(comparison, PATCH_MASK)
        found.append(is_planted)
        seen.append(f"seed {seed}: {line}")
    assert sum(found) >= 9, f"found in {sum(found)} of 10 seeds:\n" + "\n".join(seen)


def test_the_shortcut_is_found_as_often_when_k_means_fits_on_a_sample(store: str) -> None:
    # the models of the test above, and its maps when it ran first: only the final
    # fit differs, its restarts on 150 of the ~1,000 regions and then Lloyd over all
    found, seen = [], []
    for seed in SEEDS:
        data = held_out(seed)
        model_a = trained(seed, shortcut=False, model_seed=seed, framework="torch")
        model_b = trained(seed, shortcut=True, model_seed=seed, framework="keras")
        comparison = imacs.compare(
            model_a,
            model_b,
            data.images,
            data.labels,
            store=store,
            clusterer_params={"fit_sample": 150},
            **SETTINGS,
        )
        is_planted, line = top_cluster_is_planted(comparison, PATCH_MASK)
        found.append(is_planted)
        seen.append(f"seed {seed}: {line}")
    assert sum(found) >= 9, f"found in {sum(found)} of 10 seeds:\n" + "\n".join(seen)


def test_seed_twins_show_no_meaningful_cluster_in_nine_of_ten_pairs(store: str) -> None:
    # benchmarks/planted_clusters.py measures the twins' largest difference over these
    # seeds at 0.113 and the planted pairs' smallest at 0.153 or more (across
    # frameworks); min_effect (0.15) sits between
    quiet = []
    for seed in SEEDS:
        data = held_out(seed)
        model_a = trained(seed, shortcut=False, model_seed=seed)
        twin = trained(seed, shortcut=False, model_seed=seed + 100)
        noise = imacs.compare(model_a, twin, data.images, data.labels, store=store, **SETTINGS)
        quiet.append(not noise.clusters["meaningful"].any())
    assert sum(quiet) >= 9, f"no meaningful cluster in {sum(quiet)} of 10 pairs: {quiet}"


def test_a_network_compared_with_itself_has_no_significant_cluster(store: str) -> None:
    data = held_out(0)
    model = trained(0, shortcut=False, model_seed=0)
    same = imacs.compare(model, model, data.images, data.labels, store=store, **SETTINGS)
    assert (same.clusters["difference"] == 0).all()
    assert not same.clusters["significant"].any()
    assert not same.clusters["meaningful"].any()
