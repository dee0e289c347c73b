"""The report's "Can these maps be trusted?" panels, from a comparison's quality table.

Reads ``comparison.quality`` (:mod:`imacs.comparison.quality`); the measures are defined
in :mod:`imacs.quality` and docs/quality.md. The verdict on each model's maps uses the
bar of the ``sanity-check`` alert (:data:`imacs.comparison.alerts.SANITY_SPEARMAN`), so
the panel and the alert never disagree.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from imacs.comparison.alerts import SANITY_SPEARMAN
from imacs.report.naming import model_label

if TYPE_CHECKING:
    from imacs.comparison.result import Comparison

#: the measure, mode and similarity the sanity verdict is read from (as the alert reads it)
SANITY_MEASURE = ("model-randomisation", "cascading", "spearman_abs")


def measure_summary(name: str) -> str:
    """The first line of an installed measure's docstring, or ``""`` when unknown."""
    from imacs.errors import ImacsError
    from imacs.plugins import get_host

    try:
        cls = get_host().registry.get("measure", name)
    except ImacsError:  # a measure saved by a plugin that is no longer installed
        return ""
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{number:.3f}" if math.isfinite(number) else "n/a"


def _is_sanity_row(row: dict[str, Any]) -> bool:
    measure, mode, similarity = SANITY_MEASURE
    return (
        row.get("measure") == measure
        and (row.get("mode") or mode) == mode
        and (row.get("similarity") or similarity) == similarity
    )


def verdict(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """``(kind, sentence)``: whether one model's maps pass the sanity check, in words.

    ``kind`` is ``"fail"``, ``"pass"`` or ``"none"`` (no cascading randomisation test
    with absolute Spearman similarity ran).
    """
    sanity = [row for row in rows if _is_sanity_row(row)]
    if not sanity:
        return (
            "none",
            "No sanity verdict: the cascading randomisation test (model-randomisation) did "
            "not run with its default similarity; faithfulness scores have no pass mark, "
            "compare them between the two models.",
        )
    mean = float(sanity[0]["mean"])
    if mean > SANITY_SPEARMAN:
        return (
            "fail",
            f"Fails the sanity check: with every layer re-initialised its maps keep a mean "
            f"absolute Spearman of {mean:.2f} (above {SANITY_SPEARMAN}) with the trained "
            "model's. They show the input more than what the model learnt, so differences "
            "from the other model's maps say more about the method than about the models.",
        )
    return (
        "pass",
        f"Passes the sanity check: its maps change when the weights are re-initialised "
        f"(mean absolute Spearman {mean:.2f}, at most {SANITY_SPEARMAN}).",
    )


def quality_view(comparison: Comparison) -> dict[str, Any] | None:
    """What the report's "Can these maps be trusted?" section shows; ``None`` without it."""
    table = getattr(comparison, "quality", None)
    if table is None or not len(table):
        return None
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in table.to_dict(orient="records")
    ]
    method = (getattr(comparison, "settings", None) or {}).get("method") or {}
    method_name = method.get("name") if isinstance(method, dict) else method
    view: dict[str, Any] = {
        "models": [],
        "threshold": SANITY_SPEARMAN,
        "method": str(method_name or "attribution"),
    }
    for side in ("a", "b"):
        rows = [row for row in records if row.get("side") == side]
        if not rows:
            continue
        measures = []
        for row in rows:
            level = row.get("level")
            details = [row[key] for key in ("mode", "similarity") if row.get(key)]
            measures.append(
                {
                    "measure": str(row["measure"]),
                    "details": ", ".join(map(str, details)),
                    "mean": _number(row.get("mean")),
                    "ci_low": _number(row.get("ci_low")),
                    "ci_high": _number(row.get("ci_high")),
                    "level": f"{100 * float(level):.0f}%" if level is not None else "",
                    "n_images": int(row.get("n_images") or 0),
                    "better": "higher" if bool(row.get("higher_is_better")) else "lower",
                    "meaning": measure_summary(str(row["measure"])),
                }
            )
        sanity = next((row for row in rows if _is_sanity_row(row)), None)
        kind, sentence = verdict(rows)
        view["models"].append(
            {
                "side": side.upper(),
                "key": side,
                "name": model_label(comparison, side),
                "measures": measures,
                "sanity": None
                if sanity is None
                else {
                    "after": _number(sanity.get("mean")),
                    "ci_low": _number(sanity.get("ci_low")),
                    "ci_high": _number(sanity.get("ci_high")),
                },
                "verdict": kind,
                "sentence": sentence,
            }
        )
    return view if view["models"] else None


def quality_line(comparison: Comparison) -> str | None:
    """One line for the notebook summary: each model's sanity verdict; ``None`` without."""
    view = quality_view(comparison)
    if view is None:
        return None
    words = {"fail": "fails", "pass": "passes", "none": "not checked"}
    parts = []
    for model in view["models"]:
        said = words[model["verdict"]]
        if model["sanity"] is not None:
            said += f" ({model['sanity']['after']} after randomisation)"
        parts.append(f"{model['side']} {model['name']} {said}")
    names = sorted({m["measure"] for model in view["models"] for m in model["measures"]})
    return (
        "Can these maps be trusted? Sanity check: "
        + "; ".join(parts)
        + f". Measures: {', '.join(names)} (comparison.quality)."
    )
