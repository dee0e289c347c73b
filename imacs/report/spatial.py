"""The "where in the frame" figures and report view of a comparison's spatial analysis.

Reads :class:`imacs.spatial.analysis.SpatialResult` from ``comparison.spatial``; the
measures are defined in :mod:`imacs.spatial` and docs/spatial.md.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.report.naming import model_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from imacs.comparison.result import Comparison


def positional_figure(comparison: Comparison) -> Figure | None:
    """A's and B's positional maps and B - A with its marked cells outlined; ``None`` if absent."""
    from imacs.report.figures import _new_figure, _style

    spatial = comparison.spatial
    if spatial is None or spatial.positional is None:
        return None
    maps = spatial.positional
    with _style():
        figure = _new_figure(13, 4.4)
        panels = figure.subplots(1, 3)
        top = float(max(maps.mean_a.max(), maps.mean_b.max(), 1.0))
        for panel, values, side in ((panels[0], maps.mean_a, "a"), (panels[1], maps.mean_b, "b")):
            shown = panel.imshow(values, cmap="magma", vmin=0, vmax=top)
            panel.set_title(f"{side.upper()}: {model_label(comparison, side)}")
            figure.colorbar(shown, ax=panel, shrink=0.8, label="x uniform share")
        limit = float(max(np.abs(maps.difference).max(), 1e-9))
        shown = panels[2].imshow(maps.difference, cmap="RdBu_r", vmin=-limit, vmax=limit)
        rows, columns = np.nonzero(maps.marked)
        panels[2].scatter(columns, rows, s=18, marker="s", facecolors="none", edgecolors="k")
        panels[2].set_title(f"B - A ({int(maps.marked.sum())} cells marked)")
        figure.colorbar(shown, ax=panels[2], shrink=0.8)
        for panel in panels:
            panel.set_xticks([])
            panel.set_yticks([])
        figure.suptitle(
            f"Where in the frame: mean share of |attribution| over {maps.n_images} images"
        )
    return figure


def _png(figure: Figure) -> dict[str, Any]:
    """The figure as a PNG data URI with its size in pixels, for an SVG ``<image>``.

    The report draws with canvases and SVG and has no ``<img>`` elements; an SVG image
    with a data URI is allowed by its Content-Security-Policy (``img-src data:``).
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    from PIL import Image

    buffer.seek(0)
    with Image.open(buffer) as picture:
        width, height = picture.size
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return {"uri": uri, "width": width, "height": height}


def _heat_png(
    values: np.ndarray, flagged: np.ndarray | None = None, cmap: str = "viridis"
) -> dict[str, Any]:
    from imacs.report.figures import _new_figure, _style

    with _style():
        figure = _new_figure(2.6, 2.4)
        panel = figure.subplots()
        shown = panel.imshow(values, cmap=cmap)
        if flagged is not None and flagged.any():
            rows, columns = np.nonzero(flagged)
            panel.scatter(columns, rows, marker="x", color="red", s=40)
        panel.set_xticks([])
        panel.set_yticks([])
        figure.colorbar(shown, ax=panel, shrink=0.8)
        return _png(figure)


def spatial_view(comparison: Comparison) -> dict[str, Any] | None:
    """What the report's "where in the frame" section shows; ``None`` when not computed."""
    spatial = getattr(comparison, "spatial", None)
    if spatial is None:
        return None
    view: dict[str, Any] = {"models": [], "skipped": sorted(spatial.skipped.values())}
    figure = positional_figure(comparison)
    view["positional"] = _png(figure) if figure is not None else None
    border = spatial.positional.border if spatial.positional is not None else None
    view["border"] = [] if border is None else border.to_dict(orient="records")
    for side in ("a", "b"):
        model: dict[str, Any] = {"side": side.upper(), "name": model_label(comparison, side)}
        padding = spatial.padding.get(side)
        if padding is not None:
            model["padding"] = padding["layers"].to_dict(orient="records")
            model["uneven"] = padding["uneven"]
            model["nearest"] = padding["nearest"]
            model["size"] = "x".join(map(str, padding["size"]))
        probe = spatial.blind_spots.get(side)
        if probe is not None:
            model["blind_spots"] = {
                "image": _heat_png(probe.scores, probe.flagged),
                "flagged": int(probe.flagged.sum()),
                "cells": int(probe.flagged.size),
                "target": probe.target,
            }
        model["activations"] = [
            {
                "layer": layer,
                **{kind: _heat_png(values, cmap="coolwarm") for kind, values in maps.items()},
            }
            for layer, maps in list(spatial.activations.get(side, {}).items())[:6]
        ]
        view["models"].append(model)
    return view
