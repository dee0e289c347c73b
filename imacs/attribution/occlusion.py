"""Occlusion: how much the target score drops when a patch of the image is covered.

Zeiler, Fergus. "Visualizing and Understanding Convolutional Networks". ECCV 2014.
arXiv:1311.2901.

A window slides over the image; each position replaces the covered pixels (all
channels) with ``baseline`` and records the drop ``f(x) - f(x_occluded)``. A pixel's
attribution is the mean drop over the windows that cover it, as in Captum's
``Occlusion`` with ``sliding_window_shapes=(C, h, w)``: windows start at 0 and step by
``stride``; the last one along an axis may hang over the edge, covering fewer pixels.
(PAIR saliency's ``Occlusion`` slides with stride 1 and adds the drops up instead.)
Forward passes only: every occluded copy of every image is built chunk by chunk and
scored ``batch_size`` copies per model call.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.attribution.paths import score_points
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl


class Occlusion(AttributionMethod):
    """Mean drop of the target score over the sliding windows covering each pixel.

    Parameters
    ----------
    window:
        Window height and width in pixels, an int for a square (default 15, PAIR
        saliency's ``Occlusion(size=15)``). The window covers every channel.
    stride:
        Step between window positions, an int or ``(rows, cols)``. Default ``None``:
        half the window (at least 1), our choice: windows overlap by about half, and a
        224x224 image needs 31x31 = 961 forward passes with the default window instead
        of the 44,100 of PAIR's stride 1 (pass ``stride=1`` for those).
        It may not exceed the window (pixels would never be occluded) unless the window
        spans that whole axis.
    baseline:
        What covers the occluded pixels: a number (default 0, as Captum and PAIR), one
        value per channel ``(C,)``, an image ``(H, W, C)`` or one image per input
        ``(N, H, W, C)``.
    """

    name = "occlusion"
    citation = "Zeiler & Fergus, ECCV 2014, arXiv:1311.2901"
    requires: ClassVar[frozenset[str]] = frozenset()  # forward passes only

    def __init__(
        self,
        *,
        window: int | tuple[int, int] = 15,
        stride: int | tuple[int, int] | None = None,
        baseline: float | np.ndarray = 0.0,
    ):
        self.window = window
        self.stride = stride
        self.baseline = baseline
        _pair(window, "window")
        if stride is not None:
            _pair(stride, "stride")

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        n, height, width, _ = images.shape
        window = _pair(self.window, "window")
        if self.stride is None:
            stride = (max(1, window[0] // 2), max(1, window[1] // 2))
        else:
            stride = _pair(self.stride, "stride")
        rows = window_positions(height, window[0], stride[0], "rows")
        cols = window_positions(width, window[1], stride[1], "columns")
        fill = _fill_values(self.baseline, images)
        drops = np.empty((n, len(rows), len(cols)))
        original = model.scores(images, targets, batch_size=batch_size).astype(np.float64)

        def make_inputs(image_index: np.ndarray, position: np.ndarray) -> np.ndarray:
            covered = rows[position // len(cols)][:, :, None] & cols[position % len(cols)][:, None]
            return np.where(covered[..., None], fill[image_index], images[image_index])

        def on_scores(image_index: np.ndarray, position: np.ndarray, scores: np.ndarray) -> None:
            drops.reshape(n, -1)[image_index, position] = original[image_index] - scores

        score_points(
            model.scores, targets, len(rows) * len(cols), make_inputs, on_scores, batch_size
        )
        # sum of drops over the windows covering each pixel, divided by their number
        total = np.einsum("ah,nab,bw->nhw", rows.astype(np.float64), drops, cols.astype(np.float64))
        count = np.outer(rows.sum(axis=0), cols.sum(axis=0))
        maps = np.broadcast_to((total / count)[..., None], images.shape)
        return AttributionResult(np.ascontiguousarray(maps), self.name, self.get_params())


def window_positions(size: int, window: int, stride: int, axis: str) -> np.ndarray:
    """Which pixels each window position covers along one axis: ``(positions, size)``.

    Captum's layout: windows start at ``0, stride, 2 * stride, ...`` until one reaches
    the end, the last possibly cut short by the edge.
    """
    if window > size:
        raise InvalidInputError(
            f"expected the occlusion window to fit the image: it is {window} {axis} but the "
            f"images have {size}; pass a smaller window"
        )
    if stride > window and window < size:
        raise InvalidInputError(
            f"expected stride <= window along the {axis} (else some pixels are never "
            f"occluded); got stride {stride} for a window of {window}: lower the stride"
        )
    starts = stride * np.arange(-(-(size - window) // stride) + 1)
    pixel = np.arange(size)
    return (pixel >= starts[:, None]) & (pixel < starts[:, None] + window)


def _pair(value: Any, name: str) -> tuple[int, int]:
    """An int or a pair of ints, each positive, as ``(rows, cols)``."""
    pair = value if isinstance(value, tuple | list) else (value, value)
    if len(pair) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0 for v in pair
    ):
        raise InvalidInputError(
            f"expected {name} to be a positive int or a pair (rows, cols) of them; got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _fill_values(baseline: Any, images: np.ndarray) -> np.ndarray:
    """The baseline as a read-only ``(N, H, W, C)`` view of what covers occluded pixels."""
    if isinstance(baseline, bool) or not isinstance(baseline, int | float | np.number | np.ndarray):
        raise InvalidInputError(
            f"expected baseline to be a number or a numpy array; got {type(baseline).__name__}"
        )
    fill = np.asarray(baseline, dtype=np.float32)
    n, h, w, c = images.shape
    if fill.shape not in ((), (c,), (h, w, c), (n, h, w, c)):
        raise InvalidInputError(
            f"expected baseline as a number, one value per channel ({c},), an image "
            f"{(h, w, c)} or one image per input {(n, h, w, c)}; got shape {fill.shape}"
        )
    if not np.isfinite(fill).all():
        raise InvalidInputError("expected a finite baseline; it contains NaN or infinity")
    return np.broadcast_to(fill, images.shape)


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(Occlusion)
