"""Per-cluster statistics: planted differences, the sign-flip test and its interval, BH."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imacs.comparison.statistics import (
    CLUSTER_TABLE_COLUMNS,
    SignFlipTest,
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


def brute_force_p(d: np.ndarray, mu: float, signs: np.ndarray, exact: bool) -> float:
    """The sign-flip p-value of mean(d) = mu, one sign vector at a time."""
    x = d - mu
    observed = abs(x.sum())
    count = sum(abs(float(s @ x)) >= observed - 1e-12 * (1 + observed) for s in signs)
    return count / len(signs) if exact else (1 + count) / (len(signs) + 1)


def all_signs(n: int) -> np.ndarray:
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


def test_planted_difference_ranks_first_is_significant_meaningful_and_covered() -> None:
    delta = 0.02
    regions = make_regions(planted=2, delta=delta)
    table = cluster_table(regions, min_effect=0.01)
    assert list(table.columns) == list(CLUSTER_TABLE_COLUMNS)
    assert list(table["rank"]) == [1, 2, 3, 4]
    top = table.iloc[0]
    assert top["cluster"] == 2
    assert top["significant"] and top["meaningful"]
    assert top["q_value"] <= 0.05
    # the estimand is the per-image share: delta times the cluster's regions per image
    per_image = regions[regions["cluster"] == 2].groupby("image").size().mean()
    assert 0 < top["ci_low"] <= delta * per_image <= top["ci_high"]
    others = table.iloc[1:]
    assert not others["significant"].any()
    assert ((others["ci_low"] <= 0) & (others["ci_high"] >= 0)).all()


def test_support_and_per_image_shares_match_the_regions() -> None:
    regions = make_regions(planted=1, delta=0.01)
    table = cluster_table(regions, n_permutations=200)
    for cluster, members in regions.groupby("cluster"):
        got = row(table, int(cluster))
        shares = members.groupby("image")[["mass_a", "mass_b"]].sum()
        assert got["n_regions"] == len(members)
        assert got["n_images"] == members["image"].nunique() == len(shares)
        counts = members["selected_by"].value_counts()
        assert got["selected_a"] == counts.get("a", 0)
        assert got["selected_b"] == counts.get("b", 0)
        assert got["selected_both"] == counts.get("both", 0)
        assert got["total_a"] == pytest.approx(members["mass_a"].sum(), rel=1e-12)
        assert got["total_b"] == pytest.approx(members["mass_b"].sum(), rel=1e-12)
        assert got["mean_a"] == pytest.approx(shares["mass_a"].mean(), rel=1e-12)
        assert got["mean_b"] == pytest.approx(shares["mass_b"].mean(), rel=1e-12)
        assert got["difference"] == pytest.approx(got["mean_b"] - got["mean_a"], abs=1e-15)
        d = shares["mass_b"] - shares["mass_a"]
        assert got["standard_error"] == pytest.approx(d.std(ddof=1) / math.sqrt(len(d)))
        assert got["z_score"] == pytest.approx(got["difference"] / got["standard_error"])
        assert got["ci_low"] <= got["difference"] <= got["ci_high"]


def test_identical_masses_show_no_difference() -> None:
    regions = make_regions()
    regions["mass_b"] = regions["mass_a"]
    table = cluster_table(regions, n_permutations=300)
    for name in ("difference", "ci_low", "ci_high", "standard_error", "z_score"):
        assert (table[name] == 0.0).all(), name
    assert (table["p_value"] == 1.0).all()
    assert (table["q_value"] == 1.0).all()
    assert not table["significant"].any()
    # every interval is [0, 0]: ranks follow the cluster id
    assert list(table["cluster"]) == [0, 1, 2, 3]


@pytest.mark.parametrize("n", [3, 7, 11])
def test_exact_sign_flip_p_values_and_interval_inversion(n: int) -> None:
    d = np.random.default_rng(n).normal(0.3, 1.0, n)
    test = SignFlipTest(d, 1000, np.random.default_rng(0))
    signs = all_signs(n)
    for mu in (-1.0, -0.2, 0.0, 0.3, float(d.mean()), 1.5):
        assert test.p_value(mu) == brute_force_p(d, mu, signs, exact=True)
    low, high = test.interval(0.1)
    if n == 3:  # 2 of 8 sign vectors always count: p >= 0.25, no interval is bounded
        assert (low, high) == (-math.inf, math.inf)
        return
    assert low <= d.mean() <= high
    # the ends are the last values the test accepts: just outside it rejects
    span = high - low
    assert (
        brute_force_p(d, low, signs, True) > 0.1 >= brute_force_p(d, low - 1e-9 * span, signs, True)
    )
    assert (
        brute_force_p(d, high, signs, True)
        > 0.1
        >= brute_force_p(d, high + 1e-9 * span, signs, True)
    )


def test_random_sign_flip_p_values_and_interval_match_a_slow_loop() -> None:
    d = np.random.default_rng(5).standard_t(3, size=40) + 0.4
    draws = 3000
    test = SignFlipTest(d, draws, np.random.default_rng([7, 1]))
    bits = np.random.default_rng([7, 1]).integers(0, 2, size=(draws, d.size), dtype=np.int8)
    signs = 2.0 * bits - 1.0
    for mu in (-0.5, 0.0, 0.4, 1.0):
        assert test.p_value(mu) == pytest.approx(brute_force_p(d, mu, signs, exact=False))
    low, high = test.interval(0.05)
    span = high - low
    assert (
        brute_force_p(d, low, signs, False)
        > 0.05
        >= brute_force_p(d, low - 1e-9 * span, signs, False)
    )
    assert (
        brute_force_p(d, high, signs, False)
        > 0.05
        >= brute_force_p(d, high + 1e-9 * span, signs, False)
    )
    # close to Student's t interval for a sample this size (same estimand, other test)
    from scipy.stats import ttest_1samp

    t_interval = ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert low == pytest.approx(t_interval.low, abs=0.1 * span)
    assert high == pytest.approx(t_interval.high, abs=0.1 * span)


def test_intervals_are_fcr_adjusted_to_agree_with_the_q_values() -> None:
    regions = make_regions(n_images=60, n_clusters=6, planted=1, delta=0.03)
    table = cluster_table(regions, alpha=0.05)
    significant = int(table["significant"].sum())
    assert significant >= 1
    expected = 1 - max(significant, 1) * 0.05 / len(table)
    np.testing.assert_allclose(table["ci_level"], expected, rtol=1e-12)
    excludes_zero = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    assert (table["significant"] == excludes_zero).all()
    assert (table["significant"] == (table["q_value"] <= 0.05)).all()


@st.composite
def region_tables(draw: st.DrawFn) -> pd.DataFrame:
    n_images = draw(st.integers(1, 30))
    n_clusters = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    effect = draw(st.sampled_from([0.0, 0.001, 0.01, 0.1]))
    rng = np.random.default_rng(seed)
    rows = []
    for image in range(n_images):
        for region in range(int(rng.integers(1, 5))):
            cluster = int(rng.integers(n_clusters))
            mass_a = float(rng.random() * 0.2)
            noise = float(rng.normal(0, draw(st.sampled_from([0.0, 0.01, 0.05])) or 1e-9))
            mass_b = mass_a + noise + (effect if cluster == 0 else 0.0)
            rows.append((image, region, cluster, mass_a, mass_b, "both"))
    return pd.DataFrame(
        rows, columns=["image", "region", "cluster", "mass_a", "mass_b", "selected_by"]
    )


@settings(max_examples=120, deadline=None)
@given(region_tables(), st.sampled_from([0.01, 0.05, 0.2]))
def test_significance_never_contradicts_the_interval(regions: pd.DataFrame, alpha: float) -> None:
    table = cluster_table(regions, n_permutations=200, alpha=alpha, min_effect=0.005)
    excludes_zero = (table["ci_low"] > 0) | (table["ci_high"] < 0)
    assert (table["significant"] == excludes_zero).all()
    assert (table["significant"] == (table["q_value"] <= alpha)).all()
    assert (table["ci_low"] <= table["difference"]).all()
    assert (table["difference"] <= table["ci_high"]).all()
    assert not (table["meaningful"] & ~table["significant"]).any()
    assert (
        table["meaningful"] == table["significant"] & (table["difference"].abs() >= 0.005)
    ).all()
    # significant clusters come first
    flags = table.sort_values("rank")["significant"].to_numpy()
    assert not np.any(~flags[:-1] & flags[1:])


def test_a_large_well_measured_effect_outranks_a_tiny_one_on_many_images() -> None:
    # a logo in 30 images with a large difference against a background cluster in 400
    # images with a tiny but very consistent one: the logo must come first
    rng = np.random.default_rng(0)
    rows = [(i, 0, 0, 0.05, 0.05 + 0.0015 + rng.normal(0, 0.002), "both") for i in range(400)]
    rows += [(i, 1, 1, 0.02, 0.02 + 0.05 + rng.normal(0, 0.03), "b") for i in range(30)]
    regions = pd.DataFrame(
        rows, columns=["image", "region", "cluster", "mass_a", "mass_b", "selected_by"]
    )
    table = cluster_table(regions, min_effect=0.02)
    assert table["significant"].all()
    assert list(table["cluster"]) == [1, 0]
    assert table.iloc[0]["meaningful"] and not table.iloc[1]["meaningful"]


def test_min_effect_separates_meaningful_from_significant() -> None:
    regions = make_regions(planted=2, delta=0.02)
    strict = cluster_table(regions, min_effect=1.0)
    assert strict["significant"].any() and not strict["meaningful"].any()
    lenient = cluster_table(regions, min_effect=0.0)
    assert (lenient["meaningful"] == lenient["significant"]).all()


def test_row_order_does_not_change_the_result() -> None:
    regions = make_regions(planted=3, delta=0.015)
    expected = cluster_table(regions, n_permutations=300, seed=7)
    shuffled = regions.sample(frac=1.0, random_state=1).reset_index(drop=True)
    pd.testing.assert_frame_equal(cluster_table(shuffled, n_permutations=300, seed=7), expected)
    pd.testing.assert_frame_equal(class_table(shuffled), class_table(regions))


def test_seed_fixes_the_sign_vectors_and_only_them() -> None:
    regions = make_regions(planted=1, delta=0.01)
    first = cluster_table(regions, n_permutations=2000, seed=0)
    pd.testing.assert_frame_equal(cluster_table(regions, n_permutations=2000, seed=0), first)
    other = cluster_table(regions, n_permutations=2000, seed=1)
    first = first.set_index("cluster").sort_index()
    other = other.set_index("cluster").sort_index()
    assert not np.array_equal(first["ci_low"], other["ci_low"])
    tolerance = 0.35 * first["standard_error"].to_numpy()
    for name in ("ci_low", "ci_high"):
        assert np.all(np.abs(other[name] - first[name]) <= tolerance), name
    for name in ("difference", "standard_error", "mean_a", "mean_b", "n_regions"):
        np.testing.assert_array_equal(other[name], first[name])


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
    table = cluster_table(regions, n_permutations=100)
    # image 0 (5 regions, right), image 1 (wrong), image 2 (unknown): 1 of 2, not 5 of 6
    assert row(table, 0)["accuracy_a"] == 0.5
    assert row(table, 0)["accuracy_b"] == pytest.approx(2 / 3)
    assert math.isnan(row(table, 1)["accuracy_a"])
    without = cluster_table(regions.drop(columns=["correct_a", "correct_b"]), n_permutations=100)
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
    table = cluster_table(pd.concat([regions, lone], ignore_index=True), n_permutations=200)
    last = table.set_index("cluster").loc[5]
    significant = table[table["significant"]]
    assert len(significant) and (significant["rank"] < last["rank"]).all()
    assert last["p_value"] == 1.0 and not last["significant"]
    assert math.isnan(last["z_score"])
    assert last["difference"] == pytest.approx(0.9)
    assert (last["ci_low"], last["ci_high"]) == (-math.inf, math.inf)
    assert "one image only" in last["note"]
    assert (table[table["cluster"] != 5]["note"] == "").all()


def test_too_few_images_for_the_level_give_an_unbounded_interval_and_say_why() -> None:
    regions = pd.DataFrame(
        {
            "image": [0, 1, 2, 3],
            "cluster": [0, 0, 0, 0],
            "mass_a": [0.0] * 4,
            "mass_b": [0.3, 0.31, 0.29, 0.3],
            "selected_by": ["b"] * 4,
        }
    )
    table = cluster_table(regions)
    # 4 images: 2 of the 16 sign vectors always count, so p >= 0.125 > alpha
    assert table.iloc[0]["p_value"] == 0.125
    assert not table.iloc[0]["significant"]
    assert (table.iloc[0]["ci_low"], table.iloc[0]["ci_high"]) == (-math.inf, math.inf)
    assert "smallest p-value the test can give is 0.125" in table.iloc[0]["note"]


def test_a_difference_without_spread_standardizes_to_infinity() -> None:
    # every image shows exactly -0.25: no spread at all
    regions = pd.DataFrame(
        {
            "image": list(range(12)) * 2,
            "cluster": [0] * 12 + [1] * 12,
            "mass_a": [0.25] * 24,
            "mass_b": [0.0] * 12 + [0.25] * 12,
            "selected_by": ["a"] * 24,
        }
    )
    table = cluster_table(regions, n_permutations=100)
    assert list(table["cluster"]) == [0, 1]
    assert table.iloc[0]["standard_error"] == 0.0
    assert table.iloc[0]["z_score"] == -math.inf
    assert table.iloc[0]["significant"]
    assert table.iloc[0]["ci_low"] == table.iloc[0]["ci_high"] == -0.25
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
    [
        {"n_permutations": 10},
        {"alpha": 1.0},
        {"alpha": 0},
        {"min_effect": -0.1},
        {"min_effect": math.nan},
        {"seed": -1},
    ],
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
