"""Can each model's maps be trusted? Quality measures inside a comparison.

``imacs.compare(..., quality=["deletion", "model-randomisation"])`` runs the named
quality measures (:mod:`imacs.quality`) on a seeded sample of the dataset's images, the
same sample for both models, with the maps the comparison already made: nothing is
attributed again except by the measures that must (the randomisation test explains the
images with randomised copies of each model). The answer is one table,
``comparison.quality``, with a row per model side and measure; the ``sanity-check``
alert (:func:`imacs.comparison.alerts.check_sanity`) and the report's "Can these maps be
trusted?" panel read it. It is saved as ``quality.csv`` and ``quality.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod
from imacs.errors import InvalidInputError
from imacs.jsonable import json_ready
from imacs.quality.base import QualityMeasure
from imacs.quality.evaluate import TABLE_COLUMNS

#: images a comparison's quality measures are run on unless told otherwise: enough for an
#: interval of a few hundredths on the randomisation test's similarity, few enough that
#: the measures cost about as much as the attribution of those images again
DEFAULT_QUALITY_IMAGES = 32
#: columns of ``comparison.quality``: the side first, then :data:`TABLE_COLUMNS`, then the
#: parameters the ``sanity-check`` alert selects its rows by (empty for other measures)
QUALITY_COLUMNS = ("side", *TABLE_COLUMNS, "mode", "similarity")
#: measure parameters that get a column of their own
PARAMETER_COLUMNS = ("mode", "similarity")
CSV_FILE = "quality.csv"
JSON_FILE = "quality.json"


def quality_sample(
    n_total: int, n_images: int, seed: int, fits: Callable[[int], bool] | None = None
) -> list[int]:
    """Positions of ``n_images`` of ``n_total`` images drawn under ``seed``, in order.

    The images are visited in an order drawn under ``seed`` and the first ``n_images``
    for which ``fits(i)`` holds are kept (all that fit when fewer do), so a large dataset
    is not read whole to draw a small sample.
    """
    rng = np.random.default_rng([seed, 0x9A11])  # a stream of its own under the seed
    chosen: list[int] = []
    for i in rng.permutation(n_total).tolist():
        if fits is None or fits(i):
            chosen.append(i)
            if len(chosen) == n_images:
                break
    return sorted(chosen)


def run_quality(
    models: Mapping[str, ModelAdapter],
    names: Mapping[str, str],
    images: np.ndarray,
    targets: Mapping[str, np.ndarray],
    maps: Mapping[str, np.ndarray],
    measures: Sequence[QualityMeasure],
    method: AttributionMethod,
    *,
    level: float,
    seed: int,
    batch_size: int,
    on_measure: Callable[[], None] | None = None,
) -> Any:
    """The quality table of both models: one row per side and measure.

    ``images`` are the sample, ``targets[side]`` each model's classes (in its own
    indices) and ``maps[side]`` its stored maps of the sample. Intervals are percentile
    bootstraps over the images at ``level``; measures draw their random numbers from
    ``seed``.
    """
    import pandas as pd

    rows = []
    for side, model in models.items():
        for measure in measures:
            result = measure.evaluate(
                model,
                images,
                targets[side],
                maps[side],
                method=method,
                seed=seed,
                batch_size=batch_size,
            )
            params = measure.get_params()
            rows.append(
                {"side": side, "model": names[side]}
                | result.summary(level, seed=seed)
                | {key: params.get(key) for key in PARAMETER_COLUMNS}
            )
            if on_measure is not None:
                on_measure()
    return pd.DataFrame(rows, columns=list(QUALITY_COLUMNS))


def save_quality(table: Any, folder: Path) -> list[Path]:
    """Write ``quality.csv`` (the table) and ``quality.json`` (the table, the measures with
    their parameters and the sampled images, from its ``attrs``); return their paths."""
    csv_path, json_path = folder / CSV_FILE, folder / JSON_FILE
    table.to_csv(csv_path, index=False)
    payload = {
        "columns": list(table.columns),
        "rows": [json_ready(row) for row in table.to_dict(orient="records")],
        "measures": json_ready(table.attrs.get("measures", [])),
        "images": [int(i) for i in table.attrs.get("images", [])],
    }
    json_path.write_text(json.dumps(payload, indent=1, allow_nan=True) + "\n")
    return [csv_path, json_path]


def load_quality(folder: Path) -> Any:
    """The table :func:`save_quality` wrote, or ``None`` when the folder has none.

    The measures with their parameters and the sampled images' positions in the dataset
    come back in the table's ``attrs`` (``"measures"`` and ``"images"``).
    """
    import pandas as pd

    path = folder / JSON_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
        table = pd.DataFrame(payload["rows"], columns=payload["columns"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"{str(path)!r} is not a quality table written by imacs ({exc}); save the "
            "comparison again"
        ) from exc
    table.attrs["measures"] = payload.get("measures", [])
    table.attrs["images"] = payload.get("images", [])
    return table
