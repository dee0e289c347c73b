"""Per-cluster statistics: planted differences, the image bootstrap, the paired test, BH."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from imacs.comparison.statistics import (
    CLUSTER_TABLE_COLUMNS,
    benjamini_hochberg,
    class_table,
    cluster_table,
)
from imacs.errors import InvalidInputError


def make_regions(
    *,
    n_images: int = 40,
    n_clusters: int = 4,
    regions_per_image: int = 6,
    planted: int | None = None,
    delta: float = 0.0,
    noise: float = 0.01,
    seed: int = 0,
) -> pd.DataFrame:
    """A regions table; cluster ``planted`` gets B - A = ``delta`` on average, others 0.

    Every image adds one shared shift to all its regions' differences, so regions of one
    image are correlated, as they are in a real comparison.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for image in range(n_images):
        image_shift = rng.normal(0.0, noise)
        correct_a = bool(rng.random() < 0.7)
        for region in range(regions_per_image):
            cluster = int(rng.integers(n_clusters))
            mass_a = rng.normal(0.05, 0.02)
            difference = image_shift + rng.normal(0.0, noise)
            if cluster == planted:
                difference += delta
            rows.append(
                {
                    "image": image,
                    "region": region,
                    "cluster": cluster,
                    "area": 100,
                    "mass_a": mass_a,
                    "mass_b": mass_a + difference,
                    "selected_by": str(rng.choice(["a", "b", "both"])),
                    "label": image % 3,
                    "correct_a": correct_a,
                    "correct_b": True,
                }
            )
    table = pd.DataFrame(rows)
    table["difference"] = table["mass_b"] - table["mass_a"]
    table["correct_a"] = table["correct_a"].astype("boolean")
    table["correct_b"] = table["correct_b"].astype("boolean")
    return table


def per_image_means(regions: pd.DataFrame, cluster: int) -> np.ndarray:
    """Per-image mean of mass_b - mass_a in one cluster, computed with pandas."""
    members = regions[regions["cluster"] == cluster]
    d = members["mass_b"] - members["mass_a"]
    return d.groupby(members["image"]).mean().sort_index().to_numpy()


def row(table: pd.DataFrame, cluster: int) -> pd.Series:
    return table.set_index("cluster").loc[cluster]


# ---------------------------------------------------------------- Benjamini-Hochberg


def textbook_bh(p: np.ndarray) -> np.ndarray:
    """q_i = min over j with p_j >= p_i of min(1, m p_j / rank_j), one p at a time."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    rank = np.empty(m, dtype=int)
    rank[order] = np.arange(1, m + 1)
    q = np.empty(m)
    for i in range(m):
        q[i] = min(min(1.0, m * p[j] / rank[j]) for j in range(m) if rank[j] >= rank[i])
    return q


def test_benjamini_hochberg_equals_the_textbook_formula() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 50):
        p = rng.random(size) ** 3  # skewed towards 0, as p-values of real effects are
        np.testing.assert_allclose(benjamini_hochberg(p), textbook_bh(p), rtol=1e-12)


def test_benjamini_hochberg_known_examples() -> None:
    np.testing.assert_allclose(
        benjamini_hochberg([0.01, 0.04, 0.03, 0.005]), [0.02, 0.04, 0.04, 0.02]
    )
    # R: p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "BH") is 0.05 everywhere
    np.testing.assert_allclose(benjamini_hochberg([0.01, 0.02, 0.03, 0.04, 0.05]), [0.05] * 5)
    np.testing.assert_allclose(benjamini_hochberg([0.9, 0.8]), [0.9, 0.9])


def test_benjamini_hochberg_is_monotone_capped_and_passes_nan() -> None:
    p = np.array([0.2, np.nan, 0.001, 0.7, 0.99, np.nan, 0.04])
    q = benjamini_hochberg(p)
    assert np.isnan(q[[1, 5]]).all()
    known = ~np.isnan(p)
    np.testing.assert_allclose(q[known], textbook_bh(p[known]))
    order = np.argsort(p[known])
    assert np.all(np.diff(q[known][order]) >= 0)
    assert np.all(q[known] <= 1.0) and np.all(q[known] >= p[known])
    assert benjamini_hochberg([]).shape == (0,)


def test_benjamini_hochberg_rejects_values_outside_unit_interval() -> None:
    with pytest.raises(InvalidInputError, match=r"p-values in \[0, 1\]"):
        benjamini_hochberg([0.5, 1.2])


# ---------------------------------------------------------------- cluster_table


def test_planted_difference_ranks_first_is_significant_and_covered_by_its_interval() -> None:
    delta = 0.02
    regions = make_regions(planted=2, delta=delta)
    table = cluster_table(regions)
    assert list(table.columns) == list(CLUSTER_TABLE_COLUMNS)
    assert list(table["rank"]) == [1, 2, 3, 4]
    top = table.iloc[0]
    assert top["cluster"] == 2
    assert top["significant"]
    assert top["q_value"] <= 0.05
    assert 0 < top["ci_low"] <= delta <= top["ci_high"]
    assert top["difference"] == pytest.approx(delta, abs=3 * top["standard_error"])
    others = table.iloc[1:]
    assert (others["z_score"].abs() < abs(top["z_score"])).all()
    assert ((others["ci_low"] <= 0) & (others["ci_high"] >= 0)).all()


def test_support_and_totals_match_the_regions() -> None:
    regions = make_regions(planted=1, delta=0.01)
    table = cluster_table(regions, n_bootstrap=200)
    for cluster, members in regions.groupby("cluster"):
        got = row(table, int(cluster))
        assert got["n_regions"] == len(members)
        assert got["n_images"] == members["image"].nunique()
        counts = members["selected_by"].value_counts()
        assert got["selected_a"] == counts.get("a", 0)
        assert got["selected_b"] == counts.get("b", 0)
        assert got["selected_both"] == counts.get("both", 0)
        assert got["total_a"] == pytest.approx(members["mass_a"].sum(), rel=1e-12)
        assert got["total_b"] == pytest.approx(members["mass_b"].sum(), rel=1e-12)
        assert got["mean_a"] == pytest.approx(members["mass_a"].mean(), rel=1e-12)
        assert got["mean_b"] == pytest.approx(members["mass_b"].mean(), rel=1e-12)
        assert got["difference"] == pytest.approx(got["mean_b"] - got["mean_a"], abs=1e-15)
        assert got["z_score"] == pytest.approx(got["difference"] / got["standard_error"])
        assert got["ci_low"] <= got["difference"] <= got["ci_high"]


def test_identical_masses_show_no_difference() -> None:
    regions = make_regions()
    regions["mass_b"] = regions["mass_a"]
    table = cluster_table(regions, n_bootstrap=300)
    for name in ("difference", "ci_low", "ci_high", "standard_error", "z_score"):
        assert (table[name] == 0.0).all(), name
    assert (table["p_value"] == 1.0).all()
    assert (table["q_value"] == 1.0).all()
    assert not table["significant"].any()
    # every |z_score| ties at 0: ranks follow the cluster id
    assert list(table["cluster"]) == [0, 1, 2, 3]


def slow_bootstrap(differences: np.ndarray, images: np.ndarray, draws: int) -> np.ndarray:
    """Mean region difference after resampling whole images with replacement, one by one."""
    rng = np.random.default_rng(12345)
    unique = np.unique(images)
    by_image = [differences[images == image] for image in unique]
    means = np.empty(draws)
    for b in range(draws):
        chosen = rng.integers(0, len(unique), size=len(unique))
        means[b] = np.concatenate([by_image[i] for i in chosen]).mean()
    return means


def test_image_bootstrap_matches_a_slow_reference_loop() -> None:
    # uneven region counts per image, so the region-weighted mean is not the mean of means
    regions = make_regions(n_images=30, n_clusters=2, regions_per_image=5, planted=0, delta=0.01)
    draws = 4000
    table = cluster_table(regions, n_bootstrap=draws, confidence=0.95)
    got = row(table, 0)
    members = regions[regions["cluster"] == 0]
    reference = slow_bootstrap(
        (members["mass_b"] - members["mass_a"]).to_numpy(), members["image"].to_numpy(), draws
    )
    low, high = np.percentile(reference, [2.5, 97.5])
    se = reference.std(ddof=1)
    # Monte Carlo error of a 2.5 % quantile with 4000 draws is about 0.04 se per side
    assert got["ci_low"] == pytest.approx(low, abs=0.25 * se)
    assert got["ci_high"] == pytest.approx(high, abs=0.25 * se)
    assert got["standard_error"] == pytest.approx(se, rel=0.1)
    # resampling regions instead of images would give a visibly narrower interval here
    region_se = members.eval("mass_b - mass_a").std(ddof=1) / math.sqrt(len(members))
    assert se > 1.3 * region_se


def test_row_order_does_not_change_the_result() -> None:
    regions = make_regions(planted=3, delta=0.015)
    expected = cluster_table(regions, n_bootstrap=300, seed=7)
    shuffled = regions.sample(frac=1.0, random_state=1).reset_index(drop=True)
    pd.testing.assert_frame_equal(cluster_table(shuffled, n_bootstrap=300, seed=7), expected)
    pd.testing.assert_frame_equal(class_table(shuffled), class_table(regions))


def test_seed_fixes_the_bootstrap_and_only_the_bootstrap() -> None:
    regions = make_regions(planted=1, delta=0.01)
    first = cluster_table(regions, n_bootstrap=2000, seed=0)
    pd.testing.assert_frame_equal(cluster_table(regions, n_bootstrap=2000, seed=0), first)
    other = cluster_table(regions, n_bootstrap=2000, seed=1)
    first = first.set_index("cluster").sort_index()
    other = other.set_index("cluster").sort_index()
    assert not np.array_equal(first["ci_low"], other["ci_low"])
    tolerance = 0.35 * first["standard_error"].to_numpy()
    for name in ("ci_low", "ci_high", "standard_error"):
        assert np.all(np.abs(other[name] - first[name]) <= tolerance), name
    for name in ("difference", "p_value", "mean_a", "mean_b", "n_regions"):
        np.testing.assert_array_equal(other[name], first[name])


def test_p_value_is_wilcoxon_on_per_image_means() -> None:
    regions = make_regions(planted=0, delta=0.004)
    table = cluster_table(regions, n_bootstrap=100)
    p_values = []
    for cluster in range(4):
        expected = wilcoxon(per_image_means(regions, cluster)).pvalue
        assert row(table, cluster)["p_value"] == pytest.approx(expected, rel=1e-9)
        p_values.append(expected)
    q_values = table.set_index("cluster").loc[range(4), "q_value"]
    np.testing.assert_allclose(q_values, textbook_bh(np.array(p_values)), rtol=1e-9)


def test_accuracy_counts_each_image_once() -> None:
    regions = pd.DataFrame(
        {
            "image": [0, 0, 0, 0, 0, 1, 2, 3],
            "region": [0, 1, 2, 3, 4, 0, 0, 0],
            "cluster": [0, 0, 0, 0, 0, 0, 0, 1],
            "mass_a": [0.1] * 8,
            "mass_b": [0.2] * 8,
            "selected_by": ["a"] * 8,
            "correct_a": pd.array([True] * 5 + [False, None, None], dtype="boolean"),
            "correct_b": pd.array([False] * 5 + [True, True, None], dtype="boolean"),
        }
    )
    table = cluster_table(regions, n_bootstrap=50)
    # image 0 (5 regions, right), image 1 (wrong), image 2 (unknown): 1 of 2, not 5 of 6
    assert row(table, 0)["accuracy_a"] == 0.5
    assert row(table, 0)["accuracy_b"] == pytest.approx(2 / 3)
    assert math.isnan(row(table, 1)["accuracy_a"])
    without = cluster_table(regions.drop(columns=["correct_a", "correct_b"]), n_bootstrap=50)
    assert without[["accuracy_a", "accuracy_b"]].isna().all().all()


def test_single_image_cluster_is_untested_and_ranked_after_significant_ones() -> None:
    regions = make_regions(n_images=20, n_clusters=2, planted=0, delta=0.01)
    lone = pd.DataFrame(
        {
            "image": [99, 99],
            "region": [0, 1],
            "cluster": [5, 5],
            "mass_a": [0.0, 0.0],
            "mass_b": [0.5, 0.4],
            "selected_by": ["b", "b"],
            "label": [1, 1],
        }
    )
    table = cluster_table(pd.concat([regions, lone], ignore_index=True), n_bootstrap=200)
    last = table.set_index("cluster").loc[5]
    significant = table[table["significant"]]
    assert len(significant) and (significant["rank"] < last["rank"]).all()
    assert last["p_value"] == 1.0
    assert math.isnan(last["z_score"])
    assert last["ci_low"] == last["ci_high"] == pytest.approx(0.45)
    assert "fewer than 2 images" in last["note"]
    assert (table[table["cluster"] != 5]["note"] == "").all()


def test_a_difference_without_spread_standardizes_to_infinity() -> None:
    # every image shows exactly -0.25: no spread at all, bootstrap or analytic
    regions = pd.DataFrame(
        {
            "image": [0, 1, 2, 3, 4, 5],
            "cluster": [0, 0, 0, 1, 1, 1],
            "mass_a": [0.25] * 6,
            "mass_b": [0.0, 0.0, 0.0, 0.25, 0.25, 0.25],
            "selected_by": ["a"] * 6,
        }
    )
    table = cluster_table(regions, n_bootstrap=100)
    assert list(table["cluster"]) == [0, 1]
    assert table.iloc[0]["standard_error"] == 0.0
    assert table.iloc[0]["z_score"] == -math.inf
    assert table.iloc[1]["z_score"] == 0.0


def test_empty_regions_give_an_empty_table_with_the_columns() -> None:
    table = cluster_table(make_regions().iloc[:0])
    assert table.empty
    assert list(table.columns) == list(CLUSTER_TABLE_COLUMNS)
    assert table["rank"].dtype == np.int64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns=["mass_b"]), "lacks column"),
        (lambda t: t.assign(selected_by="x"), "selected_by"),
        (lambda t: t.assign(mass_a=np.nan), "finite"),
        (lambda t: t.assign(cluster=-1), "cluster ids >= 0"),
        (lambda t: t.assign(image=0.5), "integers in column image"),
        (lambda t: t.to_numpy(), "DataFrame"),
    ],
)
def test_bad_regions_are_rejected(change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=message):
        cluster_table(change(make_regions(n_images=3)))


@pytest.mark.parametrize(
    "kwargs",
    [{"n_bootstrap": 1}, {"confidence": 1.0}, {"confidence": 0}, {"alpha": 2}, {"seed": -1}],
)
def test_bad_parameters_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError):
        cluster_table(make_regions(n_images=3), **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- class_table


def test_class_table_matches_a_groupby() -> None:
    regions = make_regions(planted=0, delta=0.01)
    regions.loc[regions["image"] == 0, "label"] = -1
    table = class_table(regions, ["cat", "dog", "fish"])
    assert list(table.columns) == [
        "cluster",
        "label",
        "class_name",
        "n_regions",
        "n_images",
        "mean_a",
        "mean_b",
        "difference",
    ]
    groups = regions.groupby(["cluster", "label"])
    assert len(table) == groups.ngroups
    for _, got in table.iterrows():
        members = groups.get_group((got["cluster"], got["label"]))
        assert got["n_regions"] == len(members)
        assert got["n_images"] == members["image"].nunique()
        assert got["mean_a"] == pytest.approx(members["mass_a"].mean())
        assert got["mean_b"] == pytest.approx(members["mass_b"].mean())
        assert got["difference"] == pytest.approx(members["difference"].mean())
        expected_name = "unknown" if got["label"] == -1 else ["cat", "dog", "fish"][got["label"]]
        assert got["class_name"] == expected_name
    assert "class_name" not in class_table(regions).columns
    by_mapping = class_table(regions, {0: "cat", 1: "dog", 2: "fish"})
    pd.testing.assert_frame_equal(by_mapping, table)
    pd.testing.assert_frame_equal(class_table(regions, np.array(["cat", "dog", "fish"])), table)


def test_class_table_rejects_missing_names() -> None:
    with pytest.raises(InvalidInputError, match="label 2 has no entry"):
        class_table(make_regions(), ["cat", "dog"])
    with pytest.raises(InvalidInputError, match="class_names"):
        class_table(make_regions(), "cat")
