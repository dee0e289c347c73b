"""Checks a comparison runs on itself: signs that its numbers do not mean what they seem.

A comparison always produces clusters, differences and q-values, even when a model is fed
images in the wrong range, when the two models number their classes differently, or when
the attribution integral has not converged. Each check below looks for one such setup in a
finished :class:`~imacs.comparison.result.Comparison` (its tables, the models'
descriptions, what the run learnt about the data, the settings) and answers an
:class:`Alert` or ``None``. They read nothing else, so they run the same on a comparison
loaded from disk, and a check can be tested, named and turned off on its own
(``imacs.compare(..., ignore_alerts=["input-range"])``).

``docs/comparison.md`` ("Alerts") gives every check's threshold and the reason for it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.errors import InvalidInputError

if TYPE_CHECKING:
    from imacs.comparison.result import Comparison

SEVERITIES = ("warning", "error")

#: a model is at chance unless a one-sided binomial test puts it above chance at this level
CHANCE_P_VALUE = 0.01
#: ... and it closes at least this share of the gap between chance and 100%
CHANCE_MARGIN = 0.1
#: the widest span of values, after the model's declared preprocessing, of any common
#: input convention: [0, 1] spans 1, [-1, 1] spans 2, ImageNet-normalised [0, 1] about 4.4
WIDEST_INPUT_SPAN = 20.0
#: the narrowest: below this the images look nearly uniform to the network
NARROWEST_INPUT_SPAN = 0.1
#: ... unless the data themselves span less than this
FLAT_DATA_SPAN = 0.5
#: a method's ``pixel_range`` fits the data unless they overshoot it by this share of it
PIXEL_RANGE_SLACK = 0.5
#: the best class permutation must reach this many times the identity's agreement ...
PERMUTATION_FACTOR = 2.0
#: ... and this many more points of agreement, and at least this agreement overall
PERMUTATION_GAIN = 0.30
PERMUTATION_FLOOR = 0.5
#: ... and beat the best permutation of every one of this many shuffles of B's predictions
PERMUTATION_SHUFFLES = 99
#: a map has not converged when its completeness error exceeds this share of its total
#: absolute attribution; on the demo's networks this flags IG with 2 and 4 steps and
#: passes 8 and more (docs/comparison.md has the measurement) ...
CONVERGENCE_TOLERANCE = 0.02
#: ... and the comparison is flagged when more than this share of its maps has not
CONVERGENCE_SHARE = 0.1
#: fewer images than this make every interval and test unreliable
MIN_IMAGES = 20
#: clusters with regions from fewer images than this are flagged
MIN_CLUSTER_IMAGES = 10
#: a model's maps fail the sanity check when, with every layer re-initialised from the
#: logits down, their mean absolute-value Spearman correlation with the trained model's
#: maps exceeds this. On the demo CNN (benchmarks/sanity_checks.py, 64 images, PyTorch and
#: Keras) plain gradients score 0.07-0.09 and gradient x input and IG 0.53-0.55: the bar
#: lies between, well clear of both
SANITY_SPEARMAN = 0.3


@dataclass(frozen=True)
class Alert:
    """Something a comparison found wrong with itself.

    ``code`` is a stable identifier (``"chance-accuracy"``); ``severity`` is ``"error"``
    when the comparison's numbers are likely meaningless as they stand, ``"warning"``
    when they need care; ``message`` says in plain words what was found, with the
    numbers, and what to do; ``details`` holds the numbers as data.
    """

    code: str
    severity: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise InvalidInputError(
                f"expected an alert severity in {', '.join(SEVERITIES)}; got {self.severity!r}"
            )

    def __str__(self) -> str:
        return f"{self.severity} [{self.code}]: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """The alert as plain data, as ``comparison.json`` keeps it."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The alert from :meth:`as_dict`'s plain data."""
        return cls(
            code=str(data["code"]),
            severity=str(data["severity"]),
            message=str(data["message"]),
            details=dict(data.get("details") or {}),
        )


Check = Callable[["Comparison"], "Alert | None"]


# -- a model at chance -------------------------------------------------------------------


@dataclass
class _Accuracy:
    side: str
    n: int
    correct: int
    chance: float
    majority: float
    uniform: float
    p_value: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def near_chance(self) -> bool:
        bar = self.chance + CHANCE_MARGIN * (1 - self.chance)
        return self.p_value >= CHANCE_P_VALUE or self.accuracy < bar


def _accuracy(comparison: Comparison, side: str) -> _Accuracy | None:
    """Model ``side``'s accuracy on the labelled images, against guessing; None without labels."""
    from scipy.stats import binomtest

    images = comparison.images
    if "label" not in images or f"correct_{side}" not in images:
        return None
    labelled = np.asarray(images["label"] >= 0)
    n = int(labelled.sum())
    if n == 0:
        return None
    labels = np.asarray(images["label"], dtype=np.int64)[labelled]
    correct = int(np.asarray(images[f"correct_{side}"].fillna(False), dtype=bool)[labelled].sum())
    n_classes = (comparison.models.get("a") or {}).get("num_classes") or int(labels.max()) + 1
    majority = float(np.bincount(labels).max() / n)
    uniform = 1.0 / n_classes
    # always answering the commonest label scores ``majority``, which is never below 1/K
    # when every class occurs; with few images it is the higher bar
    chance = max(majority, uniform)
    p_value = float(binomtest(correct, n, min(chance, 1.0), alternative="greater").pvalue)
    return _Accuracy(side, n, correct, chance, majority, uniform, p_value)


def check_chance_accuracy(comparison: Comparison) -> Alert | None:
    """A model whose accuracy on the labelled images is not clearly above guessing.

    Chance is the better of always answering the commonest label and 1/K. A model is
    clearly above it when a one-sided exact binomial test rejects chance at
    :data:`CHANCE_P_VALUE` *and* its accuracy closes at least :data:`CHANCE_MARGIN` of
    the gap from chance to 100%, so that a large dataset cannot make a useless model
    "significant". Needs labels.
    """
    found = [a for a in (_accuracy(comparison, side) for side in ("a", "b")) if a is not None]
    weak = [a for a in found if a.near_chance]
    if not weak:
        return None
    parts = [
        f"Model {a.side.upper()} ({comparison.model_name(a.side)}) is right on "
        f"{a.correct} of {a.n} labelled images ({a.accuracy:.1%}), where always answering "
        f"the commonest label scores {a.majority:.1%} and a uniform guess {a.uniform:.1%} "
        f"(one-sided binomial test against {a.chance:.1%}: p = {a.p_value:.2g})"
        for a in weak
    ]
    both = len(weak) == 2
    return Alert(
        code="chance-accuracy",
        severity="error",
        message=(
            "; ".join(parts)
            + f". {'Both models are' if both else 'It is'} no better than guessing, so "
            f"{'their' if both else 'its'} attributions explain guesses, and the clusters "
            "compare noise. Check that the images are in the range the model was trained on "
            "(an adapter's preprocessing, e.g. preprocessing={'scale': 1/255} for 0-255 "
            "images), that the labels are class indices in the model's own order "
            "(class_mapping= for the other model), and that the right weights were loaded."
        ),
        details={
            a.side: {
                "accuracy": a.accuracy,
                "n_labelled": a.n,
                "chance": a.chance,
                "majority": a.majority,
                "uniform": a.uniform,
                "p_value": a.p_value,
            }
            for a in weak
        },
    )


# -- pixel values in the wrong range ------------------------------------------------------


def _data_range(comparison: Comparison) -> tuple[np.ndarray, np.ndarray] | None:
    dataset = comparison.dataset or {}
    low, high = dataset.get("pixel_min"), dataset.get("pixel_max")
    if low is None or high is None:
        return None
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _network_range(
    low: np.ndarray, high: np.ndarray, preprocessing: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the lowest and highest value the network receives after preprocessing."""
    scale = float(preprocessing.get("scale") or 1.0)
    ends = np.stack([low * scale, high * scale])
    for key in ("mean", "std"):
        value = preprocessing.get(key)
        if value is not None:
            value = np.asarray(value, dtype=np.float64)
            ends = ends - value if key == "mean" else ends / value
    return ends.min(axis=0), ends.max(axis=0)


def _suggested_scale(high: float) -> str:
    if high <= 255.5:
        return "1/255"
    if high <= 65535.5:
        return "1/65535"
    return f"1/{high:.6g}"


def check_input_range(comparison: Comparison) -> Alert | None:
    """Pixel values that, after a model's declared preprocessing, fit no input convention.

    The run records each channel's lowest and highest pixel value; an adapter that
    describes its ``preprocessing`` (``scale``, ``mean``, ``std``) says what the network
    receives. Every common convention spans at most about 4.4 (ImageNet normalisation of
    [0, 1] images) and at least several tenths, so a span wider than
    :data:`WIDEST_INPUT_SPAN` (0-255 images with no scaling) or narrower than
    :data:`NARROWEST_INPUT_SPAN` (0-1 images scaled by 1/255 again) is flagged. What a
    network was trained on is not recorded anywhere, so a model that rescales its input
    itself (a Keras ``Rescaling`` layer) is flagged too: the alert is an error when that
    model is also at chance, a warning otherwise. Adapters that do not describe their
    preprocessing (``FunctionAdapter``) are not checked.
    """
    data = _data_range(comparison)
    if data is None:
        return None
    low, high = data
    data_low, data_high = float(low.min()), float(high.max())
    findings = []
    for side in ("a", "b"):
        preprocessing = (comparison.models.get(side) or {}).get("preprocessing")
        if not isinstance(preprocessing, Mapping):
            continue
        try:
            net_low, net_high = _network_range(low, high, preprocessing)
        except (TypeError, ValueError):  # a description that does not fit the channels
            continue
        span = float((net_high - net_low).max())
        seen = (
            f"Model {side.upper()} ({comparison.model_name(side)}) receives values from "
            f"{float(net_low.min()):.4g} to {float(net_high.max()):.4g} after its "
            f"preprocessing {_described(preprocessing)}"
        )
        scaled = float(preprocessing.get("scale") or 1.0) != 1.0
        if span > WIDEST_INPUT_SPAN:
            advice = ": " + (
                "check the adapter's preprocessing against the model's training"
                if scaled
                else "if it was trained on 0-1 images, give its adapter preprocessing="
                f"{{'scale': {_suggested_scale(data_high)}}} (keeping any mean and std)"
            )
        elif span < NARROWEST_INPUT_SPAN and data_high - data_low > FLAT_DATA_SPAN:
            advice = ", so every image looks nearly flat to it: " + (
                "the images are probably scaled twice; drop the adapter's scale"
                if scaled
                else "check the adapter's mean and std against the images' range"
            )
        else:
            continue
        accuracy = _accuracy(comparison, side)
        findings.append((side, seen + advice, span, bool(accuracy and accuracy.near_chance)))
    if not findings:
        return None
    at_chance = [side.upper() for side, _, _, chance in findings if chance]
    message = (
        f"The images' pixel values range from {data_low:.4g} to {data_high:.4g}. "
        + "; ".join(text for _, text, _, _ in findings)
        + ". If the model rescales its input itself (a Rescaling layer), ignore this with "
        "ignore_alerts=['input-range']."
    )
    if len(at_chance) == 1:
        message += f" Model {at_chance[0]} is also at chance."
    elif at_chance:
        message += " Both models are also at chance."
    return Alert(
        code="input-range",
        severity="error" if at_chance else "warning",
        message=message,
        details={
            "pixel_min": data_low,
            "pixel_max": data_high,
            "input_span": {side: span for side, _, span, _ in findings},
        },
    )


def _described(preprocessing: Mapping[str, Any]) -> str:
    """The preprocessing as the user would write it, or "none" for the identity."""
    shown = [
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in preprocessing.items()
        if value is not None and (key, value) not in (("scale", 1.0), ("channel_order", "rgb"))
    ]
    return "(" + ", ".join(shown) + ")" if shown else "(none)"


def check_method_pixel_range(comparison: Comparison) -> Alert | None:
    """Images outside the ``pixel_range`` the attribution method was given, where it matters.

    Integrated Gradients and Split IG take ``pixel_range=(low, high)`` (default
    ``(0, 1)``) to place their "black", "white" and "uniform" baselines; PAMI maps it to
    8 bits for its segmentations. The alert fires when the data overshoot that range by
    more than :data:`PIXEL_RANGE_SLACK` of its width at an end the method uses: "white"
    and "uniform" use the high end, "black" and "uniform" the low end, and a method
    without a ``baselines`` (or ``baseline``) parameter uses both.
    """
    data = _data_range(comparison)
    method = (comparison.settings or {}).get("method") or {}
    params = (method.get("params") or {}) if isinstance(method, Mapping) else {}
    declared = params.get("pixel_range")
    if data is None or not isinstance(declared, list | tuple) or len(declared) != 2:
        return None
    low, high = (float(v) for v in declared)
    data_low, data_high = float(data[0].min()), float(data[1].max())
    slack = PIXEL_RANGE_SLACK * (high - low)
    named = next((key for key in ("baselines", "baseline") if key in params), None)
    if named is not None:
        specs = params[named] if isinstance(params[named], list) else [params[named]]
        uses_high = any(spec in ("white", "uniform") for spec in specs)
        uses_low = any(spec in ("black", "uniform") for spec in specs)
    else:
        uses_high = uses_low = True
    if not ((uses_high and data_high > high + slack) or (uses_low and data_low < low - slack)):
        return None
    name = method.get("name", "the attribution method")
    suggested = (
        math.floor(data_low) if data_low < low else low,
        math.ceil(data_high) if data_high > high else high,
    )
    return Alert(
        code="method-pixel-range",
        severity="warning",
        message=(
            f"{name} was given pixel_range=({low:g}, {high:g}), but the images range from "
            f"{data_low:.4g} to {data_high:.4g}: what it derives from that range (black, white "
            "or uniform-noise baselines, PAMI's segmentations) does not fit these images. Pass "
            f"method_params={{'pixel_range': ({suggested[0]:g}, {suggested[1]:g})}}."
        ),
        details={"pixel_range": [low, high], "pixel_min": data_low, "pixel_max": data_high},
    )


# -- classes in another order -------------------------------------------------------------


def _confusion(pred_a: np.ndarray, pred_b: np.ndarray, n_classes: int) -> np.ndarray:
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (pred_a, pred_b), 1)
    return confusion


def _best_renumbering(confusion: np.ndarray) -> tuple[float, np.ndarray]:
    """The agreement of the best one-to-one renumbering, and B's class for each of A's."""
    from scipy.optimize import linear_sum_assignment

    rows, columns = linear_sum_assignment(confusion, maximize=True)
    permutation = np.arange(len(confusion))
    permutation[rows] = columns
    return float(confusion[rows, columns].sum() / confusion.sum()), permutation


def check_class_permutation(comparison: Comparison) -> Alert | None:
    """Predictions of A and B that agree far better once B's classes are renumbered.

    The confusion matrix of A's and B's predictions is solved as an assignment problem
    (``scipy.optimize.linear_sum_assignment``) for the renumbering of B's classes that
    maximises agreement. It is flagged when that agreement is at least
    :data:`PERMUTATION_FACTOR` times the agreement as numbered, at least
    :data:`PERMUTATION_GAIN` higher and at least :data:`PERMUTATION_FLOOR`, and higher
    than the best renumbering of each of :data:`PERMUTATION_SHUFFLES` random shuffles of
    B's predictions: with few images per class a renumbering fitted to the data agrees
    well by chance alone (two unrelated 10-class models on 20 images pass the first
    three tests a third of the time).
    """
    images = comparison.images
    if "pred_a" not in images or "pred_b" not in images:
        return None
    pred_a, pred_b = np.asarray(images["pred_a"]), np.asarray(images["pred_b"])
    mapped = (pred_a >= 0) & (pred_b >= 0)
    pred_a, pred_b = pred_a[mapped].astype(np.int64), pred_b[mapped].astype(np.int64)
    if len(pred_a) < 2:
        return None
    n_classes = int(max(pred_a.max(), pred_b.max())) + 1
    n_classes = max(n_classes, int((comparison.models.get("a") or {}).get("num_classes") or 0))
    identity = float(np.mean(pred_a == pred_b))
    confusion = _confusion(pred_a, pred_b, n_classes)
    best, permutation = _best_renumbering(confusion)
    if not (
        best >= PERMUTATION_FACTOR * identity
        and best - identity >= PERMUTATION_GAIN
        and best >= PERMUTATION_FLOOR
    ):
        return None
    rng = np.random.default_rng(0)
    for _ in range(PERMUTATION_SHUFFLES):
        if _best_renumbering(_confusion(pred_a, rng.permutation(pred_b), n_classes))[0] >= best:
            return None
    # pred_b is in A's class indices through the run's class_mapping; name B's own outputs
    current = (comparison.settings or {}).get("class_mapping")
    a_to_b = {int(k): int(v) for k, v in current.items()} if current else {}
    mapping = {int(a): a_to_b.get(int(b), int(b)) for a, b in enumerate(permutation)}
    moved = {a: b for a, b in mapping.items() if b != a_to_b.get(a, a)}
    shown = mapping if len(mapping) <= 20 else moved
    listing = ", ".join(f"{a}: {b}" for a, b in list(shown.items())[:40])
    if len(shown) > 40:
        listing += ", ..."
    # a class neither model predicted on a matching image is paired by elimination only
    guessed = [a for a in range(n_classes) if confusion[a, permutation[a]] == 0]
    caveat = (
        f" No image supports the entries for class(es) {', '.join(map(str, guessed[:20]))}"
        f"{', ...' if len(guessed) > 20 else ''} of A: they are guesses."
        if guessed
        else ""
    )
    return Alert(
        code="class-permutation",
        severity="error",
        message=(
            f"A and B predict the same class on {identity:.1%} of {len(pred_a)} images, but "
            f"on {best:.1%} once B's classes are renumbered ({len(moved)} of {n_classes} "
            "classes move): the two models probably number their classes differently, so "
            "every per-class number compares different classes. If B's outputs are in "
            "another order, pass class_mapping={class of A: class of B}; the best fit is "
            + ("class_mapping={" if shown is mapping else "(the classes that move) {")
            + listing
            + "}"
            + ("" if shown is mapping else ", the whole mapping is in this alert's details")
            + "."
            + caveat
        ),
        details={
            "agreement": identity,
            "permuted_agreement": best,
            "n_images": len(pred_a),
            "class_mapping": {str(a): b for a, b in mapping.items()},
            "guessed": guessed,
        },
    )


# -- attributions not converged -------------------------------------------------------------


def _share(value: float) -> str:
    """A share as a percentage, or as "N times" when the error dwarfs the map."""
    return f"{value:.1%}" if value < 1 else f"{value:.3g} times"


def check_convergence(comparison: Comparison) -> Alert | None:
    """Path-method maps whose completeness error is large against their attribution.

    Integrated Gradients and the other path methods distribute ``f(x) - f(baseline)``
    over the pixels; ``convergence_delta`` is by how much the map's sum misses it. The
    images table holds ``|delta|`` divided by the map's total absolute attribution (of
    the channel-summed map: the total every map is normalised by), so it is in the unit
    of every mass and difference of the tables (``convergence_delta_a``, ``_b``). It is
    a lower bound of the map's error in that unit: errors of opposite sign cancel in
    ``delta``. The alert fires when more than :data:`CONVERGENCE_SHARE` of a model's
    maps miss by more than :data:`CONVERGENCE_TOLERANCE`.
    """
    images = comparison.images
    findings = {}
    for side in ("a", "b"):
        column = f"convergence_delta_{side}"
        if column not in images:
            continue
        values = np.asarray(images[column], dtype=np.float64)
        values = values[~np.isnan(values)]
        if not values.size:
            continue
        over = int((values > CONVERGENCE_TOLERANCE).sum())
        if over / values.size > CONVERGENCE_SHARE:
            findings[side] = {
                "n_over": over,
                "n_images": int(values.size),
                "share": over / values.size,
                "median": float(np.median(values)),
                "max": float(values.max()),
            }
    if not findings:
        return None
    method = (comparison.settings or {}).get("method") or {}
    params = (method.get("params") or {}) if isinstance(method, Mapping) else {}
    name = method.get("name", "the attribution method") if isinstance(method, Mapping) else method
    steps = next((k for k in ("n_steps", "steps", "x_steps") if k in params), None)
    advice = (
        f"raise {steps} (now {params[steps]}), e.g. method_params={{'{steps}': "
        f"{max(4 * int(params[steps]), 32)}}}"
        if steps is not None and isinstance(params[steps], int)
        else "raise the method's number of steps"
    )
    if steps is not None and params[steps] == "auto" and "max_steps" in params:
        # adaptive IG: the deltas are what stopped the doubling, so let it go further
        advice = (
            f"lower tolerance (now {params.get('tolerance')}) or raise max_steps "
            f"(now {params['max_steps']})"
        )
    parts = [
        f"for model {side.upper()}, {f['n_over']} of {f['n_images']} maps ({f['share']:.0%}) "
        f"miss by more than {CONVERGENCE_TOLERANCE:.0%} of their total attribution (median "
        f"{_share(f['median'])}, largest {_share(f['max'])})"
        for side, f in findings.items()
    ]
    return Alert(
        code="convergence",
        severity="warning",
        message=(
            f"The {name} maps do not add up to the models' score changes: "
            + "; ".join(parts)
            + ". Differences between clusters of that size can be the integral's "
            f"approximation error rather than the models; {advice}."
        ),
        details={"tolerance": CONVERGENCE_TOLERANCE, **findings},
    )


# -- too little data ------------------------------------------------------------------------


def check_few_images(comparison: Comparison) -> Alert | None:
    """A comparison on fewer than :data:`MIN_IMAGES` images.

    The image is the unit of every test and interval, and the clusters share the images
    out: with fewer than 20, most clusters hold a handful, the sign-flip test of a
    cluster with ``n`` images cannot give a p-value below ``2 / 2**n``, and accuracy and
    agreement (and the checks built on them) have little to go on.
    """
    n = len(comparison.images)
    if n >= MIN_IMAGES:
        return None
    return Alert(
        code="few-images",
        severity="warning",
        message=(
            f"The comparison rests on {n} images, fewer than {MIN_IMAGES}. Every test and "
            "interval counts images, and the clusters share them out, so their tests can "
            "hardly reject and their intervals are wide; the accuracies and the agreement "
            "are rough too. Compare on more images."
        ),
        details={"n_images": n, "minimum": MIN_IMAGES},
    )


def check_small_clusters(comparison: Comparison) -> Alert | None:
    """Clusters with regions from fewer than :data:`MIN_CLUSTER_IMAGES` images, or no interval.

    A cluster's test and interval count the images it has regions in. With ``n`` images
    the sign-flip test's smallest two-sided p-value is ``2 / 2**n``: 0.0625 for 5 images,
    never significant, and 0.002 for 10, just enough to pass the Benjamini-Hochberg bar
    ``alpha / m`` of the first of ``m = 20`` clusters at ``alpha = 0.05``. A cluster whose
    interval is infinite (too few images for any test at its level to reject) is flagged
    whatever its size.
    """
    clusters = comparison.clusters
    if "n_images" not in clusters or not len(clusters):
        return None
    n_images = np.asarray(clusters["n_images"], dtype=np.float64)
    unbounded = np.zeros(len(clusters), dtype=bool)
    for column in ("ci_low", "ci_high"):
        if column in clusters:
            unbounded |= ~np.isfinite(np.asarray(clusters[column], dtype=np.float64))
    small = clusters[(n_images < MIN_CLUSTER_IMAGES) | unbounded]
    if not len(small):
        return None
    listing = ", ".join(
        f"{int(row.cluster)} ({int(row.n_images)} images)" for row in small.head(10).itertuples()
    )
    if len(small) > 10:
        listing += f" and {len(small) - 10} more"
    n_unbounded = int(unbounded.sum())
    message = (
        f"{len(small)} of {len(clusters)} clusters have regions from fewer than "
        f"{MIN_CLUSTER_IMAGES} images or no finite interval: {listing}"
    )
    if n_unbounded:
        message += f" ({n_unbounded} with an infinite interval)"
    message += (
        ". Their differences rest on too few images to tell from chance. Compare on more "
        "images, or ask for fewer clusters (n_clusters=)."
    )
    return Alert(
        code="small-clusters",
        severity="warning",
        message=message,
        details={
            "minimum": MIN_CLUSTER_IMAGES,
            "clusters": {str(int(row.cluster)): int(row.n_images) for row in small.itertuples()},
        },
    )


def check_sanity(comparison: Comparison) -> Alert | None:
    """A model whose maps barely change when its weights are re-initialised (Adebayo et al.).

    Reads the comparison's ``quality`` table (:mod:`imacs.comparison.quality`: one row
    per model side and measure, with ``side``, ``measure``, ``mean``, and the ``mode`` and
    ``similarity`` of the measures that have them): the rows of ``model-randomisation``
    in ``cascading`` mode with ``spearman_abs`` similarity (the measure's defaults when
    the columns are absent or empty). A model is flagged when that mean
    exceeds :data:`SANITY_SPEARMAN`: its maps then show the input more than what the
    model learnt, and the differences between the two models' maps say more about the
    attribution method than about the models.
    """
    table = getattr(comparison, "quality", None)
    if table is None or not len(table) or "measure" not in table or "mean" not in table:
        return None
    rows = table[table["measure"] == "model-randomisation"]
    if "mode" in rows:
        rows = rows[rows["mode"].fillna("cascading") == "cascading"]
    if "similarity" in rows:
        rows = rows[rows["similarity"].fillna("spearman_abs") == "spearman_abs"]
    failing = rows[np.asarray(rows["mean"], dtype=np.float64) > SANITY_SPEARMAN]
    if not len(failing):
        return None
    method = comparison.settings.get("method") or "the attribution method"
    if isinstance(method, Mapping):  # a saved comparison's settings: {"name": ..., "params": ...}
        method = method.get("name") or "the attribution method"
    named = []
    for row in failing.itertuples():
        side = str(getattr(row, "side", "?"))
        name = (comparison.models.get(side) or {}).get("name") or f"model {side.upper()}"
        named.append((side, name, float(row.mean)))
    listing = ", ".join(f"{name} ({mean:.2f})" for _, name, mean in named)
    return Alert(
        code="sanity-check",
        severity="warning",
        message=(
            f"the {method} maps of {listing} stay similar to those of the same network with "
            "every layer re-initialised (mean absolute Spearman correlation above "
            f"{SANITY_SPEARMAN}, the cascading randomisation test): they show the input more "
            "than what the model learnt, so differences between the two models' maps say "
            "more about the method than about the models. Methods that multiply by the "
            "input (gradient x input, IG from a black baseline) do this; compare with "
            "'gradient' or 'smoothgrad', or see docs/quality.md"
        ),
        details={
            "threshold": SANITY_SPEARMAN,
            "similarity": {side: mean for side, _, mean in named},
        },
    )


#: every check, by the code of the alert it answers, in the order alerts are listed
CHECKS: dict[str, Check] = {
    "chance-accuracy": check_chance_accuracy,
    "input-range": check_input_range,
    "class-permutation": check_class_permutation,
    "method-pixel-range": check_method_pixel_range,
    "convergence": check_convergence,
    "few-images": check_few_images,
    "small-clusters": check_small_clusters,
    "sanity-check": check_sanity,
}


def check_ignored(ignore: Iterable[str]) -> tuple[str, ...]:
    """``ignore`` as a tuple of known alert codes; raise naming them otherwise."""
    codes = (ignore,) if isinstance(ignore, str) else tuple(ignore)
    unknown = [code for code in codes if code not in CHECKS]
    if unknown:
        raise InvalidInputError(
            f"unknown alert code(s) {', '.join(map(repr, unknown))} in ignore_alerts; the "
            f"codes are {', '.join(CHECKS)}"
        )
    return codes


def find_alerts(comparison: Comparison, *, ignore: Iterable[str] = ()) -> list[Alert]:
    """Run every check but those in ``ignore``; errors first, then warnings.

    A check that fails is reported as a warning naming it, and the others still run: the
    checks come after a run that may have taken hours, whose result must not be lost.
    """
    skipped = check_ignored(ignore)
    alerts = []
    for code, check in CHECKS.items():
        if code in skipped:
            continue
        try:
            alert = check(comparison)
        except Exception as exc:
            warnings.warn(
                f"the {code!r} check failed ({type(exc).__name__}: {exc}) and was skipped; "
                "the comparison itself is complete. Please report this",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        if alert is not None:
            alerts.append(alert)
    return sorted(alerts, key=lambda alert: SEVERITIES.index(alert.severity), reverse=True)
