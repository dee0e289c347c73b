"""Per-cluster and per-class statistics of a comparison's regions table.

Step 7 of our reconstruction of IMACS (Schoop, Wedin, Kapishnikov, Bolukbasi, Terry.
"IMACS: Image Model Attribution Comparison Summaries". arXiv:2201.11196, 2022; the
reconstruction is ``shared/reference/method-spec.md`` section 1.3): for every cluster of
salient regions, how much attribution model A and model B put on it, their difference
with an interval, a paired test, and control of the false discovery rate.

One estimand per cluster, and every number of a row is about it. For each image ``i``
that has regions in the cluster, ``d_i`` is the share of B's attribution on those
regions minus the share of A's (maps are L1-normalised per image and model, so a share
is a fraction of the image's whole attribution). The estimand is the mean of ``d_i``
over the images: ``difference``. The image is the unit throughout, because regions of
one image share its maps and are not independent.

- ``p_value`` comes from a paired sign-flip permutation test of ``mean(d_i) = 0``: under
  the null, each image's difference is as likely to have either sign.
- ``ci_low``, ``ci_high`` invert *the same test*: the interval holds every value ``mu``
  that the sign-flip test of ``mean(d_i) = mu`` does not reject, drawn with the same sign
  vectors. So the interval excludes 0 exactly when the test rejects at the interval's
  level.
- ``q_value`` is the Benjamini-Hochberg adjustment across clusters and ``significant``
  is ``q_value <= alpha``. The intervals are FCR-adjusted (Benjamini, Yekutieli,
  "False Discovery Rate-Adjusted Multiple Confidence Intervals for Selected Parameters",
  JASA 100(469), 2005): their level is ``1 - R alpha / m`` for ``R`` significant clusters
  out of ``m`` (``R = 1`` when none is). At that level a cluster is significant exactly
  when its interval excludes 0, and the selected intervals cover their differences with
  a false coverage-statement rate of at most ``alpha``.

Every function reads the regions table of the shared data model (one row per selected
region; columns ``image``, ``region``, ``cluster``, ``mass_a``, ``mass_b``,
``selected_by``, ``label``, ``correct_a``, ``correct_b``, ...). Results do not depend on
the table's row order: rows are sorted by cluster, image and region first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imacs.errors import InvalidInputError
from imacs.parameters import check_seed

#: the columns of :func:`cluster_table`, in order
CLUSTER_TABLE_COLUMNS = (
    "cluster",
    "rank",
    "n_regions",
    "n_images",
    "selected_a",
    "selected_b",
    "selected_both",
    "total_a",
    "total_b",
    "mean_a",
    "mean_b",
    "difference",
    "ci_low",
    "ci_high",
    "ci_level",
    "standard_error",
    "z_score",
    "p_value",
    "q_value",
    "significant",
    "meaningful",
    "accuracy_a",
    "accuracy_b",
    "note",
)

#: the columns of :func:`class_table`, in order (``class_name`` only with ``class_names``)
CLASS_TABLE_COLUMNS = (
    "cluster",
    "label",
    "class_name",
    "n_regions",
    "n_images",
    "mean_a",
    "mean_b",
    "difference",
)

_INT_COLUMNS = (
    "cluster",
    "rank",
    "n_regions",
    "n_images",
    "selected_a",
    "selected_b",
    "selected_both",
)
_SELECTORS = ("a", "b", "both")
#: at most this many cells of a sign matrix are drawn at once (bounds memory)
_SIGN_CELLS = 1 << 22
#: below this many images, every sign vector is enumerated instead of drawn
_EXACT_IMAGES = 12
#: the default smallest |difference| that counts as meaningful; docs/comparison.md shows
#: the seed-twin measurement behind it
DEFAULT_MIN_EFFECT = 0.15
#: the default number of random sign vectors
DEFAULT_PERMUTATIONS = 4000
#: the fewest sign vectors the test accepts: with fewer, p cannot go below 1%
MIN_PERMUTATIONS = 100


def benjamini_hochberg(p_values: Any) -> np.ndarray:
    """Benjamini-Hochberg q-values (false discovery rate adjusted p-values).

    Benjamini, Hochberg. "Controlling the False Discovery Rate". JRSS B 57(1), 1995.
    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` over the p-values sorted ascending, where
    ``m`` counts the known p-values; the q-values are monotone in the p-values and at most 1.
    NaN p-values are left out of ``m`` and come back as NaN. Same shape as ``p_values``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    flat = p.ravel()
    known = ~np.isnan(flat)
    values = flat[known]
    if np.any((values < 0) | (values > 1)):
        raise InvalidInputError(
            f"expected p-values in [0, 1] (or NaN); got values from {values.min()} to "
            f"{values.max()}"
        )
    q = np.full(flat.shape, np.nan)
    m = values.size
    if m:
        order = np.argsort(values, kind="stable")
        scaled = values[order] * m / np.arange(1, m + 1)
        # step-up: each q is the smallest scaled p at or above its rank
        stepped = np.minimum.accumulate(scaled[::-1])[::-1]
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(stepped, 1.0)
        q[known] = adjusted
    return q.reshape(p.shape)


def cluster_table(
    regions: pd.DataFrame,
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    alpha: float = 0.05,
    min_effect: float = DEFAULT_MIN_EFFECT,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per cluster: support, both models' attribution, and their difference.

    Columns (in :data:`CLUSTER_TABLE_COLUMNS` order), rows sorted by ``rank``:

    - ``cluster``; ``n_regions``, ``n_images`` (distinct images with regions in it);
      ``selected_a``, ``selected_b``, ``selected_both``: regions salient for A only, for
      B only, for both;
    - ``total_a``, ``total_b``: summed ``mass_a`` / ``mass_b`` over the cluster's regions;
      ``mean_a``, ``mean_b``: the mean over its images of the share of A's (B's)
      attribution on the cluster's regions of that image; ``difference``: ``mean_b -
      mean_a``, the mean over images of ``d_i`` (the module docstring defines it);
    - ``ci_low``, ``ci_high``: the interval of ``difference`` obtained by inverting the
      sign-flip test, at level ``ci_level`` (FCR-adjusted: ``1 - R alpha / m``, the same
      for every row); infinite when the cluster has too few images for any test at that
      level to reject;
    - ``standard_error``: ``std(d_i) / sqrt(n_images)``; ``z_score``: ``difference /
      standard_error`` (descriptive; the test does not use a normal approximation);
    - ``p_value``: the two-sided sign-flip test of ``mean(d_i) = 0`` with
      ``n_permutations`` random sign vectors (every one of the ``2^n`` vectors, an exact
      test, when the cluster has fewer than 12 images); ``q_value``:
      :func:`benjamini_hochberg` across clusters; ``significant``: ``q_value <= alpha``,
      the same as the interval excluding 0;
    - ``meaningful``: significant *and* ``|difference| >= min_effect``. A share of the
      image's attribution below ``min_effect`` is within what two models trained alike
      with different seeds produce (docs/comparison.md has the measurement);
    - ``rank``: by the interval's distance from 0 (its bound nearer to 0, or 0 when it
      holds 0), largest first, then by ``|difference|``, then by cluster id. A large,
      well-measured difference comes before a small or uncertain one, and significant
      clusters come before the others;
    - ``accuracy_a``, ``accuracy_b``: share of the cluster's distinct images that model A
      (B) classifies correctly; NaN when no image's correctness is known;
    - ``note``: why a value above is a convention rather than an estimate ("" if none).

    Cluster ``c`` draws its sign vectors from ``numpy.random.default_rng([seed, c])``, so
    its p-value and interval depend on ``seed`` and its own id only.
    """
    _check_int_at_least(n_permutations, "n_permutations", MIN_PERMUTATIONS)
    _check_open_unit(alpha, "alpha")
    if (
        isinstance(min_effect, bool)
        or not isinstance(min_effect, int | float)
        or not (math.isfinite(min_effect) and min_effect >= 0)
    ):
        raise InvalidInputError(f"expected min_effect to be a number >= 0; got {min_effect!r}")
    check_seed(seed)
    table = _sorted_regions(regions, ("image", "cluster", "mass_a", "mass_b", "selected_by"))
    unknown = set(table["selected_by"].unique()) - set(_SELECTORS)
    if unknown:
        raise InvalidInputError(
            f"expected selected_by to be one of {', '.join(map(repr, _SELECTORS))}; got "
            f"{', '.join(sorted(map(repr, unknown)))}"
        )
    groups = [(int(cluster), group) for cluster, group in table.groupby("cluster", sort=True)]
    if not groups:
        return _empty_cluster_table()
    shares = [_image_shares(group) for _, group in groups]
    tests = [
        SignFlipTest(share_b - share_a, n_permutations, np.random.default_rng([seed, c]))
        for (c, _), (share_a, share_b) in zip(groups, shares, strict=True)
    ]
    p_values = np.array([test.p_value(0.0) for test in tests])
    q_values = benjamini_hochberg(p_values)
    significant = q_values <= alpha
    level_alpha = max(int(significant.sum()), 1) * alpha / len(tests)
    rows = []
    for (cluster, group), share, test, p, q in zip(
        groups, shares, tests, p_values, q_values, strict=True
    ):
        row = _cluster_row(cluster, group, share, test, level_alpha)
        row.update(p_value=float(p), q_value=float(q))
        # the same decision as q <= alpha (BH's step-up rule), read off the interval so
        # that the two can never disagree
        row["significant"] = not row["ci_low"] <= 0.0 <= row["ci_high"]
        row["meaningful"] = row["significant"] and abs(row["difference"]) >= min_effect
        rows.append(row)
    result = pd.DataFrame(rows)
    low = result["ci_low"].to_numpy(dtype=np.float64)
    high = result["ci_high"].to_numpy(dtype=np.float64)
    distance = np.maximum(np.maximum(low, -high), 0.0)
    magnitude = np.abs(result["difference"].to_numpy(dtype=np.float64))
    order = np.lexsort((result["cluster"].to_numpy(), -magnitude, -distance))
    result = result.iloc[order].reset_index(drop=True)
    result["rank"] = np.arange(1, len(result) + 1)
    result = result[list(CLUSTER_TABLE_COLUMNS)]
    return result.astype(dict.fromkeys(_INT_COLUMNS, np.int64))


class SignFlipTest:
    """The paired sign-flip permutation test of ``mean(d) = mu``, for every ``mu`` at once.

    Under the null, each ``d_i - mu`` is symmetric about 0, so flipping its sign leaves
    the distribution of ``T(mu) = sum(d_i - mu)`` unchanged. With a sign vector ``s``,
    ``T_s(mu) = A_s - mu C_s`` where ``A_s = sum(s_i d_i)`` and ``C_s = sum(s_i)``: each
    flipped statistic is linear in ``mu``, and ``|T_s(mu)| >= |T(mu)|`` holds on one
    closed interval of ``mu`` that contains the mean of ``d``. So the p-value at every
    ``mu`` comes from those intervals, and its level sets (the confidence intervals) are
    intervals too, which is what makes test and interval agree exactly.

    With fewer than 12 values all ``2^n`` sign vectors are used and ``p = count / 2^n``;
    otherwise ``n_permutations`` random ones, and ``p = (1 + count) / (n_permutations +
    1)``, counting the observed statistic once (Phipson, Smyth, "Permutation P-values
    Should Never Be Zero", SAGEMB 9(1), 2010).
    """

    def __init__(self, differences: np.ndarray, n_permutations: int, rng: np.random.Generator):
        d = np.asarray(differences, dtype=np.float64)
        n = d.size
        self.n = n
        self.mean = float(d.mean()) if n else 0.0
        if n < _EXACT_IMAGES:
            signs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2.0 - 1.0
            a_s, c_s = signs @ d, signs.sum(axis=1)
            self.extra, self.denominator = 0, float(2**n)
        else:
            a_s, c_s = self._random_sums(d, n_permutations, rng)
            self.extra, self.denominator = 1, float(n_permutations + 1)
        total = float(d.sum())
        # |A - mu C| >= |S - mu n|  <=>  (C^2 - n^2) mu^2 + 2 (n S - A C) mu + A^2 - S^2 >= 0
        quadratic = c_s**2 - n**2
        linear = n * total - a_s * c_s
        constant = a_s**2 - total**2
        everywhere = quadratic == 0  # all signs equal: |T_s| = |T| for every mu
        self.extra += int(everywhere.sum())
        q, b, c = quadratic[~everywhere], linear[~everywhere], constant[~everywhere]
        root = np.sqrt(np.maximum(b * b - q * c, 0.0))
        # q < 0: the set is between the roots; the mean always lies in it, so rounding
        # that makes the discriminant slightly negative still gives an interval there
        ends = np.sort(np.stack([(-b + root) / q, (-b - root) / q]), axis=0)
        self.lows = np.sort(np.minimum(ends[0], self.mean))
        self.highs = np.sort(np.maximum(ends[1], self.mean))

    @staticmethod
    def _random_sums(
        d: np.ndarray, n_permutations: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        chunk = max(1, _SIGN_CELLS // d.size)
        sums, counts = [], []
        for start in range(0, n_permutations, chunk):
            size = min(chunk, n_permutations - start)
            bits = rng.integers(0, 2, size=(size, d.size), dtype=np.int8)
            positive = bits @ d  # sum of d_i over the +1 signs
            sums.append(2.0 * positive - d.sum())
            counts.append(2.0 * bits.sum(axis=1, dtype=np.int64) - d.size)
        return np.concatenate(sums), np.concatenate(counts)

    def count(self, mu: float) -> int:
        """How many sign vectors give a flipped statistic at least as extreme at ``mu``."""
        # intervals [low, high] with low <= mu <= high: all with low <= mu, less those
        # ending before mu
        started = int(np.searchsorted(self.lows, mu, side="right"))
        ended = int(np.searchsorted(self.highs, mu, side="left"))
        return self.extra + started - ended

    def p_value(self, mu: float) -> float:
        """The two-sided p-value of ``mean(d) = mu``."""
        if self.n < 2:
            return 1.0
        return self.count(mu) / self.denominator

    def interval(self, alpha: float) -> tuple[float, float]:
        """Every ``mu`` whose p-value exceeds ``alpha``: ``(low, high)``, maybe infinite."""
        if self.n < 2:
            return -math.inf, math.inf
        # p(mu) > alpha  <=>  count(mu) >= needed
        needed = math.floor(alpha * self.denominator) + 1
        inside = needed - self.extra  # intervals that must hold mu
        if inside <= 0:
            return -math.inf, math.inf
        if inside > self.lows.size:
            return self.mean, self.mean
        # every interval holds the mean, so left of it the count at mu is the number of
        # lows at or below mu, and right of it the number of highs at or above mu: the
        # set is one interval, from the inside-th smallest low to the inside-th largest high
        return float(self.lows[inside - 1]), float(self.highs[-inside])


def _image_shares(group: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """A's and B's share of each image's attribution on one cluster, in image order."""
    _, image_index = np.unique(group["image"].to_numpy(), return_inverse=True)
    share_a = np.bincount(image_index, weights=group["mass_a"].to_numpy(np.float64))
    share_b = np.bincount(image_index, weights=group["mass_b"].to_numpy(np.float64))
    return share_a, share_b


def class_table(
    regions: pd.DataFrame,
    class_names: Sequence[str] | Mapping[int, str] | np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per (cluster, image label): how each class contributes to each cluster.

    Columns ``cluster``, ``label`` (-1: unknown), ``class_name`` (only when
    ``class_names`` is given: a sequence indexed by label or a mapping from label;
    ``"unknown"`` for -1), ``n_regions``, ``n_images`` (distinct), ``mean_a``, ``mean_b``
    (mean mass over the regions), ``difference`` (mean of ``mass_b - mass_a``). Rows are
    sorted by cluster, then label.
    """
    if isinstance(class_names, np.ndarray):
        class_names = [str(name) for name in class_names.tolist()]
    if isinstance(class_names, str) or not (
        class_names is None or isinstance(class_names, Sequence | Mapping)
    ):
        raise InvalidInputError(
            f"expected class_names to be a sequence of names indexed by label, a mapping "
            f"from label to name, or None; got {type(class_names).__name__}"
        )
    table = _sorted_regions(regions, ("image", "cluster", "label", "mass_a", "mass_b"))
    table = table.assign(_difference=table["mass_b"] - table["mass_a"])
    grouped = table.groupby(["cluster", "label"], sort=True)
    result = pd.DataFrame(
        {
            "n_regions": grouped.size(),
            "n_images": grouped["image"].nunique(),
            "mean_a": grouped["mass_a"].mean(),
            "mean_b": grouped["mass_b"].mean(),
            "difference": grouped["_difference"].mean(),
        }
    ).reset_index()
    result = result.astype(
        {"cluster": np.int64, "label": np.int64, "n_regions": np.int64, "n_images": np.int64}
    )
    columns = list(CLASS_TABLE_COLUMNS)
    if class_names is None:
        columns.remove("class_name")
    else:
        result["class_name"] = [_class_name(class_names, int(v)) for v in result["label"]]
    return result[columns]


def _cluster_row(
    cluster: int,
    group: pd.DataFrame,
    shares: tuple[np.ndarray, np.ndarray],
    test: SignFlipTest,
    level_alpha: float,
) -> dict[str, Any]:
    mass_a = group["mass_a"].to_numpy(dtype=np.float64)
    mass_b = group["mass_b"].to_numpy(dtype=np.float64)
    share_a, share_b = shares
    differences = share_b - share_a
    n_images = differences.size
    difference = float(differences.mean())
    ci_low, ci_high = test.interval(level_alpha)

    notes = []
    if n_images < 2:
        standard_error = math.nan
        notes.append("one image only: no test, no interval")
    else:
        standard_error = float(np.std(differences, ddof=1)) / math.sqrt(n_images)
        if not math.isfinite(ci_low):
            smallest = test.extra / test.denominator
            notes.append(
                f"{n_images} images: the smallest p-value the test can give is "
                f"{smallest:.3g}, so no interval at level {1 - level_alpha:.4g} is bounded"
            )
    if difference == 0.0:
        standardized = 0.0
    elif standard_error > 0:
        standardized = difference / standard_error
    elif n_images < 2:
        standardized = math.nan
    else:  # every image shows the same difference
        standardized = math.copysign(math.inf, difference)

    selected = group["selected_by"].to_numpy()
    return {
        "cluster": cluster,
        "n_regions": len(group),
        "n_images": n_images,
        "selected_a": int(np.sum(selected == "a")),
        "selected_b": int(np.sum(selected == "b")),
        "selected_both": int(np.sum(selected == "both")),
        "total_a": float(mass_a.sum()),
        "total_b": float(mass_b.sum()),
        "mean_a": float(share_a.mean()),
        "mean_b": float(share_b.mean()),
        "difference": difference,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "ci_level": 1.0 - level_alpha,
        "standard_error": standard_error,
        "z_score": standardized,
        "accuracy_a": _image_accuracy(group, "correct_a"),
        "accuracy_b": _image_accuracy(group, "correct_b"),
        "note": "; ".join(notes),
    }


def _image_accuracy(group: pd.DataFrame, column: str) -> float:
    if column not in group.columns:
        return math.nan
    per_image = group.groupby("image", sort=True)[column].first().dropna()
    if per_image.empty:
        return math.nan
    return float(per_image.astype(np.float64).mean())


def _class_name(class_names: Sequence[str] | Mapping[int, str], label: int) -> str:
    if label == -1:
        return "unknown"
    if isinstance(class_names, Mapping):
        if label in class_names:
            return str(class_names[label])
    elif 0 <= label < len(class_names):
        return str(class_names[label])
    raise InvalidInputError(
        f"label {label} has no entry in class_names ({len(class_names)} names); pass a name "
        f"for every label in the regions table"
    )


#: columns the statistics read where the regions table has them
_READ_IF_PRESENT = ("region", "correct_a", "correct_b")


def _sorted_regions(regions: Any, required: Sequence[str]) -> pd.DataFrame:
    """A checked copy of the columns the statistics read, sorted by cluster and image."""
    if not isinstance(regions, pd.DataFrame):
        raise InvalidInputError(
            f"expected the regions table as a pandas DataFrame; got {type(regions).__name__}"
        )
    missing = [name for name in required if name not in regions.columns]
    if missing:
        raise InvalidInputError(
            f"the regions table lacks column(s) {', '.join(missing)}; expected the columns "
            f"of the comparison's regions table ({', '.join(required)} at least)"
        )
    # only the columns the statistics read: the regions table may be wide and long
    wanted = [*required, *(name for name in _READ_IF_PRESENT if name not in required)]
    table = regions[[name for name in wanted if name in regions.columns]].copy()
    for name in ("image", "cluster", "region", "label"):
        if name in required or (name == "region" and name in table.columns):
            table[name] = _integer_column(table[name], name)
    if np.any(table["cluster"].to_numpy() < 0):
        raise InvalidInputError("expected cluster ids >= 0; got negative ones")
    for name in ("mass_a", "mass_b"):
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise InvalidInputError(
                f"expected finite numbers in column {name}; got NaN, inf or non-numbers"
            )
        table[name] = values
    keys = [name for name in ("cluster", "image", "region", "mass_a", "mass_b") if name in table]
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def _integer_column(column: pd.Series, name: str) -> np.ndarray:
    values = column.to_numpy()
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(numbers)) or np.any(numbers != np.round(numbers)):
        raise InvalidInputError(
            f"expected integers in column {name}; got {column.dtype} values that are not all "
            f"whole numbers"
        )
    return numbers.astype(np.int64)


def _empty_cluster_table() -> pd.DataFrame:
    def dtype(name: str) -> Any:
        if name in _INT_COLUMNS:
            return np.int64
        return {"significant": bool, "meaningful": bool, "note": str}.get(name, np.float64)

    return pd.DataFrame({name: pd.Series(dtype=dtype(name)) for name in CLUSTER_TABLE_COLUMNS})


def _check_int_at_least(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise InvalidInputError(f"expected {name} to be an int >= {low}; got {value!r}")


def _check_open_unit(value: Any, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number)
        or not (0 < value < 1)
    ):
        raise InvalidInputError(f"expected {name} strictly between 0 and 1; got {value!r}")


def _check_closed_unit(value: Any, name: str) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number)
        or not (0 <= value <= 1)
    ):
        raise InvalidInputError(f"expected {name} between 0 and 1; got {value!r}")
