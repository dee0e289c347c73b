"""Per-cluster and per-class statistics of a comparison's regions table.

Step 7 of our reconstruction of IMACS (Schoop, Wedin, Kapishnikov, Bolukbasi, Terry.
"IMACS: Image Model Attribution Comparison Summaries". arXiv:2201.11196, 2022; the
reconstruction is ``shared/reference/method-spec.md`` section 1.3): for every cluster of
salient regions, how much attribution mass model A and model B put on it, the difference
with a bootstrap confidence interval, a paired test, and a multiple-testing correction.

The unit of resampling and of the paired test is the *image*, not the region: regions of
one image share the image's attribution maps (each map sums to 1 in absolute value), so
they are not independent, and treating them as such would make intervals too narrow.

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
    "standard_error",
    "z_score",
    "p_value",
    "q_value",
    "significant",
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
#: at most this many cells of the bootstrap weight matrix are drawn at once (bounds memory)
_BOOTSTRAP_CELLS = 1 << 22


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
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per cluster: support, both models' attribution mass, and their difference.

    Columns (in :data:`CLUSTER_TABLE_COLUMNS` order), rows sorted by ``rank``:

    - ``cluster``; ``rank``: significant clusters first, each group ordered by
      ``|difference|`` (largest first), ties broken by cluster id. Every map is
      L1-normalised per image and model, so ``difference`` is already on one scale for
      every cluster, image and model: a share of the image's total attribution;
    - ``n_regions``, ``n_images`` (distinct); ``selected_a``, ``selected_b``,
      ``selected_both``: regions salient for A only, for B only, for both;
    - ``total_a``, ``total_b``: summed ``mass_a`` / ``mass_b``; ``mean_a``, ``mean_b``:
      their means over regions; ``difference``: the mean of ``mass_b - mass_a`` over
      regions (= ``mean_b - mean_a``);
    - ``ci_low``, ``ci_high``: percentile bootstrap interval (level ``confidence``) of
      ``difference``, resampling *images* with replacement (``n_bootstrap`` draws; a draw
      takes each image's regions as a block); ``standard_error``: the standard deviation
      of the bootstrap distribution;
    - ``z_score``: ``difference / standard_error``; 0.0 when
      ``difference`` is 0. When the bootstrap has no spread but the difference is not 0,
      the analytic standard error of the per-image mean differences (``std / sqrt(n)``)
      stands in, and when that is 0 too (every image shows the same difference) the
      result is ``+inf`` or ``-inf``. A cluster found in a single image has no measure of
      spread at all: NaN, ranked last, with a note;
    - ``p_value``: two-sided Wilcoxon signed-rank test (:func:`scipy.stats.wilcoxon`) of
      the per-image mean differences, the image being the paired unit; 1.0 when every
      per-image difference is 0, and 1.0 with a note when the cluster spans fewer than 2
      images; ``q_value``: :func:`benjamini_hochberg` over the clusters; ``significant``:
      ``q_value <= alpha``;
    - ``accuracy_a``, ``accuracy_b``: share of the cluster's distinct images that model A
      (B) classifies correctly, each image counted once; NaN when no image's
      correctness is known (or the table has no ``correct_a`` / ``correct_b`` column);
    - ``note``: why a value above is a convention rather than an estimate ("" if none).

    The bootstrap of cluster ``c`` draws from ``numpy.random.default_rng([seed, c])``, so
    a cluster's interval depends on ``seed`` and its own id only.
    """
    _check_int_at_least(n_bootstrap, "n_bootstrap", 2)
    _check_open_unit(confidence, "confidence")
    _check_closed_unit(alpha, "alpha")
    check_seed(seed)
    table = _sorted_regions(regions, ("image", "cluster", "mass_a", "mass_b", "selected_by"))
    unknown = set(table["selected_by"].unique()) - set(_SELECTORS)
    if unknown:
        raise InvalidInputError(
            f"expected selected_by to be one of {', '.join(map(repr, _SELECTORS))}; got "
            f"{', '.join(sorted(map(repr, unknown)))}"
        )
    rows = [
        _cluster_row(int(cluster), group, n_bootstrap=n_bootstrap, confidence=confidence, seed=seed)
        for cluster, group in table.groupby("cluster", sort=True)
    ]
    if not rows:
        return _empty_cluster_table()
    result = pd.DataFrame(rows)
    result["q_value"] = benjamini_hochberg(result["p_value"].to_numpy())
    result["significant"] = result["q_value"].to_numpy() <= alpha
    # significant clusters first, each group by the size of the difference: the
    # z-score grows with the number of images, so ranking by it puts large clusters with
    # trivial differences above small clusters with large ones
    magnitude = np.abs(result["difference"].to_numpy(dtype=np.float64))
    order = np.lexsort(
        (result["cluster"].to_numpy(), -magnitude, ~result["significant"].to_numpy())
    )
    result = result.iloc[order].reset_index(drop=True)
    result["rank"] = np.arange(1, len(result) + 1)
    result = result[list(CLUSTER_TABLE_COLUMNS)]
    return result.astype(dict.fromkeys(_INT_COLUMNS, np.int64))


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
    cluster: int, group: pd.DataFrame, *, n_bootstrap: int, confidence: float, seed: int
) -> dict[str, Any]:
    mass_a = group["mass_a"].to_numpy(dtype=np.float64)
    mass_b = group["mass_b"].to_numpy(dtype=np.float64)
    differences = mass_b - mass_a
    _, image_index = np.unique(group["image"].to_numpy(), return_inverse=True)
    region_counts = np.bincount(image_index).astype(np.float64)
    image_sums = np.bincount(image_index, weights=differences)
    image_means = image_sums / region_counts
    n_images = region_counts.size
    difference = float(differences.mean())

    notes = []
    if n_images < 2:
        # every resampling is the one image again: no spread, whatever rounding says
        ci_low = ci_high = difference
        standard_error = 0.0
    else:
        rng = np.random.default_rng([seed, cluster])
        draws = _bootstrap_means(image_sums, region_counts, n_bootstrap, rng)
        tail = (1.0 - confidence) / 2.0
        ci_low, ci_high = (float(v) for v in np.quantile(draws, [tail, 1.0 - tail]))
        standard_error = float(np.std(draws, ddof=1))

    if difference == 0.0:
        standardized = 0.0
    elif standard_error > 0:
        standardized = difference / standard_error
    elif n_images < 2:
        standardized = math.nan
        notes.append("one image only: no standard error, z_score is NaN")
    else:
        analytic = float(np.std(image_means, ddof=1)) / math.sqrt(n_images)
        standardized = (
            difference / analytic if analytic > 0 else math.copysign(math.inf, difference)
        )

    if n_images < 2:
        p_value = 1.0
        notes.append("fewer than 2 images: no test, p_value set to 1")
    elif not np.any(image_means):
        p_value = 1.0
    else:
        from scipy.stats import wilcoxon

        p_value = float(wilcoxon(image_means).pvalue)

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
        "mean_a": float(mass_a.mean()),
        "mean_b": float(mass_b.mean()),
        "difference": difference,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "standard_error": standard_error,
        "z_score": standardized,
        "p_value": p_value,
        "accuracy_a": _image_accuracy(group, "correct_a"),
        "accuracy_b": _image_accuracy(group, "correct_b"),
        "note": "; ".join(notes),
    }


def _bootstrap_means(
    image_sums: np.ndarray, region_counts: np.ndarray, n_bootstrap: int, rng: np.random.Generator
) -> np.ndarray:
    """Region-weighted mean difference under ``n_bootstrap`` resamplings of the images.

    A resampling is a multinomial count per image (how often it was drawn); its mean is
    ``(W @ sums) / (W @ counts)``, the mean over the regions of all drawn images.
    """
    n_images = image_sums.size
    probabilities = np.full(n_images, 1.0 / n_images)
    chunk = max(1, _BOOTSTRAP_CELLS // n_images)
    means = []
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        weights = rng.multinomial(n_images, probabilities, size=size).astype(np.float64)
        numerator = weights @ image_sums
        denominator = weights @ region_counts
        drawn = denominator > 0  # always, as every image has a region; kept as a guard
        means.append(numerator[drawn] / denominator[drawn])
    return np.concatenate(means)


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


def _sorted_regions(regions: Any, required: Sequence[str]) -> pd.DataFrame:
    """A checked copy of ``regions`` sorted by cluster, image and region."""
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
    table = regions.copy()
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
        return {"significant": bool, "note": str}.get(name, np.float64)

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
