"""Run several quality measures on one model's maps, and write what they found.

``evaluate_quality`` is what ``imacs evaluate`` and ``imacs.compare(..., quality=...)``
run: it computes the maps once (or takes them), then each named measure on them.
``quality_table`` turns the results into one row per measure (mean and a bootstrap
interval over images); ``write_evaluation`` writes that table as CSV and JSON, the
per-image scores, and a figure of the mean curve of every measure that has curves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import DEFAULT_BATCH_SIZE, AttributionMethod
from imacs.errors import InvalidInputError
from imacs.jsonable import json_ready
from imacs.quality.base import QualityMeasure, QualityResult
from imacs.registry import get_component

#: the measures ``imacs evaluate`` runs when none is named: cheap, and the most cited
DEFAULT_MEASURES = ("insertion", "deletion")

#: columns of the quality table, in order
TABLE_COLUMNS = (
    "model",
    "measure",
    "n_images",
    "mean",
    "ci_low",
    "ci_high",
    "level",
    "higher_is_better",
)


def evaluate_quality(
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    measures: Sequence[str | QualityMeasure] = DEFAULT_MEASURES,
    measure_params: Mapping[str, Mapping[str, Any]] | None = None,
    method: str | AttributionMethod = "integrated-gradients",
    method_params: Mapping[str, Any] | None = None,
    maps: np.ndarray | None = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, QualityResult]:
    """Each measure's :class:`QualityResult` on ``model``'s maps of ``images``, by name.

    ``maps`` are computed with ``method`` when not given; measures that recompute maps
    receive the method either way. ``measure_params`` holds parameters by measure name.
    """
    params_of = dict(measure_params or {})
    unknown = sorted(set(params_of) - {m for m in measures if isinstance(m, str)})
    if unknown:
        raise InvalidInputError(
            f"parameters given for measure(s) {', '.join(unknown)} that are not being run; "
            f"the measures are: {', '.join(_name(m) for m in measures)}"
        )
    chosen = [
        get_component("measure", m, **params_of.get(m, {})) if isinstance(m, str) else m
        for m in measures
    ]
    attribution = (
        get_component("attribution_method", method, **dict(method_params or {}))
        if isinstance(method, str)
        else method
    )
    if maps is None:
        maps = attribution.attribute(model, images, targets, batch_size=batch_size).maps
    return {
        measure.name: measure.evaluate(
            model, images, targets, maps, method=attribution, seed=seed, batch_size=batch_size
        )
        for measure in chosen
    }


def _name(measure: str | QualityMeasure) -> str:
    return measure if isinstance(measure, str) else measure.name


def quality_rows(
    results: Mapping[str, QualityResult],
    *,
    model: str = "",
    level: float = 0.95,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per measure: the model, the mean score and its bootstrap interval."""
    return [{"model": model} | result.summary(level, seed=seed) for result in results.values()]


def quality_table(
    results: Mapping[str, QualityResult], *, model: str = "", level: float = 0.95, seed: int = 0
) -> Any:
    """:func:`quality_rows` as a pandas DataFrame with :data:`TABLE_COLUMNS`."""
    import pandas as pd

    rows = quality_rows(results, model=model, level=level, seed=seed)
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def write_evaluation(
    results: Mapping[str, QualityResult],
    out_dir: str | Path,
    *,
    image_names: Sequence[str] | None = None,
    model: str = "",
) -> list[Path]:
    """Write ``quality.csv``, ``quality.json``, ``per_image.csv`` and ``curves.png``.

    Returns the paths written. ``curves.png`` shows, for every measure with curves, the
    mean curve over images with its 2.5-97.5% band of images; it is left out when no
    measure has curves.
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = quality_table(results, model=model)
    written = [out / "quality.csv", out / "quality.json", out / "per_image.csv"]
    table.to_csv(written[0], index=False)
    payload = {
        "model": model,
        "measures": [
            row | {"params": json_ready(results[row["measure"]].params)}
            for row in table.to_dict(orient="records")
        ],
    }
    written[1].write_text(json.dumps(payload, indent=2, default=json_ready) + "\n")
    n = len(next(iter(results.values()))) if results else 0
    per_image = pd.DataFrame(
        {"image": list(image_names) if image_names is not None else list(range(n))}
        | {name: result.scores for name, result in results.items()}
    )
    per_image.to_csv(written[2], index=False)
    figure = curves_figure(results, title=model)
    if figure is not None:
        figure.savefig(out / "curves.png", dpi=110, bbox_inches="tight")
        written.append(out / "curves.png")
        import matplotlib.pyplot as plt

        plt.close(figure)
    return written


def curves_figure(results: Mapping[str, QualityResult], *, title: str = "") -> Any:
    """A matplotlib figure of each measure's mean curve, or ``None`` without curves."""
    with_curves = {k: r for k, r in results.items() if r.curves is not None}
    if not with_curves:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        1, len(with_curves), figsize=(3.2 * len(with_curves), 2.8), squeeze=False
    )
    for axis, (name, result) in zip(axes[0], with_curves.items(), strict=True):
        curves = np.asarray(result.curves)
        x = np.asarray(result.curve_x)
        low, high = np.quantile(curves, [0.025, 0.975], axis=0)
        axis.fill_between(x, low, high, alpha=0.25, linewidth=0)
        axis.plot(x, curves.mean(axis=0), linewidth=2)
        better = "higher" if result.higher_is_better else "lower"
        axis.set_title(f"{name}: {result.mean:.3g} ({better} is better)", fontsize=9)
        axis.set_xlabel("share of pixels changed", fontsize=8)
        axis.tick_params(labelsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
