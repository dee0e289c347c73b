"""What the report, figures and notebook call the two models and the clusters.

A model is called by its name (``imacs.load_model(..., name=...)``, ``--name-a``, or
``comparison.models["a"]["name"]``); a model without one is "A" or "B" with its framework,
e.g. "A (pytorch)". A cluster is called by its name in words
(:mod:`imacs.comparison.naming`), which says what its regions look like and where they lie.
"""

from __future__ import annotations

from typing import Any

from imacs.comparison.naming import names_of


def model_label(comparison: Any, side: str) -> str:
    """Model ``side``'s name, or its letter and framework ("A (pytorch)") without one."""
    model = (getattr(comparison, "models", None) or {}).get(side, {}) or {}
    name = model.get("name")
    if name:
        return str(name)
    kind = model.get("framework") or model.get("adapter")
    return f"{side.upper()} ({kind})" if kind else side.upper()


def cluster_labels(comparison: Any) -> dict[int, str]:
    """Each cluster's name in words, by cluster id."""
    return names_of(comparison)
