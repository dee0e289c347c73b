"""Two NumPy models that differ by a planted shortcut, for fast end-to-end tests.

Both score the demo's shortcut digits (:mod:`imacs.demo.data`) by correlating the image
with one template per class (the class's mean digit). Model B adds a term that reads the
class off the shade of the corner patch, the shortcut a network learns from data where
the shade encodes the label. Gradients are exact, no framework is needed, and building
the pair takes well under a second, so a test can run whole comparisons, kill them and
run them again.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from imacs.adapters.function import FunctionAdapter
from imacs.demo.data import N_CLASSES, PATCH, shortcut_digits

#: weight of the patch term in model B's logits
SHORTCUT_WEIGHT = 4.0
#: width of the patch term's bump around each class's shade
SHADE_WIDTH = 0.1


def _templates(seed: int) -> np.ndarray:
    data = shortcut_digits(shortcut=False, seed=seed)
    images = data.images.copy()
    images[:, :PATCH, :PATCH, :] = 0.0
    mean = images.mean(axis=0)
    templates = np.stack([images[data.labels == k].mean(axis=0) - mean for k in range(N_CLASSES)])
    return (templates / np.abs(templates).sum(axis=(1, 2, 3), keepdims=True) * 50).astype(
        np.float64
    )


def planted_models(*, seed: int = 0, delay: float = 0.0) -> tuple[FunctionAdapter, FunctionAdapter]:
    """Model A (templates only) and model B (templates plus the patch shortcut).

    ``delay`` seconds are slept per gradient call, so a test can stop a run midway.
    """
    templates = _templates(seed)
    shades = 0.3 + 0.7 * np.arange(N_CLASSES) / (N_CLASSES - 1)
    n_patch = PATCH * PATCH * 3

    def logits_a(images: np.ndarray) -> np.ndarray:
        return np.einsum("nhwc,khwc->nk", images.astype(np.float64), templates)

    def patch_shade(images: np.ndarray) -> np.ndarray:
        return images[:, :PATCH, :PATCH, :].astype(np.float64).mean(axis=(1, 2, 3))

    def logits_b(images: np.ndarray) -> np.ndarray:
        bump = -(((patch_shade(images)[:, None] - shades[None, :]) / SHADE_WIDTH) ** 2)
        return logits_a(images) + SHORTCUT_WEIGHT * bump

    def gradients_a(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        time.sleep(delay)
        return np.broadcast_to(templates[targets], images.shape).astype(np.float32)

    def gradients_b(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        grads = np.array(gradients_a(images, targets), dtype=np.float64)
        shade = patch_shade(images)
        slope = -2 * SHORTCUT_WEIGHT * (shade - shades[targets]) / SHADE_WIDTH**2 / n_patch
        grads[:, :PATCH, :PATCH, :] += slope[:, None, None, None]
        return grads.astype(np.float32)

    def predict_a(images: np.ndarray) -> np.ndarray:
        return logits_a(images).astype(np.float32)

    def predict_b(images: np.ndarray) -> np.ndarray:
        return logits_b(images).astype(np.float32)

    model_a = FunctionAdapter(predict_a, gradients_a, fingerprint=f"planted-a:{seed}")
    model_b = FunctionAdapter(predict_b, gradients_b, fingerprint=f"planted-b:{seed}")
    return model_a, model_b


def _image_masks(comparison: Any, mask: np.ndarray) -> Any:
    """``mask(i)``: the planted pixels of image ``i``, from one mask or one per image."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2:
        return lambda i: mask
    if mask.ndim != 3 or len(mask) != len(comparison.images):
        raise ValueError(
            f"expected mask (H, W) or one per image (N, H, W) with N = "
            f"{len(comparison.images)}; got shape {mask.shape}"
        )
    return lambda i: mask[i]


def _pixels_inside(comparison: Any, mask: np.ndarray, rows: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``rows`` (regions): its pixels inside the planted mask, and all its pixels."""
    mask_of = _image_masks(comparison, mask)
    inside = np.zeros(len(rows), dtype=np.int64)
    area = np.zeros(len(rows), dtype=np.int64)
    positions = np.arange(len(rows))
    # one label map read per image, however many of its regions are salient
    for image, group in rows.assign(_row=positions).groupby("image", sort=False):
        labels = comparison.segments(int(image))
        planted = np.bincount(labels[mask_of(int(image))], minlength=int(labels.max()) + 1)
        sizes = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
        regions = group["region"].to_numpy()
        inside[group["_row"].to_numpy()] = planted[regions]
        area[group["_row"].to_numpy()] = sizes[regions]
    return inside, area


def planted_coverage(comparison: Any, cluster: int, mask: np.ndarray) -> float:
    """The share of the planted pixels among salient regions that ``cluster`` holds.

    ``mask`` is the planted feature's pixels: one boolean ``(H, W)`` for every image, or
    ``(N, H, W)``, one per image (all False where an image has none). Of all pixels
    inside it that belong to any salient region, the share in the cluster's regions: 1.0
    when the cluster is the whole planted feature as the comparison saw it.
    """
    regions = comparison.regions
    inside, _ = _pixels_inside(comparison, mask, regions)
    total = int(inside.sum())
    in_cluster = int(inside[regions["cluster"].to_numpy() == cluster].sum())
    return in_cluster / total if total else 0.0


def patch_share(comparison: Any, cluster: int, mask: np.ndarray | None = None) -> float:
    """The share of a cluster's region pixels that lie inside the planted ``mask``.

    ``mask`` as for :func:`planted_coverage`; by default the demo digits' corner patch.
    """
    if mask is None:
        mask = np.zeros(comparison.segments(0).shape, dtype=bool)
        mask[:PATCH, :PATCH] = True
    regions = comparison.regions
    inside, area = _pixels_inside(comparison, mask, regions[regions["cluster"] == cluster])
    return int(inside.sum()) / int(area.sum())


def top_cluster_is_planted(comparison: Any, mask: np.ndarray) -> tuple[bool, str]:
    """Whether the top-ranked cluster is the planted feature, and a line that says why.

    It is when most of its pixels lie inside ``mask`` (:func:`patch_share` above 0.5), it
    holds at least 70% of the planted pixels among salient regions
    (:func:`planted_coverage`), B relies on it more than A, and it is significant and
    meaningful. The line gives those numbers, the q-value and the number of clusters.
    """
    top = comparison.clusters.iloc[0]
    cluster = int(top["cluster"])
    share = patch_share(comparison, cluster, mask)
    coverage = planted_coverage(comparison, cluster, mask)
    found = bool(
        share > 0.5
        and coverage >= 0.7
        and top["difference"] > 0
        and bool(top["significant"])
        and bool(top["meaningful"])
    )
    line = (
        f"share {share:.2f}, coverage {coverage:.2f}, difference {top['difference']:+.3f}, "
        f"q {top['q_value']:.3g}, k {len(comparison.clusters)}"
    )
    return found, line
