"""Clusterers: group the feature vectors of all kept regions of a dataset.

Step 6 of our reconstruction of IMACS (Schoop et al., arXiv:2201.11196, 2022;
``shared/reference/method-spec.md`` section 1.3): k-means with the number of clusters
chosen by silhouette score (Rousseeuw. "Silhouettes: a graphical aid to the
interpretation and validation of cluster analysis". J. Comput. Appl. Math. 20, 1987),
or agglomerative clustering with Ward linkage (Ward. "Hierarchical grouping to optimize
an objective function". JASA 58(301), 1963) as a swappable alternative.

Both wrap scikit-learn, which is imported only when a clusterer runs. Clusterers are a
plugin kind like segmenters: these two are registered through the ``register_clusterers``
hook, and a plugin's clusterer is picked by name the same way
(``imacs.compare(..., clusterer="name", clusterer_params={...})``).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np

from imacs.components import Component
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parallel import thread_map
from imacs.parameters import check_choice, check_positive_int, check_seed


class Clusterer(Component, abc.ABC):
    """Assigns every row of a feature matrix to a cluster.

    ``fit_predict(features, seed=...)`` returns int64 labels ``0 .. k-1``, one per row,
    every label used at least once. Rows that are exact duplicates can never be split,
    so a clusterer returns at most as many clusters as there are distinct rows.

    Subclasses implement ``_fit_predict(features, seed)``: any integer labels, one per
    row, for validated finite float64 features (a C-ordered copy of the caller's, which
    ``_fit_predict`` may change in place); the base class checks the shape and relabels
    them densely. The same features and seed must give the same labels. A subclass that
    sets ``takes_float32 = True`` is given float32 features as they are, the caller's
    array, which it must not change: the comparison's features are float32, and a
    float64 copy of them all would be the largest thing a large comparison holds.
    """

    #: whether ``_fit_predict`` reads float32 features in place (see the class docstring)
    takes_float32: ClassVar[bool] = False

    def fit_predict(self, features: np.ndarray, *, seed: int) -> np.ndarray:
        """Cluster labels ``(N,)`` for ``features`` ``(N, D)``; ``seed`` fixes any randomness."""
        check_seed(seed)
        features = np.asarray(features)
        if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
            raise InvalidInputError(
                f"expected features of shape (n_regions, n_features) with at least one row "
                f"and one column; got shape {features.shape}"
            )
        if not np.issubdtype(features.dtype, np.number) or np.issubdtype(
            features.dtype, np.complexfloating
        ):
            raise InvalidInputError(f"expected real-valued features; got dtype {features.dtype}")
        if features.dtype == np.float32 and self.takes_float32:
            # read in place: no float64 copy of every region's features
            features = np.ascontiguousarray(features)
        else:
            # the clusterer's own C-ordered copy, which it may centre in place
            features = np.array(features, dtype=np.float64, order="C")
        bad = sum(
            int(np.sum(~np.all(np.isfinite(features[start : start + _CHUNK_ROWS]), axis=1)))
            for start in range(0, features.shape[0], _CHUNK_ROWS)
        )
        if bad:
            raise InvalidInputError(
                f"expected finite features; {bad} of {features.shape[0]} rows hold NaN or inf: "
                f"check the featurizer, or drop those regions before clustering"
            )
        labels = np.asarray(self._fit_predict(features, seed))
        if labels.shape != (features.shape[0],):
            raise InvalidInputError(
                f"clusterer {self.name!r} returned labels of shape {labels.shape} for "
                f"{features.shape[0]} rows"
            )
        # dense 0..k-1, so that no cluster id is empty
        _, dense = np.unique(labels, return_inverse=True)
        return dense.astype(np.int64)

    @abc.abstractmethod
    def _fit_predict(self, features: np.ndarray, seed: int) -> np.ndarray:
        """Labels for validated, finite float64 ``features`` with at least one row."""


def kmeans_plusplus(
    points: np.ndarray, n_clusters: int, random_state: np.random.RandomState
) -> np.ndarray:
    """Greedy k-means++ seeds (Arthur, Vassilvitskii, SODA 2007): ``(n_clusters, D)``.

    scikit-learn's ``init="k-means++"`` step for step: the first seed drawn uniformly,
    each further one the best of ``2 + log(k)`` candidates drawn in proportion to the
    squared distance to the nearest seed, from the same random numbers and with the
    same arithmetic, so ``KMeans(init=kmeans_plusplus)`` finds what
    ``KMeans(init="k-means++")`` finds (a test checks it). Written with numpy alone
    because scikit-learn's version validates its inputs at every seed, which cost more
    than the seeding itself on the few thousand rows a k search fits 50 times.
    """

    def squared_distances(rows: np.ndarray) -> np.ndarray:
        distances = -2 * (rows @ points.T)
        distances += np.einsum("ij,ij->i", rows, rows)[:, None]
        distances += norms[None, :]
        return np.maximum(distances, 0, out=distances)

    n_points = len(points)
    norms = np.einsum("ij,ij->i", points, points)
    weights = np.ones(n_points, dtype=points.dtype)
    n_trials = 2 + int(np.log(n_clusters))
    seeds = np.empty((n_clusters, points.shape[1]), dtype=points.dtype)
    first = random_state.choice(n_points, p=weights / weights.sum())
    seeds[0] = points[first]
    closest = squared_distances(seeds[0, None])
    potential = closest @ weights
    for c in range(1, n_clusters):
        draws = random_state.uniform(size=n_trials) * potential
        candidates = np.searchsorted(np.cumsum(weights * closest), draws)
        np.clip(candidates, None, closest.size - 1, out=candidates)
        to_candidates = squared_distances(points[candidates])
        np.minimum(closest, to_candidates, out=to_candidates)
        candidate_potentials = to_candidates @ weights.reshape(-1, 1)
        best = np.argmin(candidate_potentials)
        potential = candidate_potentials[best]
        closest = to_candidates[best]
        seeds[c] = points[candidates[best]]
    return seeds


def lloyd(features: np.ndarray, centres: np.ndarray, *, max_iter: int) -> np.ndarray:
    """Lloyd's k-means iterations over every row from ``centres``, until no label changes.

    Each iteration reads the rows a chunk at a time: every row's nearest centre (ties:
    the lower index), then each centre moves to its rows' mean (a centre left without
    rows stays where it was). Stops when an iteration changes no label, or after
    ``max_iter`` iterations, and returns the last assignment: each row's nearest centre
    among that iteration's centres. Centres that won no row leave their labels unused.
    """
    n_rows = features.shape[0]
    centres = np.array(centres, dtype=np.float64)
    k = len(centres)
    labels = np.full(n_rows, -1, dtype=np.int64)
    for _ in range(max_iter):
        sums = np.zeros_like(centres)
        counts = np.zeros(k)
        changed = 0
        centre_norms = np.einsum("ij,ij->i", centres, centres)
        for start in range(0, n_rows, _CHUNK_ROWS):
            rows = np.asarray(features[start : start + _CHUNK_ROWS], dtype=np.float64)
            # |x - c|^2 up to the |x|^2 every centre shares
            nearest = np.argmin(centre_norms[None, :] - 2 * (rows @ centres.T), axis=1)
            old = labels[start : start + len(rows)]
            changed += int(np.count_nonzero(nearest != old))
            old[:] = nearest
            members = np.zeros((len(rows), k))
            members[np.arange(len(rows)), nearest] = 1.0
            counts += members.sum(axis=0)
            sums += members.T @ rows
        if not changed:
            break
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return labels


def mean_silhouette(distances: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of dense ``labels`` (at least 2 clusters) given pairwise ``distances``.

    What ``sklearn.metrics.silhouette_score(distances, labels, metric="precomputed")``
    returns (a test checks it), with every point's summed distance to every cluster taken
    from one matrix product instead of a Python loop over the rows, several times faster
    on a few thousand points. A point alone in its cluster scores 0, as in scikit-learn.
    """
    n_points = len(labels)
    points = np.arange(n_points)
    membership = np.zeros((n_points, int(labels.max()) + 1))
    membership[points, labels] = 1.0
    sizes = membership.sum(axis=0)
    to_cluster = distances @ membership  # (n_points, n_clusters) summed distances
    own_size = sizes[labels]
    within = to_cluster[points, labels] / np.maximum(own_size - 1, 1)
    mean_to_cluster = to_cluster / np.maximum(sizes, 1)
    mean_to_cluster[points, labels] = np.inf
    nearest = mean_to_cluster.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = (nearest - within) / np.maximum(within, nearest)
    scores[own_size == 1] = 0.0
    return float(np.nan_to_num(scores).mean())


#: rows read at once where a pass over every row would otherwise copy them all
_CHUNK_ROWS = 16_384


def _distinct_rows(features: np.ndarray, at_most: int) -> int:
    """How many distinct rows ``features`` has, counted up to ``at_most``.

    Read a chunk of rows at a time, stopping once ``at_most`` are found: callers only
    need to know whether there are enough for the clusters asked for, and sorting a copy
    of every row would cost as much memory as the features themselves.
    """
    found = features[:0]
    for start in range(0, features.shape[0], _DISTINCT_CHUNK):
        chunk = features[start : start + _DISTINCT_CHUNK]
        found = np.unique(np.concatenate([found, chunk]), axis=0)
        if found.shape[0] >= at_most:
            return at_most
    return int(found.shape[0])


#: rows read at once while counting distinct rows
_DISTINCT_CHUNK = 4096


def _check_fixed_k(n_clusters: int, features: np.ndarray, name: str) -> int:
    """The number of clusters to fit: ``n_clusters``, or fewer if rows repeat."""
    n_rows = features.shape[0]
    if n_rows < n_clusters:
        raise InvalidInputError(
            f"{name} with n_clusters={n_clusters} needs at least {n_clusters} rows; got "
            f"{n_rows}: lower n_clusters, or keep more regions"
        )
    return _distinct_rows(features, n_clusters)


class KMeansClusterer(Clusterer):
    """k-means (scikit-learn ``KMeans``), with k chosen by silhouette score if not given.

    Parameters
    ----------
    n_clusters
        Fixed number of clusters, or None to choose k in ``k_range``: the k whose
        clustering has the highest silhouette score (ties: the smaller k). The range is
        clipped to ``[2, n_rows - 1]`` and to the number of distinct rows. Inputs of fewer
        than 3 rows, or with fewer than 2 distinct rows, give a single cluster 0.
    k_range
        Smallest and largest k to try, inclusive.
    n_init
        k-means restarts of the final fit (``KMeans(n_init=...)``); the best inertia wins.
    silhouette_sample
        The search for k runs on at most this many rows, drawn once with the seed and
        shared by every k: their pairwise distances are computed once, each k is fitted
        on them with ``search_n_init`` restarts and scored by silhouette. The chosen k is
        then fitted once on all rows with ``n_init`` restarts. The silhouette is
        quadratic in the rows, so this keeps the search's cost fixed as datasets grow.
    search_n_init
        k-means restarts per k during the search.
    fit_sample
        Past this many rows, the final fit's ``n_init`` restarts run on a sample of this
        many rows drawn with the seed, and Lloyd's iterations then go on over every row
        (a chunk at a time, :func:`lloyd`) from the best restart's centres until no
        label changes: the result is a k-means solution of all rows, reached without a
        float64 copy of them or ``n_init`` passes over them. ``None`` fits every restart
        on every row. The default, 20,000, was chosen with
        ``benchmarks/cluster_sample.py`` (docs/comparison.md).
    max_iter
        Most iterations of Lloyd's algorithm over every row after a sample's fit.
    n_jobs
        Threads that fit the candidate k at once during the search; ``None`` (default)
        uses every CPU core this process may run on. Each fit is seeded on its own, so
        the result does not depend on ``n_jobs``.

    After ``fit_predict``, ``chosen_k_`` holds the number of clusters and
    ``silhouette_scores_`` the score of every k tried (empty when ``n_clusters`` is given).
    """

    name = "kmeans"
    takes_float32 = True
    citation = (
        "Lloyd. Least squares quantization in PCM. IEEE Trans. Inf. Theory 28(2), 1982; "
        "Rousseeuw. Silhouettes. J. Comput. Appl. Math. 20, 1987"
    )

    def __init__(
        self,
        *,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (4, 20),
        n_init: int = 10,
        silhouette_sample: int = 2000,
        search_n_init: int = 3,
        fit_sample: int | None = 20_000,
        max_iter: int = 300,
        n_jobs: int | None = None,
    ) -> None:
        if n_clusters is not None:
            check_positive_int(n_clusters, "n_clusters")
        if (
            not isinstance(k_range, tuple | list)
            or len(k_range) != 2
            or not all(isinstance(k, int | np.integer) and not isinstance(k, bool) for k in k_range)
            or not 2 <= k_range[0] <= k_range[1]
        ):
            raise InvalidInputError(
                f"expected k_range to be (smallest k, largest k) with 2 <= smallest <= largest; "
                f"got {k_range!r}"
            )
        check_positive_int(n_init, "n_init")
        check_positive_int(silhouette_sample, "silhouette_sample")
        check_positive_int(search_n_init, "search_n_init")
        if fit_sample is not None:
            check_positive_int(fit_sample, "fit_sample")
        check_positive_int(max_iter, "max_iter")
        if n_jobs is not None:
            check_positive_int(n_jobs, "n_jobs")
        if silhouette_sample < 3:
            raise InvalidInputError(
                f"expected silhouette_sample to be an int >= 3 (a silhouette needs two "
                f"clusters and a row more); got {silhouette_sample!r}"
            )
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.search_n_init = search_n_init
        self.fit_sample = fit_sample
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.chosen_k_: int | None = None
        self.silhouette_scores_: dict[int, float] = {}

    def _fit_predict(self, features: np.ndarray, seed: int) -> np.ndarray:
        from threadpoolctl import ThreadpoolController

        # One thread per fit: region features are small enough that scikit-learn's OpenMP
        # and BLAS threads cost more than they save (on a busy machine their waiting
        # threads spin and slow the fit down); the search runs several fits at once
        # instead. The controller inspects the loaded libraries once; OpenMP's limit
        # holds per thread, so each search thread sets it again.
        self._threads = ThreadpoolController()
        with self._threads.limit(limits=1):
            return self._search_and_fit(features, seed)

    def _search_and_fit(self, features: np.ndarray, seed: int) -> np.ndarray:
        n_rows = features.shape[0]
        self.silhouette_scores_ = {}
        if self.n_clusters is not None:
            k = _check_fixed_k(self.n_clusters, features, "KMeansClusterer")
            self.chosen_k_ = k
            return self._final_fit(features, k, seed)
        high = int(np.clip(self.k_range[1], 2, n_rows - 1))
        n_distinct = _distinct_rows(features, high) if n_rows >= 3 else 1
        if n_distinct < 2:
            self.chosen_k_ = 1
            return np.zeros(n_rows, dtype=np.int64)

        from sklearn.metrics import pairwise_distances

        high = min(high, n_distinct)
        low = min(int(np.clip(self.k_range[0], 2, n_rows - 1)), high)
        sample = np.arange(n_rows)
        if n_rows > self.silhouette_sample:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(n_rows, self.silhouette_sample, replace=False))
        searched = np.asarray(features[sample], dtype=np.float64)
        distances = pairwise_distances(searched)

        def silhouette(k: int) -> float | None:
            with self._threads.limit(limits=1, user_api="openmp"):
                labels = self._kmeans(searched, k, seed, n_init=self.search_n_init)
            n_found = np.unique(labels).size
            if not 2 <= n_found <= sample.size - 1:
                return None  # the silhouette is undefined for this sample
            _, dense = np.unique(labels, return_inverse=True)
            return mean_silhouette(distances, dense)

        candidates = list(range(low, high + 1))
        scores = thread_map(silhouette, candidates, self.n_jobs)
        best_score = -np.inf
        self.chosen_k_ = 1
        for k, score in zip(candidates, scores, strict=True):
            if score is None:
                continue
            self.silhouette_scores_[k] = score
            if score > best_score:
                best_score, self.chosen_k_ = score, k
        return self._final_fit(features, self.chosen_k_, seed)

    def _final_fit(self, features: np.ndarray, k: int, seed: int) -> np.ndarray:
        """Labels of every row under ``k`` clusters: fitted on all rows, or on a sample."""
        n_rows = features.shape[0]
        if k == 1:
            return np.zeros(n_rows, dtype=np.int64)
        if self.fit_sample is None or n_rows <= self.fit_sample:
            return self._fit_all(features, k, seed)
        from sklearn.cluster import KMeans

        rng = np.random.default_rng([seed, 1])
        rows = np.sort(rng.choice(n_rows, self.fit_sample, replace=False))
        sample = np.asarray(features[rows], dtype=np.float64)
        if _distinct_rows(sample, k) < k:
            # the sample misses some of the few distinct rows: it cannot seat k centres
            return self._fit_all(features, k, seed)
        model = KMeans(
            n_clusters=k, n_init=self.n_init, random_state=seed, init=kmeans_plusplus, copy_x=False
        )
        model.fit(sample)
        return lloyd(features, model.cluster_centers_, max_iter=self.max_iter)

    def _fit_all(self, features: np.ndarray, k: int, seed: int) -> np.ndarray:
        """Every restart on every row, on its own float64 copy (the base class's, or one
        made of float32 features)."""
        owned = features if features.dtype == np.float64 else features.astype(np.float64)
        return self._kmeans(owned, k, seed, own=True)

    def _kmeans(
        self,
        features: np.ndarray,
        k: int,
        seed: int,
        *,
        n_init: int | None = None,
        own: bool = False,
    ) -> np.ndarray:
        """k-means labels; ``own``: ``features`` is this fit's to centre in place."""
        if k == 1:
            return np.zeros(features.shape[0], dtype=np.int64)
        from sklearn.cluster import KMeans

        restarts = self.n_init if n_init is None else n_init
        model = KMeans(
            n_clusters=k, n_init=restarts, random_state=seed, init=kmeans_plusplus, copy_x=not own
        )
        return np.asarray(model.fit_predict(features), dtype=np.int64)


class AgglomerativeClusterer(Clusterer):
    """Agglomerative clustering (scikit-learn ``AgglomerativeClustering``), fixed k.

    Deterministic: ``seed`` is accepted for the common interface and not used. Time and
    memory grow with the square of the number of rows, so it suits up to some ten
    thousand regions.

    Parameters
    ----------
    n_clusters
        Number of clusters (fewer if the features have fewer distinct rows).
    linkage
        ``"ward"`` (default, minimises within-cluster variance), ``"complete"``,
        ``"average"`` or ``"single"``; Euclidean distances.
    """

    name = "agglomerative"
    citation = "Ward. Hierarchical grouping to optimize an objective function. JASA 58(301), 1963"

    LINKAGES = ("ward", "complete", "average", "single")

    def __init__(self, *, n_clusters: int = 12, linkage: str = "ward") -> None:
        check_positive_int(n_clusters, "n_clusters")
        check_choice(linkage, "linkage", self.LINKAGES)
        self.n_clusters = n_clusters
        self.linkage = linkage

    def _fit_predict(self, features: np.ndarray, seed: int) -> np.ndarray:
        k = _check_fixed_k(self.n_clusters, features, "AgglomerativeClusterer")
        if k == 1:
            return np.zeros(features.shape[0], dtype=np.int64)
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(n_clusters=k, linkage=self.linkage)
        return np.asarray(model.fit_predict(features), dtype=np.int64)


@hookimpl
def register_clusterers(register: Register) -> None:
    """The built-in clusterers: ``kmeans`` and ``agglomerative``."""
    register(KMeansClusterer)
    register(AgglomerativeClusterer)


def get_clusterer(spec: Clusterer | str) -> Clusterer:
    """A clusterer from an instance (returned as is) or an installed clusterer's name."""
    from imacs.plugins import get_host

    if isinstance(spec, Clusterer):
        return spec
    registry = get_host().registry
    if not isinstance(spec, str):
        raise InvalidInputError(
            f"expected a Clusterer or one of {', '.join(map(repr, registry.names('clusterer')))}; "
            f"got {type(spec).__name__}"
        )
    check_choice(spec, "clusterer", registry.names("clusterer"))
    clusterer: Clusterer = registry.create("clusterer", spec)
    return clusterer
