"""PAMI: keep one region, replace the rest, and credit the region with the prediction.

Shi, Zhang, Zheng, Wang. "PAMI: partition input and aggregate outputs for model
interpretation". Pattern Recognition 2023. arXiv:2302.03318. Official code:
github.com/fuermowei/PAMI (``methods/pre_segmentation.py``, ``run_presegmentation.py``).

The pre-segmentation variant, forward passes only. For each view of the image (itself
and cyclic shifts of it), each segmentation of the view and each segment: keep the
segment, replace everything else with the substrate (a blur of the view by default),
and score the model on that input. A pixel's value is the mean score over all the
segments containing it, over all segmentations and views (shifted back), so it lies in
``[0, 1]`` for probabilities. Every masked copy of every image is built chunk by chunk
and scored ``batch_size`` copies per model call.

Departures from the official code, each because it cannot or should not be copied:

- SEEDS superpixels (three of the paper's 20 segmentations) need opencv-contrib's
  ``cv2.ximgproc``, which imacs does not depend on; the default uses the other 17
  (Felzenszwalb, SLIC, watershed). Add them back through ``segmentations`` if needed.
- The paper's pixel-valued settings are for 224x224 inputs (Felzenszwalb
  ``min_size=784``, shifts of 24-36 pixels, a 49-pixel blur kernel). With the
  ``"paper"`` defaults they are scaled to the image size, so a 32x32 image is not one
  Felzenszwalb segment; on 224x224 images they are the paper's values.
- The official shift rounds the shifted image to 8 bits; here views are exact.
- The optional second stage (re-segmenting a rendering of the first map) is left out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl

#: The image size the official defaults were chosen for.
PAPER_SIZE = 224

#: The official ``run_presegmentation.py`` list, SEEDS left out (needs opencv-contrib).
PAPER_SEGMENTATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    *(
        ("felzenszwalb", {"scale": scale, "sigma": 0.8, "min_size": 28 * 28})
        for scale in (250, 200, 150, 100, 70, 50)
    ),
    *(("slic", {"n_segments": k, "compactness": 20}) for k in range(10, 90, 10)),
    *(("watershed", {"markers": k, "compactness": 1e-4}) for k in (10, 20, 30)),
)

#: The official cyclic shifts ``(rows, cols)`` besides the unshifted view.
PAPER_SHIFTS: tuple[tuple[int, int], ...] = tuple(
    shift for d in (36, 30, 24) for shift in ((d, 0), (0, d), (-d, 0), (0, -d))
)

#: The official substrate: ``blur(49, 100)``, a 49x49 Gaussian kernel of sigma 100
#: (nearly a box filter) applied with zero padding.
PAPER_BLUR_SIZE = 49
PAPER_BLUR_SIGMA = 100.0


def _felzenszwalb(image: np.ndarray, **params: Any) -> np.ndarray:
    from skimage.segmentation import felzenszwalb

    with warnings.catch_warnings():  # four channels are meant as channels, not a volume
        warnings.filterwarnings("ignore", "Got image with third dimension")
        return np.asarray(felzenszwalb(image, channel_axis=-1, **params))


def _slic(image: np.ndarray, **params: Any) -> np.ndarray:
    from skimage.segmentation import slic

    if image.shape[-1] == 1:
        return np.asarray(slic(image[..., 0], channel_axis=None, **params))
    return np.asarray(slic(image, channel_axis=-1, **params))


def _watershed(image: np.ndarray, **params: Any) -> np.ndarray:
    """Watershed on the Sobel gradient of the grey image, as the official code does."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel
    from skimage.segmentation import watershed

    grey = rgb2gray(image) if image.shape[-1] == 3 else image.mean(axis=-1) / 255.0
    return np.asarray(watershed(sobel(grey), **params))


#: Segmentation names accepted in ``segmentations``: uint8 (H, W, C) image -> labels.
SEGMENTERS: dict[str, Callable[..., np.ndarray]] = {
    "felzenszwalb": _felzenszwalb,
    "slic": _slic,
    "watershed": _watershed,
}

SUBSTRATES = ("blur", "black", "white")


class PAMI(AttributionMethod):
    """PAMI's pre-segmentation attribution: mean score of the kept segments over a pixel.

    Parameters
    ----------
    segmentations:
        ``"paper"`` (default): the official 20 segmentations without the three SEEDS
        ones, Felzenszwalb's ``min_size`` scaled to the image area. Or a sequence of
        ``(name, params)`` with ``name`` in ``felzenszwalb``, ``slic``, ``watershed``
        (scikit-image's functions; watershed runs on the Sobel gradient of the grey
        image) and ``params`` their keyword arguments.
    shifts:
        Cyclic shifts ``(rows, cols)`` giving extra views of the image; the unshifted view
        is always used. ``"paper"`` (default): the official 12 shifts (24, 30 and 36
        pixels each way along each axis, scaled to the image size). ``()``: one view,
        13 times cheaper.
    substrate:
        What replaces the pixels outside the kept segment: ``"blur"`` (default, the
        official 49x49, sigma-100 Gaussian blur of the view with zero padding, kernel
        scaled to the image size), ``"black"`` / ``"white"`` (the ends of
        ``pixel_range``, the official ``zeros_like`` / ``ones_like`` for [0, 1] images) or
        a number.
    softmax:
        ``True`` (default, the paper): score each input by the softmax probability of
        the target, computed here from the adapter's ``predict`` outputs, whatever the
        adapter's ``target``. ``False``: use the adapter's own target score
        (``model.scores``), for models that already end in a softmax or adapters with a
        custom target.
    pixel_range:
        ``(low, high)`` of the images (default ``(0.0, 1.0)``): segmentations run on the
        images mapped from this range to 8 bits, as the official code runs them on
        ``uint8(255 * image)``.

    Cost: (number of segments over all segmentations) x (1 + number of shifts) forward
    passes per image: a natural 224x224 image has about 400 segments with the defaults,
    so some 5,000 forward passes over the 13 views.
    """

    name = "pami"
    citation = "Shi et al., Pattern Recognition 2023, arXiv:2302.03318"
    requires: ClassVar[frozenset[str]] = frozenset()  # forward passes only

    def __init__(
        self,
        *,
        segmentations: str | Sequence[tuple[str, dict[str, Any]]] = "paper",
        shifts: str | Sequence[tuple[int, int]] = "paper",
        substrate: str | float = "blur",
        softmax: bool = True,
        pixel_range: tuple[float, float] = (0.0, 1.0),
    ):
        self.segmentations = segmentations
        self.shifts = shifts
        self.substrate = substrate
        self.softmax = softmax
        self.pixel_range = pixel_range
        _check_segmentations(segmentations)
        _check_shifts(shifts)
        _check_substrate(substrate)
        if not isinstance(softmax, bool | np.bool_):
            raise InvalidInputError(f"expected softmax to be True or False; got {softmax!r}")
        _check_pixel_range(pixel_range)

    def segmentation_list(self, height: int, width: int) -> list[tuple[str, dict[str, Any]]]:
        """The segmentations used for images of this size."""
        if not isinstance(self.segmentations, str):
            return [(name, dict(params)) for name, params in self.segmentations]
        area = height * width / PAPER_SIZE**2
        return [
            (name, {**params, "min_size": max(1, round(params["min_size"] * area))})
            if name == "felzenszwalb"
            else (name, dict(params))
            for name, params in PAPER_SEGMENTATIONS
        ]

    def views(self, height: int, width: int) -> list[tuple[int, int]]:
        """The cyclic shifts ``(rows, cols)`` of the views, the unshifted one first."""
        if isinstance(self.shifts, str):  # "paper"
            shifts = [
                (round(dy * height / PAPER_SIZE), round(dx * width / PAPER_SIZE))
                for dy, dx in PAPER_SHIFTS
            ]
        else:
            shifts = [(int(dy), int(dx)) for dy, dx in self.shifts]
        return [(0, 0), *shifts]

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        n, height, width, _ = images.shape
        segmentations = self.segmentation_list(height, width)
        views = self.views(height, width)
        heat = np.zeros((n, height, width))

        def score(inputs: np.ndarray, input_targets: np.ndarray) -> np.ndarray:
            if not self.softmax:
                return model.scores(inputs, input_targets, batch_size=batch_size)
            outputs = model.predict(inputs, batch_size=batch_size).astype(np.float64)
            outputs -= outputs.max(axis=1, keepdims=True)
            probabilities = np.exp(outputs)
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            return probabilities[np.arange(len(inputs)), input_targets]

        def finish(view: _View) -> None:
            # each segmentation is a partition: a pixel gets its own segment's score
            view_heat = view.scores[view.labels].sum(axis=0)
            heat[view.image] += np.roll(view_heat, view.shift, axis=(0, 1))

        units = (
            self._view(images[i], i, shift, segmentations) for i in range(n) for shift in views
        )
        for pieces in _chunks(units, batch_size):
            inputs = np.concatenate([view.inputs(start, stop) for view, start, stop in pieces])
            owners = np.concatenate(
                [np.full(stop - start, view.image) for view, start, stop in pieces]
            )
            scores = np.asarray(score(inputs, targets[owners]), dtype=np.float64)
            offset = 0
            for view, start, stop in pieces:
                view.scores[start:stop] = scores[offset : offset + stop - start]
                offset += stop - start
                if stop == view.n_segments:
                    finish(view)
        maps = heat / (len(segmentations) * len(views))
        maps = np.broadcast_to(maps[..., None], images.shape)
        return AttributionResult(np.ascontiguousarray(maps), self.name, self.get_params())

    def _view(
        self,
        image: np.ndarray,
        index: int,
        shift: tuple[int, int],
        segmentations: list[tuple[str, dict[str, Any]]],
    ) -> _View:
        """One shifted view of one image with its segments and its substrate."""
        dy, dx = shift
        view = np.roll(image, (-dy, -dx), axis=(0, 1))
        low, high = self.pixel_range
        pixels = np.clip((view - low) * (255.0 / (high - low)), 0, 255).astype(np.uint8)
        label_maps: list[np.ndarray] = []
        counts: list[int] = []
        for name, params in segmentations:
            try:
                labels = SEGMENTERS[name](pixels, **params)
            except TypeError as error:
                raise InvalidInputError(
                    f"segmentation {name!r} rejected its parameters {params!r}: {error}"
                ) from error
            # segment ids 0, 1, ... numbered on from the previous segmentation's
            ids, dense = np.unique(labels, return_inverse=True)
            label_maps.append(dense.reshape(labels.shape).astype(np.int32) + sum(counts))
            counts.append(len(ids))
        return _View(
            image=index,
            shift=shift,
            pixels=view,
            substrate=self._substrate(view),
            labels=np.stack(label_maps),
            segmentation_of=np.repeat(np.arange(len(counts)), counts),
            scores=np.zeros(sum(counts)),
        )

    def _substrate(self, view: np.ndarray) -> np.ndarray:
        low, high = self.pixel_range
        if self.substrate == "black":
            return np.full_like(view, low)
        if self.substrate == "white":
            return np.full_like(view, high)
        if self.substrate != "blur":
            return np.full_like(view, float(self.substrate))
        from scipy.ndimage import correlate1d, gaussian_filter1d

        size = 2 * round((PAPER_BLUR_SIZE // 2) * min(view.shape[:2]) / PAPER_SIZE) + 1
        delta = np.zeros(size)
        delta[size // 2] = 1.0
        # the official kernel: a blurred delta (reflect mode), applied with zero padding
        kernel = gaussian_filter1d(delta, PAPER_BLUR_SIGMA)
        blurred = correlate1d(view.astype(np.float64), kernel, axis=0, mode="constant")
        blurred = correlate1d(blurred, kernel, axis=1, mode="constant")
        return blurred.astype(view.dtype)


@dataclass
class _View:
    """A view of one image waiting for its segments' scores."""

    image: int
    shift: tuple[int, int]
    pixels: np.ndarray  # (H, W, C), shifted
    substrate: np.ndarray  # (H, W, C)
    labels: np.ndarray  # (S, H, W) segment ids, unique across segmentations
    segmentation_of: np.ndarray  # segment id -> index of its segmentation
    scores: np.ndarray  # one per segment id, filled as chunks come back

    @property
    def n_segments(self) -> int:
        return len(self.scores)

    def inputs(self, start: int, stop: int) -> np.ndarray:
        """The view with only segment ``k`` kept, for ``start <= k < stop``."""
        ids = np.arange(start, stop)
        kept = self.labels[self.segmentation_of[ids]] == ids[:, None, None]
        return np.where(kept[..., None], self.pixels, self.substrate)


def _chunks(views: Iterator[_View], batch_size: int) -> Iterator[list[tuple[_View, int, int]]]:
    """Group the views' segments into chunks of ``batch_size``: ``(view, start, stop)``.

    Views are built lazily, so only those with segments in the current chunk are held.
    """
    pieces: list[tuple[_View, int, int]] = []
    count = 0
    for view in views:
        start = 0
        while start < view.n_segments:
            stop = min(view.n_segments, start + batch_size - count)
            pieces.append((view, start, stop))
            count += stop - start
            start = stop
            if count == batch_size:
                yield pieces
                pieces, count = [], 0
    if pieces:
        yield pieces


def _check_segmentations(segmentations: Any) -> None:
    if isinstance(segmentations, str):
        if segmentations == "paper":
            return
        raise InvalidInputError(
            f"expected segmentations='paper' or a list of (name, params); got {segmentations!r}"
        )
    if not isinstance(segmentations, Sequence) or len(segmentations) == 0:
        raise InvalidInputError(
            "expected segmentations to be 'paper' or a non-empty list of (name, params) "
            f"pairs; got {segmentations!r}"
        )
    for entry in segmentations:
        if (
            not isinstance(entry, tuple | list)
            or len(entry) != 2
            or entry[0] not in SEGMENTERS
            or not isinstance(entry[1], dict)
        ):
            raise InvalidInputError(
                f"expected each segmentation as (name, params) with name in "
                f"{', '.join(SEGMENTERS)} and params a dict; got {entry!r}"
            )


def _check_shifts(shifts: Any) -> None:
    if isinstance(shifts, str):
        if shifts == "paper":
            return
    elif isinstance(shifts, Sequence) and all(
        isinstance(s, tuple | list)
        and len(s) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in s)
        for s in shifts
    ):
        return
    raise InvalidInputError(
        f"expected shifts='paper' or a list of (rows, cols) int pairs (() for none); got {shifts!r}"
    )


def _check_substrate(substrate: Any) -> None:
    if isinstance(substrate, str):
        if substrate in SUBSTRATES:
            return
    elif (
        isinstance(substrate, int | float | np.number)
        and not isinstance(substrate, bool)
        and bool(np.isfinite(substrate))
    ):
        return
    raise InvalidInputError(
        f"unknown substrate {substrate!r}: expected one of {', '.join(SUBSTRATES)} or a "
        "number to fill with"
    )


def _check_pixel_range(pixel_range: Any) -> None:
    if (
        isinstance(pixel_range, tuple | list)
        and len(pixel_range) == 2
        and all(
            isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in pixel_range
        )
        and pixel_range[0] < pixel_range[1]
    ):
        return
    raise InvalidInputError(
        f"expected pixel_range as (low, high) with low < high; got {pixel_range!r}"
    )


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(PAMI)
