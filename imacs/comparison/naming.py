"""Cluster names in words, such as "small white flat square, top-left corner".

A cluster is named from what its regions have in common, each word from the median over
the cluster's regions of one descriptor:

- **size**: the region's area as a share of the image: *tiny* (< 1%), *small* (< 4%),
  *medium* (< 15%), *large* (< 40%), else *very large*;
- **texture** (when the ``"texture"`` featurizer ran): *flat* when at least half of the
  region's pixels have the flat local binary pattern, *textured* when its edge strength
  is in the top quarter of all salient regions' and under a third of it is flat;
- **colour** (when the ``"color"`` featurizer ran): a hue (*red*, *orange*, *yellow*,
  *green*, *cyan*, *blue*, *purple*, *pink*: the strongest bin of the saturation-weighted
  hue histogram) when the mean saturation is at least 0.15, *saturated* before it from
  0.45; otherwise, or when the region is too dark for its hue to be seen (a mean HSV
  value below 0.2), a grey by luminance (*black*, *dark grey*, *grey*, *light grey*,
  *white*);
- **shape**, from the bounding box: its height over width and the region's share of it
  (extent). Boxes at least 80% full are a *square*, a *tall* or *wide rectangle*, or a
  *vertical* or *horizontal strip*; at least 55% full a *blob* (*tall* or *wide* when
  the box is); emptier ones a *ragged shape*;
- **position**, from the box's centre in a 3 x 3 grid of the image: *top-left corner*,
  *top edge*, ..., *centre*; an axis along which the cluster's regions are spread (a
  standard deviation above 0.2 of the image) is left out (*along the top*, *along the
  left side*), both give *anywhere*.

Size, shape and position come from the regions table alone, so a comparison saved
without names (or run with other featurizers) still gets them. Names that come out the
same are told apart by the descriptor on which those clusters differ most ("larger",
"darker", "higher", ...), and, if that does not separate them, by a number in rank
order. The same comparison always gives the same names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: area share of the image: the largest share each size word stands for
SIZE_WORDS = ((0.01, "tiny"), (0.04, "small"), (0.15, "medium"), (0.40, "large"))
#: hue ranges in degrees and their names (red wraps around 0)
HUE_WORDS = (
    (15, "red"),
    (45, "orange"),
    (70, "yellow"),
    (165, "green"),
    (195, "cyan"),
    (255, "blue"),
    (290, "purple"),
    (345, "pink"),
    (360, "red"),
)
#: luminance: the largest value each grey word stands for
GREY_WORDS = ((0.15, "black"), (0.4, "dark grey"), (0.65, "grey"), (0.85, "light grey"))
#: below this mean saturation a region is a grey
MIN_SATURATION = 0.15
#: below this mean HSV value a region is too dark for its hue to count
MIN_VALUE = 0.2
#: from this mean saturation on, a coloured region is "saturated"
SATURATED = 0.45
#: a cluster's regions spread more than this (std of the box centre, share of the image)
#: along an axis leaves that axis out of its position
SPREAD = 0.2

#: the descriptors a duplicate name is refined by, with words for less and more
_COMPARATIVES = {
    "area_share": ("smaller", "larger"),
    "luminance": ("darker", "lighter"),
    "saturation": ("greyer", "more colourful"),
    "edges": ("smoother", "more textured"),
    "centre_y": ("higher", "lower"),
    "centre_x": ("further left", "further right"),
}


def region_descriptors(
    regions: Any,
    image_shape: Sequence[int],
    features: Mapping[str, np.ndarray] | None = None,
) -> Any:
    """One row of descriptors per region of ``regions`` (a comparison's regions table).

    ``area_share``, ``aspect`` (box height over width), ``extent``, ``centre_y`` and
    ``centre_x`` (shares of the image) from the table itself; ``luminance``, ``value``,
    ``saturation``, ``hue_bin`` and ``hue_bins`` from ``features["color"]``, ``flat`` and
    ``edges`` from ``features["texture"]``, when given (see :func:`known_features`).
    """
    import pandas as pd

    height, width = int(image_shape[0]), int(image_shape[1])
    y0, x0 = regions["y0"].to_numpy(np.float64), regions["x0"].to_numpy(np.float64)
    y1, x1 = regions["y1"].to_numpy(np.float64), regions["x1"].to_numpy(np.float64)
    box_h, box_w = np.maximum(y1 - y0, 1.0), np.maximum(x1 - x0, 1.0)
    area = regions["area"].to_numpy(np.float64)
    table = pd.DataFrame(
        {
            "cluster": regions["cluster"].to_numpy(np.int64),
            "area_share": area / (height * width),
            "aspect": box_h / box_w,
            "extent": area / (box_h * box_w),
            "centre_y": (y0 + y1) / 2 / height,
            "centre_x": (x0 + x1) / 2 / width,
        }
    )
    features = features or {}
    color = features.get("color")
    if color is not None:
        table["luminance"] = color["luminance"]
        table["value"] = color["value"]
        table["saturation"] = color["saturation"]
        table["hue_bin"] = color["hue_bin"]
        table.attrs["hue_bins"] = int(color["hue_bins"])
    texture = features.get("texture")
    if texture is not None:
        table["flat"] = texture["flat"]
        table["edges"] = texture["edges"]
    return table


def known_features(featurizers: Sequence[Any], blocks: Sequence[np.ndarray]) -> dict[str, Any]:
    """The descriptors the built-in colour and texture featurizers' raw columns give.

    ``blocks[k]`` holds featurizer ``k``'s unstandardised features, one row per salient
    region. Other featurizers (a model embedding, a plugin's) add nothing to a name.
    """
    from imacs.features.color import ColorHistogram
    from imacs.features.texture import LocalBinaryPatterns

    found: dict[str, Any] = {}
    for featurizer, block in zip(featurizers, blocks, strict=True):
        block = np.asarray(block)
        if isinstance(featurizer, ColorHistogram) and "color" not in found:
            bins = int(featurizer.bins)
            hue = _columns(block, 0, bins)
            mean_rgb = _columns(block, 3 * bins, 3 * bins + 3)
            value = _columns(block, 2 * bins, 3 * bins) @ ((np.arange(bins) + 0.5) / bins)
            found["color"] = {
                # HSV value, from its histogram: how bright the region's brightest channel is
                "value": value,
                # the hue histogram is weighted by saturation: it sums to the mean saturation
                "saturation": hue.sum(axis=1),
                "hue_bin": hue.argmax(axis=1),
                "hue_bins": bins,
                "luminance": mean_rgb @ np.array([0.299, 0.587, 0.114]),
            }
        elif isinstance(featurizer, LocalBinaryPatterns) and "texture" not in found:
            points = int(featurizer.points)
            flat = _columns(block, points, points + 1)[:, 0]
            found["texture"] = {"flat": flat, "edges": _columns(block, -1, None)[:, 0]}
    return found


def _columns(block: np.ndarray, start: int, stop: int | None) -> np.ndarray:
    """Columns ``start:stop`` of ``block`` in float64: only what a name reads is copied."""
    return np.asarray(block[:, start:stop], dtype=np.float64)


def cluster_names(
    regions: Any,
    image_shape: Sequence[int],
    order: Sequence[int],
    features: Mapping[str, Any] | None = None,
) -> dict[int, str]:
    """A short, distinct name for every cluster in ``order`` (the clusters' rank order)."""
    if len(regions) == 0 or not len(order):
        return {}
    table = region_descriptors(regions, image_shape, features)
    medians = table.groupby("cluster").median()
    spread = table.groupby("cluster")[["centre_y", "centre_x"]].std(ddof=0).fillna(0.0)
    edges_high = float(np.quantile(table["edges"], 0.75)) if "edges" in table else None
    hue_bins = table.attrs.get("hue_bins", 8)
    hues = (
        table.groupby("cluster")["hue_bin"].agg(lambda b: int(np.bincount(b.astype(int)).argmax()))
        if "hue_bin" in table
        else None
    )
    names: dict[int, str] = {}
    for cluster in (int(c) for c in order):
        if cluster not in medians.index:
            names[cluster] = f"cluster {cluster}"
            continue
        m = medians.loc[cluster]
        words = [_size(m["area_share"])]
        if "flat" in m:
            words.append(_texture(m["flat"], m["edges"], edges_high))
        if "saturation" in m:
            assert hues is not None
            words.append(
                _colour(m["saturation"], m["luminance"], m["value"], int(hues[cluster]), hue_bins)
            )
        words.append(_shape(m["aspect"], m["extent"]))
        position = _position(
            m["centre_y"],
            m["centre_x"],
            spread.loc[cluster, "centre_y"],
            spread.loc[cluster, "centre_x"],
        )
        names[cluster] = " ".join(w for w in words if w) + ", " + position
    return _distinct(names, list(names), medians, table)


def _size(share: float) -> str:
    for limit, word in SIZE_WORDS:
        if share < limit:
            return word
    return "very large"


def _texture(flat: float, edges: float, edges_high: float | None) -> str:
    if flat >= 0.5:
        return "flat"
    if edges_high is not None and edges >= edges_high and flat < 1 / 3:
        return "textured"
    return ""


def _colour(saturation: float, luminance: float, value: float, hue_bin: int, bins: int) -> str:
    # a near-black pixel's hue is noise, though HSV gives it a high saturation
    if saturation < MIN_SATURATION or value < MIN_VALUE:
        for limit, word in GREY_WORDS:
            if luminance < limit:
                return word
        return "white"
    degrees = (hue_bin * 360.0 / bins) % 360.0
    hue = next(word for limit, word in HUE_WORDS if degrees < limit)
    return f"saturated {hue}" if saturation >= SATURATED else hue


def _shape(aspect: float, extent: float) -> str:
    tall, wide = aspect > 1.5, aspect < 1 / 1.5
    if extent >= 0.8:
        if aspect > 2.5:
            return "vertical strip"
        if aspect < 0.4:
            return "horizontal strip"
        return "tall rectangle" if tall else "wide rectangle" if wide else "square"
    form = "blob" if extent >= 0.55 else "ragged shape"
    return f"tall {form}" if tall else f"wide {form}" if wide else form


def _position(y: float, x: float, spread_y: float, spread_x: float) -> str:
    row = None if spread_y > SPREAD else ("top" if y < 1 / 3 else "bottom" if y > 2 / 3 else "")
    column = None if spread_x > SPREAD else ("left" if x < 1 / 3 else "right" if x > 2 / 3 else "")
    if row is None and column is None:
        return "anywhere"
    if row is None:
        return {"left": "along the left side", "right": "along the right side"}.get(
            column or "", "down the middle"
        )
    if column is None:
        return {"top": "along the top", "bottom": "along the bottom"}.get(row, "across the middle")
    if row and column:
        return f"{row}-{column} corner"
    if row or column:
        return f"{row or column} edge"
    return "centre"


def _distinct(
    names: dict[int, str], order: list[int], medians: Any, regions: Any
) -> dict[int, str]:
    """Refine names shared by several clusters, so that every cluster's name is its own.

    The descriptor used is the one on which the clusters' medians lie furthest apart, in
    units of its spread over all salient regions.
    """
    groups: dict[str, list[int]] = {}
    for cluster in order:
        groups.setdefault(names[cluster], []).append(cluster)
    result = dict(names)
    columns = [c for c in _COMPARATIVES if c in medians.columns]
    scale = regions[columns].std(ddof=0).replace(0.0, 1.0)
    for name, members in groups.items():
        if len(members) < 2:
            continue
        values = medians.loc[members, columns] / scale
        column = str((values.max() - values.min()).idxmax())
        less, more = _COMPARATIVES[column]
        ranked = sorted(members, key=lambda c: (float(medians.loc[c, column]), order.index(c)))
        for position, cluster in enumerate(ranked):
            last = position == len(ranked) - 1
            word = less if position == 0 else more if last else "middle"
            result[cluster] = f"{name} ({word})"
    seen: dict[str, int] = {}
    for cluster in order:  # a last guarantee: repeated names numbered in rank order
        seen[result[cluster]] = seen.get(result[cluster], 0) + 1
        if seen[result[cluster]] > 1:
            result[cluster] = f"{result[cluster]} #{seen[result[cluster]]}"
    return result


def names_of(comparison: Any) -> dict[int, str]:
    """Each cluster's name: the clusters table's ``name`` column, or derived from the
    regions table (size, shape and position only) for a comparison saved without it."""
    clusters = comparison.clusters
    if "name" in clusters and len(clusters):
        return {int(c): str(n) for c, n in zip(clusters["cluster"], clusters["name"], strict=True)}
    shape = (comparison.dataset or {}).get("image_shape")
    if not shape:
        if len(comparison.regions) == 0:
            return {}
        shape = (
            int(comparison.regions["y1"].max()),
            int(comparison.regions["x1"].max()),
        )
    return cluster_names(comparison.regions, shape, [int(c) for c in clusters["cluster"]])
