"""Per-region scores of two attribution maps on one shared segmentation, and selection.

Both models' maps are reduced over channels with a signed sum (which keeps Integrated
Gradients' completeness) and divided by their L1 norm, so that every image contributes a
total absolute attribution of 1 per model whatever the models' logit scales. A region's
*mass* is the sum of the normalised map over its pixels: the share of the model's
attribution the region holds. Its *density* (mass per pixel) ranks the regions of an
image, as XRAI ranks its regions by gain per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imacs.errors import InvalidInputError

#: how a map's sign is read: as it is, or its magnitude only
MAP_SIGNS = ("signed", "absolute")


def normalise_map(attribution: np.ndarray, sign: str = "signed") -> np.ndarray:
    """Channel-summed ``(H, W)`` map with sum of absolute values 1 (all zero stays zero).

    ``sign="absolute"`` takes the magnitude of every pixel after the channel sum, so a
    pixel's share is how much it moved the output, in either direction.
    """
    if sign not in MAP_SIGNS:
        raise InvalidInputError(f"expected sign to be one of {MAP_SIGNS}; got {sign!r}")
    reduced = np.asarray(attribution, dtype=np.float64)
    if reduced.ndim == 3:
        reduced = reduced.sum(axis=-1)
    if sign == "absolute":
        reduced = np.abs(reduced)
    total = np.abs(reduced).sum()
    return reduced / total if total > 0 else np.zeros_like(reduced)


@dataclass
class RegionScores:
    """Scores of every region of one image under models A and B (arrays of length R)."""

    area: np.ndarray
    mass_a: np.ndarray
    mass_b: np.ndarray
    abs_a: np.ndarray
    abs_b: np.ndarray
    density_a: np.ndarray
    density_b: np.ndarray
    rank_a: np.ndarray
    rank_b: np.ndarray


def _ranks(density: np.ndarray) -> np.ndarray:
    # 1 = highest density; ties go to the lower region label, so ranks are deterministic
    order = np.lexsort((np.arange(len(density)), -density))
    ranks = np.empty(len(density), dtype=np.int64)
    ranks[order] = np.arange(1, len(density) + 1)
    return ranks


def score_regions(labels: np.ndarray, map_a: np.ndarray, map_b: np.ndarray) -> RegionScores:
    """Scores of the regions of dense ``labels`` under two normalised ``(H, W)`` maps."""
    if map_a.shape != labels.shape or map_b.shape != labels.shape:
        raise InvalidInputError(
            f"expected maps of the label map's shape {labels.shape}; got {map_a.shape} and "
            f"{map_b.shape}"
        )
    flat = labels.ravel()
    n_regions = int(flat.max()) + 1
    area = np.bincount(flat, minlength=n_regions).astype(np.int64)
    mass_a = np.bincount(flat, map_a.ravel(), minlength=n_regions)
    mass_b = np.bincount(flat, map_b.ravel(), minlength=n_regions)
    abs_a = np.bincount(flat, np.abs(map_a).ravel(), minlength=n_regions)
    abs_b = np.bincount(flat, np.abs(map_b).ravel(), minlength=n_regions)
    safe_area = np.maximum(area, 1)
    density_a, density_b = mass_a / safe_area, mass_b / safe_area
    return RegionScores(
        area, mass_a, mass_b, abs_a, abs_b, density_a, density_b,
        _ranks(density_a), _ranks(density_b),
    )  # fmt: skip


def _top_area(density: np.ndarray, area: np.ndarray, fraction: float) -> np.ndarray:
    # regions by density until they cover `fraction` of the image (the one crossing counts)
    order = np.lexsort((np.arange(len(density)), -density))
    covered = np.cumsum(area[order]) / area.sum()
    n_kept = int(np.searchsorted(covered, fraction, side="left")) + 1
    chosen = np.zeros(len(density), dtype=bool)
    chosen[order[:n_kept]] = True
    return chosen


def select_regions(
    scores: RegionScores, *, top_k: int | None = 3, area_fraction: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Which regions are salient for A and for B: two boolean arrays of length R.

    A region is salient for a model when it is among that model's ``top_k`` densest regions
    of the image, or (with ``area_fraction``) among the densest regions that together cover
    that fraction of the image. The comparison keeps the union, so neither model's view
    biases which regions are summarised.
    """
    if area_fraction is not None:
        return (
            _top_area(scores.density_a, scores.area, area_fraction),
            _top_area(scores.density_b, scores.area, area_fraction),
        )
    assert top_k is not None
    return scores.rank_a <= top_k, scores.rank_b <= top_k
