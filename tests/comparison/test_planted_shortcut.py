"""The acceptance checks of the comparison on trained networks.

Planted shortcut: model B is trained on digits whose corner patch shade encodes the label,
model A on the same digits with random shades; on test digits with random shades the
top-ranked cluster must be the patch, with B > A, significant, in at least 9 of 10 seeds.
The top cluster must also hold at least 70% of the patch's pixels among salient regions
and be meaningful (at least ``min_effect``). Seed-twins, two models trained alike but for
the seed, must show no meaningful cluster in 9 of 10 pairs. Differences are shares of
each image's L1-normalised attribution. Each model explains its own prediction.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

import imacs
from imacs.demo.data import PATCH, shortcut_digits, split_indices
from imacs.testing.planted import patch_share, planted_coverage

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")

SEEDS = range(10)
PATCH_MASK = np.zeros((32, 32), dtype=bool)
PATCH_MASK[:PATCH, :PATCH] = True
N_TEST = 200
SETTINGS = {
    "method_params": {"n_steps": 16},
    "n_permutations": 500,
    "progress": False,
    "targets": "own",
}


@cache
def trained(seed: int, shortcut: bool, model_seed: int) -> Any:
    from imacs.demo.models import train_torch_cnn

    train, _ = split_indices()
    data = shortcut_digits(train, shortcut=shortcut, seed=seed)
    return train_torch_cnn(data.images, data.labels, seed=model_seed)


@cache
def held_out(seed: int) -> Any:
    _, test = split_indices()
    return shortcut_digits(test[:N_TEST], shortcut=False, seed=1000 + seed)


@cache
def planted(seed: int, store: str) -> Any:
    data = held_out(seed)
    model_a = trained(seed, shortcut=False, model_seed=seed)
    model_b = trained(seed, shortcut=True, model_seed=seed)
    return imacs.compare(model_a, model_b, data.images, data.labels, store=store, **SETTINGS)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("store"))


def test_the_planted_shortcut_is_found_in_nine_of_ten_seeds(store: str) -> None:
    found = []
    for seed in SEEDS:
        comparison = planted(seed, store)
        top = comparison.clusters.iloc[0]
        cluster = int(top["cluster"])
        found.append(
            patch_share(comparison, cluster) > 0.5
            and planted_coverage(comparison, cluster, PATCH_MASK) >= 0.7
            and top["difference"] > 0
            and bool(top["significant"])
            and bool(top["meaningful"])
        )
    assert sum(found) >= 9, f"found in {sum(found)} of {len(found)} seeds: {found}"


def test_seed_twins_show_no_meaningful_cluster_in_nine_of_ten_pairs(store: str) -> None:
    # benchmarks/seed_twins.py measured the twins' largest difference at 0.104 and the
    # planted pair's smallest at 0.271 over these seeds; min_effect (0.15) sits between
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
