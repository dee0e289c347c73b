"""The comparison's answer in one or two sentences, for the report, notebook and CLI.

Which cluster differs most, in which direction, by how much, how sure we are, and what
hiding its regions does to each model. Every number comes from the clusters table as it
is; nothing here computes a statistic of its own.
"""

from __future__ import annotations

import math
from typing import Any

from imacs.comparison.naming import names_of
from imacs.report.style import format_q


def headline(comparison: Any) -> str:
    """The top-ranked cluster in words; says so plainly when no cluster stands out."""
    clusters = comparison.clusters
    if clusters is None or clusters.empty:
        return "No salient regions were clustered, so there is no difference to report."
    top = clusters.iloc[0]
    name_a, name_b = comparison.model_name("a"), comparison.model_name("b")
    min_effect = comparison.settings.get("min_effect")
    name = names_of(comparison).get(int(top["cluster"]))
    where = (
        (f"the {name} regions " if name else "")
        + f"(cluster {int(top['cluster'])}, {_count(top['n_regions'], 'region')} in "
        f"{_count(top['n_images'], 'image')})"
    )
    difference = float(top["difference"])
    interval = _interval(top)
    if not bool(top.get("meaningful", top["significant"])):
        if bool(top["significant"]):
            return (
                f"No cluster differs by at least {min_effect} of the attribution between A "
                f"({name_a}) and B ({name_b}). The clearest difference is {where}: "
                f"B - A = {difference:+.3f} {interval}, "
                f"q = {format_q(float(top['q_value']))}; significant, but as small as the "
                "differences between two models trained alike with different seeds."
                + _causal(top, name_a, name_b)
            )
        return (
            f"No cluster shows a significant difference between the attribution of A ({name_a}) "
            f"and B ({name_b}). The largest is {where}: B - A = {difference:+.3f} {interval}, "
            f"q = {format_q(float(top['q_value']))}."
        )
    more, less = (f"B ({name_b})", f"A ({name_a})")
    if difference < 0:
        more, less = less, more
    return (
        f"{more} relies more than {less} on {where}: "
        f"{abs(difference):.3f} more of each image's attribution falls on these regions "
        f"(B - A = {difference:+.3f} {interval}, q = {format_q(float(top['q_value']))})."
        + _causal(top, name_a, name_b)
    )


def _interval(row: Any) -> str:
    low, high = float(row["ci_low"]), float(row["ci_high"])
    level = float(row["ci_level"]) if "ci_level" in row else math.nan
    if not (math.isfinite(low) and math.isfinite(high)):
        return "(too few images for an interval)"
    label = f"{100 * level:.4g}% interval" if math.isfinite(level) else "interval"
    return f"({label} {low:+.3f} to {high:+.3f})"


def _causal(row: Any, name_a: str, name_b: str) -> str:
    """What hiding the cluster's regions did, when the causal check ran on it."""
    if "causal_drop_a" not in row or not int(row.get("causal_images", 0) or 0):
        return ""
    drop_a, drop_b = float(row["causal_drop_a"]), float(row["causal_drop_b"])
    if not (math.isfinite(drop_a) and math.isfinite(drop_b)):
        return ""
    return (
        f" Hiding these regions in {_count(row['causal_images'], 'image')} "
        f"{_moves(drop_b)} B's probability for its target by {abs(drop_b):.2f} and "
        f"{_moves(drop_a)} A's by {abs(drop_a):.2f}."
    )


def _moves(drop: float) -> str:
    return "lowers" if drop >= 0 else "raises"


def _count(value: Any, noun: str) -> str:
    n = int(value)
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
