"""Clusterers: k by silhouette, agreement with scikit-learn, tiny and degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, pairwise_distances, silhouette_score

from imacs.comparison.clustering import (
    AgglomerativeClusterer,
    Clusterer,
    KMeansClusterer,
    get_clusterer,
    kmeans_plusplus,
    mean_silhouette,
)
from imacs.errors import InvalidInputError

CENTERS = np.array([[0.0, 0.0, 0.0], [12.0, 0.0, 0.0], [0.0, 12.0, 0.0], [0.0, 0.0, 12.0]])


def blobs(n_samples: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    features, truth = make_blobs(
        n_samples=n_samples, centers=CENTERS, cluster_std=0.6, random_state=seed
    )
    return features.astype(np.float32), truth


def test_silhouette_picks_the_true_number_of_blobs() -> None:
    features, truth = blobs()
    clusterer = KMeansClusterer(k_range=(2, 8), n_init=4)
    labels = clusterer.fit_predict(features, seed=0)
    assert clusterer.chosen_k_ == 4
    assert adjusted_rand_score(truth, labels) == 1.0
    assert labels.dtype == np.int64
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    assert sorted(clusterer.silhouette_scores_) == list(range(2, 9))
    assert max(clusterer.silhouette_scores_, key=clusterer.silhouette_scores_.get) == 4


@pytest.mark.parametrize("n_kinds", [6, 10, 15])
def test_the_default_search_finds_more_kinds_than_its_smallest_k(n_kinds: int) -> None:
    # region features have 48 columns; overlapping blobs of unequal sizes stand in for
    # region kinds. The planted sets' own features peak at k = 2 or 3 (docs/comparison.md),
    # which is why their k sits at the bottom of 4..20: that is the data, not the search.
    rng = np.random.default_rng(n_kinds)
    centers = rng.normal(scale=3.0, size=(n_kinds, 48))
    sizes = rng.integers(30, 200, size=n_kinds).tolist()
    features, truth = make_blobs(
        n_samples=sizes, centers=centers, cluster_std=1.5, random_state=n_kinds
    )
    clusterer = KMeansClusterer(n_jobs=1)
    labels = clusterer.fit_predict(features, seed=0)
    assert abs(clusterer.chosen_k_ - n_kinds) <= 1
    assert adjusted_rand_score(truth, labels) > 0.9


def test_silhouette_scores_equal_scikit_learns_on_the_full_data() -> None:
    features, _ = blobs(n_samples=120)
    clusterer = KMeansClusterer(k_range=(2, 6), search_n_init=3)
    clusterer.fit_predict(features, seed=5)
    for k, score in clusterer.silhouette_scores_.items():
        labels = KMeans(n_clusters=k, n_init=3, random_state=5).fit_predict(
            features.astype(np.float64)
        )
        expected = silhouette_score(features.astype(np.float64), labels)
        assert score == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n_clusters", [2, 5, 40])
def test_mean_silhouette_equals_scikit_learns_with_singletons_and_duplicates(
    n_clusters: int,
) -> None:
    rng = np.random.default_rng(n_clusters)
    points = rng.normal(size=(90, 4))
    points[10:14] = points[9]  # duplicate points, some of them split across clusters
    labels = rng.integers(0, n_clusters, size=90)
    labels[:3] = n_clusters  # a cluster of three, and below two singletons
    labels[3], labels[4] = n_clusters + 1, n_clusters + 2
    _, labels = np.unique(labels, return_inverse=True)
    distances = pairwise_distances(points)
    expected = silhouette_score(distances, labels, metric="precomputed")
    assert mean_silhouette(distances, labels) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_the_search_gives_the_same_answer_on_any_number_of_threads() -> None:
    features, _ = blobs(n_samples=150, seed=3)
    answers = []
    for n_jobs in (1, 3):
        clusterer = KMeansClusterer(k_range=(2, 9), n_jobs=n_jobs)
        labels = clusterer.fit_predict(features, seed=2)
        answers.append((labels, clusterer.silhouette_scores_, clusterer.chosen_k_))
    np.testing.assert_array_equal(answers[0][0], answers[1][0])
    assert answers[0][1:] == answers[1][1:]


def test_a_silhouette_sample_still_finds_the_blobs() -> None:
    features, truth = blobs(n_samples=300)
    clusterer = KMeansClusterer(k_range=(2, 6), n_init=3, silhouette_sample=60)
    labels = clusterer.fit_predict(features, seed=1)
    assert clusterer.chosen_k_ == 4
    assert adjusted_rand_score(truth, labels) == 1.0


def test_the_chosen_k_is_refitted_on_all_rows_with_n_init_restarts() -> None:
    features, _ = blobs(n_samples=300)
    clusterer = KMeansClusterer(k_range=(2, 6), n_init=7, search_n_init=1, silhouette_sample=50)
    labels = clusterer.fit_predict(features, seed=3)
    expected = KMeans(n_clusters=clusterer.chosen_k_, n_init=7, random_state=3).fit_predict(
        features.astype(np.float64)
    )
    assert np.array_equal(labels, expected)


def test_past_fit_sample_rows_lloyd_goes_on_over_every_row_from_the_sample_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imacs.comparison import clustering

    features, truth = blobs(n_samples=400)
    clusterer = KMeansClusterer(n_clusters=4, n_init=3, fit_sample=80)
    labels = clusterer.fit_predict(features.astype(np.float32), seed=5)
    assert adjusted_rand_score(truth, labels) == 1.0
    # without clusters to find, where every fit cuts differently: the restarts run on the
    # seeded sample, and Lloyd's iterations then go on over all rows from its centres
    noise = np.random.default_rng(6).random((400, 3)).astype(np.float32)
    labels = clusterer.fit_predict(noise, seed=5)
    rows = np.sort(np.random.default_rng([5, 1]).choice(400, 80, replace=False))
    model = KMeans(n_clusters=4, n_init=3, random_state=5, init=kmeans_plusplus)
    model.fit(noise[rows].astype(np.float64))
    expected = clustering.lloyd(noise, model.cluster_centers_, max_iter=300)
    np.testing.assert_array_equal(labels, expected)
    # a fixed point on all rows: every row's nearest cluster mean is its own cluster's
    means = np.stack([noise[labels == c].mean(axis=0) for c in range(4)]).astype(np.float64)
    distances = ((noise[:, None, :].astype(np.float64) - means[None]) ** 2).sum(axis=-1)
    np.testing.assert_array_equal(distances.argmin(axis=1), labels)
    sample_only = model.predict(noise.astype(np.float64))
    assert adjusted_rand_score(sample_only, labels) < 1.0  # the iterations moved some rows
    # the rows are read in chunks to the same labels
    monkeypatch.setattr(clustering, "_CHUNK_ROWS", 64)
    np.testing.assert_array_equal(clusterer.fit_predict(noise, seed=5), labels)
    # at most fit_sample rows: every restart on all of them, as before
    whole = KMeans(n_clusters=4, n_init=3, random_state=5, init=kmeans_plusplus)
    found = KMeansClusterer(n_clusters=4, n_init=3, fit_sample=400).fit_predict(noise, seed=5)
    np.testing.assert_array_equal(whole.fit_predict(noise.astype(np.float64)), found)


def test_a_sample_that_misses_a_rare_distinct_row_falls_back_to_every_row() -> None:
    # four distinct rows, one of them once in 400: a sample of 50 cannot seat 4 centres
    rows = np.repeat(np.array([[0.0], [10.0], [20.0]], dtype=np.float32), 133, axis=0)
    rows = np.concatenate([rows, np.array([[30.0]], dtype=np.float32)])
    sampled = np.random.default_rng([0, 1]).choice(len(rows), 50, replace=False)
    assert len(rows) - 1 not in sampled
    labels = KMeansClusterer(n_clusters=4, n_init=2, fit_sample=50).fit_predict(rows, seed=0)
    assert len(np.unique(labels)) == 4
    assert labels[-1] not in labels[:-1]  # the rare row has a cluster of its own


def test_lloyd_stops_after_max_iter_and_keeps_a_centre_without_rows() -> None:
    from imacs.comparison.clustering import lloyd

    rows = np.array([[0.0], [1.0], [10.0], [11.0]])
    # the centre at 100 wins no row; it stays put and its label is never used
    labels = lloyd(rows, np.array([[0.0], [5.5], [100.0]]), max_iter=50)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    # one iteration: the labels of the first assignment, before any centre moved
    np.testing.assert_array_equal(lloyd(rows, np.array([[0.0], [100.0]]), max_iter=1), 0)


def test_float32_features_are_read_in_place_and_left_as_they_were() -> None:
    features, _ = blobs(n_samples=300)
    single = features.astype(np.float32)
    kept = single.copy()
    labels = KMeansClusterer(k_range=(2, 6), n_init=3).fit_predict(single, seed=1)
    np.testing.assert_array_equal(single, kept)  # not centred in place
    # the same labels as the float64 copy of the same values gives
    again = KMeansClusterer(k_range=(2, 6), n_init=3).fit_predict(single.astype(np.float64), seed=1)
    np.testing.assert_array_equal(labels, again)
    assert KMeansClusterer.takes_float32 and not AgglomerativeClusterer.takes_float32


def test_distinct_rows_are_counted_in_chunks_up_to_what_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from imacs.comparison import clustering

    monkeypatch.setattr(clustering, "_DISTINCT_CHUNK", 3)
    rows = np.repeat(np.arange(5.0)[:, None], 4, axis=0)  # 5 distinct rows, 20 in all
    assert clustering._distinct_rows(rows, 10) == 5
    assert clustering._distinct_rows(rows, 3) == 3
    assert clustering._distinct_rows(rows[:0], 3) == 0


def test_k_range_is_clipped_to_the_rows() -> None:
    features = np.array([[0.0], [0.1], [5.0], [5.1], [10.0]])
    clusterer = KMeansClusterer(k_range=(3, 20))
    labels = clusterer.fit_predict(features, seed=0)
    assert set(clusterer.silhouette_scores_) <= {3, 4}
    assert clusterer.chosen_k_ == 3
    assert adjusted_rand_score([0, 0, 1, 1, 2], labels) == 1.0


@pytest.mark.parametrize(
    "make", [lambda: KMeansClusterer(k_range=(2, 5), n_init=3), lambda: AgglomerativeClusterer()]
)
def test_same_seed_same_labels(make) -> None:  # type: ignore[no-untyped-def]
    features = np.random.default_rng(0).normal(size=(150, 5))
    first, second = make(), make()
    np.testing.assert_array_equal(
        first.fit_predict(features, seed=3), second.fit_predict(features, seed=3)
    )
    if isinstance(first, KMeansClusterer):
        assert first.silhouette_scores_ == second.silhouette_scores_


def test_fixed_number_of_clusters_is_respected() -> None:
    features, _ = blobs()
    kmeans = KMeansClusterer(n_clusters=3)
    labels = kmeans.fit_predict(features, seed=0)
    assert sorted(np.unique(labels)) == [0, 1, 2]
    assert kmeans.chosen_k_ == 3
    assert kmeans.silhouette_scores_ == {}
    expected = KMeans(n_clusters=3, n_init=10, random_state=0).fit_predict(
        features.astype(np.float64)
    )
    assert adjusted_rand_score(expected, labels) == 1.0
    agglomerative = AgglomerativeClusterer(n_clusters=7)
    assert np.unique(agglomerative.fit_predict(features, seed=0)).size == 7


@pytest.mark.parametrize("linkage", ["ward", "average"])
def test_agglomerative_matches_scikit_learn_and_finds_the_blobs(linkage: str) -> None:
    features, truth = blobs(n_samples=120)
    labels = AgglomerativeClusterer(n_clusters=4, linkage=linkage).fit_predict(features, seed=0)
    expected = AgglomerativeClustering(n_clusters=4, linkage=linkage).fit_predict(features)
    assert adjusted_rand_score(expected, labels) == 1.0
    assert adjusted_rand_score(truth, labels) == 1.0


@pytest.mark.parametrize("n_rows", [1, 2])
def test_fewer_than_three_rows_form_one_cluster(n_rows: int) -> None:
    features = np.arange(n_rows * 2, dtype=np.float64).reshape(n_rows, 2)
    clusterer = KMeansClusterer()
    np.testing.assert_array_equal(clusterer.fit_predict(features, seed=0), np.zeros(n_rows))
    assert clusterer.chosen_k_ == 1


def test_three_rows_give_two_clusters() -> None:
    clusterer = KMeansClusterer()
    labels = clusterer.fit_predict(np.array([[0.0], [0.1], [9.0]]), seed=0)
    assert clusterer.chosen_k_ == 2
    assert adjusted_rand_score([0, 0, 1], labels) == 1.0


@pytest.mark.parametrize(
    "clusterer",
    [KMeansClusterer(), KMeansClusterer(n_clusters=3), AgglomerativeClusterer(n_clusters=3)],
    ids=["kmeans-auto", "kmeans-fixed", "agglomerative"],
)
def test_identical_rows_form_one_cluster(clusterer: Clusterer) -> None:
    features = np.ones((10, 4), dtype=np.float32)
    np.testing.assert_array_equal(clusterer.fit_predict(features, seed=0), np.zeros(10))


def test_fewer_distinct_rows_than_clusters_caps_the_clusters() -> None:
    features = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 4, axis=0)
    labels = KMeansClusterer(n_clusters=3).fit_predict(features, seed=0)
    assert sorted(np.unique(labels)) == [0, 1]
    assert adjusted_rand_score(np.repeat([0, 1], 4), labels) == 1.0


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (np.zeros(5), "shape"),
        (np.zeros((0, 3)), "shape"),
        (np.zeros((4, 0)), "shape"),
        (np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]), "1 of 3 rows hold NaN or inf"),
        (np.array([[np.inf], [1.0], [2.0]]), "NaN or inf"),
        (np.array([["a"], ["b"]]), "real-valued"),
    ],
)
def test_bad_features_are_rejected(features: np.ndarray, message: str) -> None:
    for clusterer in (KMeansClusterer(), AgglomerativeClusterer(n_clusters=1)):
        with pytest.raises(InvalidInputError, match=message):
            clusterer.fit_predict(features, seed=0)


def test_fewer_rows_than_fixed_clusters_is_an_error() -> None:
    features = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(InvalidInputError, match="needs at least 12 rows; got 5"):
        AgglomerativeClusterer().fit_predict(features, seed=0)
    with pytest.raises(InvalidInputError, match="needs at least 6 rows"):
        KMeansClusterer(n_clusters=6).fit_predict(features, seed=0)


def test_bad_seed_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="seed"):
        KMeansClusterer().fit_predict(np.zeros((4, 2)), seed=-1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: KMeansClusterer(n_clusters=0),
        lambda: KMeansClusterer(k_range=(1, 5)),
        lambda: KMeansClusterer(k_range=(6, 5)),
        lambda: KMeansClusterer(k_range=3),
        lambda: KMeansClusterer(n_init=0),
        lambda: KMeansClusterer(silhouette_sample=2),
        lambda: KMeansClusterer(search_n_init=0),
        lambda: KMeansClusterer(n_jobs=0),
        lambda: AgglomerativeClusterer(n_clusters=0),
        lambda: AgglomerativeClusterer(linkage="centroid"),
    ],
)
def test_bad_parameters_are_rejected(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError):
        make()


def test_parameters_read_back() -> None:
    clusterer = KMeansClusterer(n_clusters=5, n_init=3)
    assert clusterer.get_params() == {
        "n_clusters": 5,
        "k_range": (4, 20),
        "n_init": 3,
        "silhouette_sample": 2000,
        "search_n_init": 3,
        "fit_sample": 20_000,
        "max_iter": 300,
        "n_jobs": None,
    }
    assert repr(AgglomerativeClusterer()) == (
        "AgglomerativeClusterer(n_clusters=12, linkage='ward')"
    )


def test_get_clusterer() -> None:
    mine = AgglomerativeClusterer(n_clusters=3)
    assert get_clusterer(mine) is mine
    assert isinstance(get_clusterer("kmeans"), KMeansClusterer)
    assert isinstance(get_clusterer("agglomerative"), AgglomerativeClusterer)
    with pytest.raises(InvalidInputError, match="unknown clusterer 'dbscan'"):
        get_clusterer("dbscan")
    with pytest.raises(InvalidInputError, match="expected a Clusterer"):
        get_clusterer(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [2, 7, 20])
def test_our_kmeans_plusplus_seeds_exactly_as_scikit_learns(k: int) -> None:
    from sklearn.cluster import kmeans_plusplus as sklearn_kmeans_plusplus

    from imacs.comparison.clustering import kmeans_plusplus

    points, _ = make_blobs(n_samples=400, n_features=9, centers=6, random_state=k)
    points = points - points.mean(axis=0)  # KMeans centres the data before seeding
    ours = kmeans_plusplus(points, k, np.random.RandomState(k))
    theirs, _ = sklearn_kmeans_plusplus(points, k, random_state=np.random.RandomState(k))
    np.testing.assert_array_equal(ours, theirs)
    with_ours = KMeans(n_clusters=k, n_init=3, random_state=1, init=kmeans_plusplus)
    with_theirs = KMeans(n_clusters=k, n_init=3, random_state=1)
    np.testing.assert_array_equal(with_ours.fit_predict(points), with_theirs.fit_predict(points))


def test_every_fit_runs_on_one_openmp_thread_also_on_the_search_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # OpenMP's thread limit holds per thread, so a limit set on the calling thread alone
    # would leave the search threads' fits running several OpenMP threads each
    import sklearn.cluster._kmeans as sklearn_kmeans

    seen: list[int] = []
    effective = sklearn_kmeans._openmp_effective_n_threads

    def spy(*args: object, **kwargs: object) -> int:
        seen.append(effective(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(sklearn_kmeans, "_openmp_effective_n_threads", spy)
    features, _ = blobs(n_samples=150, seed=4)
    KMeansClusterer(k_range=(2, 6), n_jobs=2).fit_predict(features, seed=0)
    assert seen and set(seen) == {1}
