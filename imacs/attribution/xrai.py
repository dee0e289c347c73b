"""XRAI: attributions by region.

Kapishnikov, Bolukbasi, Viegas, Terry. "XRAI: Better Attributions Through Regions".
ICCV 2019. arXiv:1906.02825.

XRAI turns a pixel attribution (by default Integrated Gradients from a black and a white
baseline) into a ranking of image regions. Candidate regions are Felzenszwalb segments
at six scales, each dilated (:func:`imacs.segmentation.felzenszwalb.xrai_segments`).
Starting from nothing, XRAI repeatedly adds the candidate whose *not yet covered* pixels
have the highest mean attribution (the gain density), gives those pixels that density,
and stops when the candidates run out or the covered area exceeds ``area_threshold``;
pixels never covered get their own mean attribution, so the map's total is the (channel
max-reduced) attribution's total.

This is PAIR saliency 0.2.1's algorithm (``saliency/core/xrai.py``: ``_xrai`` and
``_xrai_fast``) with its parameters and defaults, and it gives PAIR's map and ranking
exactly. It is organised for speed, not as PAIR's per-mask loops over full images:

- duplicate and empty candidates are dropped up front (PAIR never picks a duplicate
  before its first copy, and drops it once the first is added);
- each candidate keeps the count, sum and absolute sum of attribution over its uncovered
  pixels; adding a region subtracts, through a pixel-to-candidates index, only the newly
  covered pixels' contributions, so a whole run touches each (pixel, candidate) pair once
  instead of once per step;
- the float64 running gains pick the winner; when other candidates are within float32
  rounding of it, their gains are recomputed exactly as PAIR does (the float32 mean of
  the uncovered pixels, in raster order) and PAIR's first-best rule decides, so rounding
  never changes the choice. Region values are those exact float32 means.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import (
    DEFAULT_BATCH_SIZE,
    AttributionMethod,
    AttributionResult,
    DatasetView,
)
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parallel import available_cores, thread_map
from imacs.parameters import check_positive_int
from imacs.segmentation.base import Segmenter
from imacs.segmentation.felzenszwalb import label_masks, xrai_segments

if TYPE_CHECKING:
    from imacs.store import Store

ALGORITHMS = ("full", "fast")

# numpy's float32 mean (pairwise summation, then a division) is within about
# (16 + log2(n / 128)) * 2**-24 of the true mean relative to mean(|a|): under 2e-6 for
# any image size. Gains closer than this bound (with a 10x margin) are re-decided exactly.
_FLOAT32_MEAN_RTOL = 2e-5
# float64 running sums drift by a few ulps of the mask's whole absolute sum per update
_FLOAT64_DRIFT = 1e-10


@dataclass
class XRAIResult(AttributionResult):
    """XRAI maps plus the ranked regions behind them.

    ``segments``: with ``flatten_xrai_segments=True`` an int32 array ``(N, H, W)`` of
    region ranks, 1 for the most important region of each image up to the number of
    regions (the uncovered rest, if any, ranks last); otherwise a list with one bool
    array ``(R, H, W)`` per image, the regions in order of importance. This is PAIR's
    ``XRAIOutput.segments``.
    """

    segments: np.ndarray | list[np.ndarray] | None = None


@dataclass
class _Regions:
    """One image's XRAI outcome: regions (flat pixel indices) in the order added."""

    pixels: list[np.ndarray]
    gains: list[float]
    uncovered: np.ndarray  # flat indices never covered
    fill: float  # their mean attribution (PAIR's fill), NaN when there are none


class _Candidates:
    """Candidate masks as pixel lists: mask -> pixels, and (built on first use) pixel -> masks.

    ``valid`` marks the masks worth considering: not empty, and not a repeat of an earlier
    mask (PAIR never picks a repeat before its first copy, and drops it once that is in).
    """

    def __init__(self, masks: np.ndarray):
        self.n_masks = len(masks)
        self.n_pixels = masks.shape[1] * masks.shape[2]
        flat = masks.reshape(self.n_masks, self.n_pixels)
        # one pass over the stack finds every (mask, pixel), masks ascending, then pixels
        self.mask_of, self.pixel_of = np.divmod(np.flatnonzero(flat), self.n_pixels)
        self.sizes = np.bincount(self.mask_of, minlength=self.n_masks)
        self.mask_starts = np.concatenate([[0], np.cumsum(self.sizes)])
        first: dict[bytes, int] = {}
        for k, row in enumerate(np.packbits(flat, axis=1)):
            first.setdefault(row.tobytes(), k)
        self.valid = np.zeros(self.n_masks, dtype=bool)
        self.valid[list(first.values())] = True
        self.valid &= self.sizes > 0
        self._masks_by_pixel: np.ndarray | None = None
        self._pixel_starts = np.zeros(0, dtype=np.int64)

    def pixels(self, mask: int) -> np.ndarray:
        """The pixels of ``mask``, ascending (raster order, as boolean indexing gives them)."""
        return self.pixel_of[self.mask_starts[mask] : self.mask_starts[mask + 1]]

    def totals(self, values: np.ndarray) -> np.ndarray:
        """Per mask, the sum of ``values`` ``(P,)`` over its pixels: ``(K,)``."""
        totals = np.zeros(self.n_masks)
        filled = self.sizes > 0  # reduceat needs strictly increasing starts
        if filled.any():
            starts = self.mask_starts[:-1][filled]
            totals[filled] = np.add.reduceat(values[self.pixel_of], starts)
        return totals

    def containing(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask, pixel) pairs for every valid mask that contains one of ``pixels``."""
        if self._masks_by_pixel is None:
            entries = self.valid[self.mask_of]
            pixel_of, mask_of = self.pixel_of[entries], self.mask_of[entries]
            self._masks_by_pixel = mask_of[np.argsort(pixel_of, kind="stable")]
            counts = np.bincount(pixel_of, minlength=self.n_pixels)
            self._pixel_starts = np.concatenate([[0], np.cumsum(counts)])
        starts, stops = self._pixel_starts[pixels], self._pixel_starts[pixels + 1]
        lengths = stops - starts
        index = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        index += np.arange(len(index))
        return self._masks_by_pixel[index], np.repeat(pixels, lengths)


def _first_best(
    attr: np.ndarray, candidates: _Candidates, masks: np.ndarray, covered: np.ndarray
) -> int:
    """PAIR's choice among near-tied ``masks``: the first with the highest exact gain."""
    best, best_gain = -1, -np.inf
    for mask in masks:
        pixels = candidates.pixels(int(mask))
        gain = attr[pixels[~covered[pixels]]].mean()
        if gain > best_gain:
            best, best_gain = int(mask), gain
    return best


def _xrai_full(
    attr: np.ndarray, masks: np.ndarray, area_threshold: float, min_pixel_diff: int
) -> _Regions:
    """PAIR's ``_xrai``: greedy, each step adding the mask with the best gain density."""
    candidates = _Candidates(masks)
    n_masks, n_pixels = candidates.n_masks, candidates.n_pixels
    attr64 = attr.astype(np.float64)
    abs64 = np.abs(attr64)
    # per mask, over the pixels it would add: count, attribution sum, absolute sum
    counts = candidates.sizes.copy()
    sums = candidates.totals(attr64)
    abs_sums = candidates.totals(abs64)
    drift = _FLOAT64_DRIFT * abs_sums
    alive = candidates.valid.copy()
    covered = np.zeros(n_pixels, dtype=bool)
    n_covered = 0
    regions: list[np.ndarray] = []
    gains: list[float] = []
    area = 0.0
    while area <= area_threshold:
        alive &= counts >= min_pixel_diff
        if not alive.any():
            break
        density = np.full(n_masks, -np.inf)
        density[alive] = sums[alive] / counts[alive]
        best = int(np.argmax(density))
        error = (_FLOAT32_MEAN_RTOL * abs_sums + drift) / np.maximum(counts, 1)
        near = np.flatnonzero(alive & (density >= density[best] - (error + error[best])))
        if len(near) > 1:
            best = _first_best(attr, candidates, near, covered)
        pixels = candidates.pixels(best)
        added = pixels[~covered[pixels]]
        regions.append(added)
        gains.append(float(attr[added].mean()))
        covered[added] = True
        n_covered += len(added)
        area = n_covered / n_pixels
        # the added pixels are no longer new to any mask that contains them
        touched, at = candidates.containing(added)
        counts -= np.bincount(touched, minlength=n_masks)
        sums -= np.bincount(touched, weights=attr64[at], minlength=n_masks)
        abs_sums -= np.bincount(touched, weights=abs64[at], minlength=n_masks)
        alive[best] = False
    return _finish(attr, regions, gains, covered)


def _xrai_fast(attr: np.ndarray, masks: np.ndarray, min_pixel_diff: int) -> _Regions:
    """PAIR's ``_xrai_fast``: masks ranked once by their own density, overlaps ignored."""
    candidates = _Candidates(masks)
    valid = np.flatnonzero(candidates.valid)
    attr64 = attr.astype(np.float64)
    density = candidates.totals(attr64)[valid] / candidates.sizes[valid]
    order = np.argsort(-density, kind="stable")
    # runs of densities within float32 rounding of each other: order them exactly as PAIR
    largest = float(np.abs(attr64).max(initial=0.0))
    tolerance = 2.0 * (_FLOAT32_MEAN_RTOL + _FLOAT64_DRIFT) * largest
    ranked = density[order]
    runs = np.split(valid[order], np.flatnonzero(ranked[:-1] - ranked[1:] > tolerance) + 1)
    exact_order: list[int] = []
    for run in runs:
        if len(run) > 1:
            exact = {int(k): attr[candidates.pixels(int(k))].mean() for k in run}
            exact_order.extend(sorted(exact, key=lambda k: (-exact[k], k)))
        else:
            exact_order.extend(run.tolist())
    covered = np.zeros(candidates.n_pixels, dtype=bool)
    regions: list[np.ndarray] = []
    gains: list[float] = []
    for mask in exact_order:
        pixels = candidates.pixels(mask)
        added = pixels[~covered[pixels]]
        if len(added) < min_pixel_diff:
            continue
        regions.append(added)
        gains.append(float(attr[added].mean()))
        covered[added] = True
    return _finish(attr, regions, gains, covered)


def _finish(
    attr: np.ndarray, regions: list[np.ndarray], gains: list[float], covered: np.ndarray
) -> _Regions:
    uncovered = np.flatnonzero(~covered)
    fill = float(attr[uncovered].mean()) if len(uncovered) else float("nan")
    return _Regions(regions, gains, uncovered, fill)


def _outputs(
    regions: _Regions, shape: tuple[int, int], flatten: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The XRAI map ``(H, W)`` and the ranked regions (rank map, or mask stack)."""
    n_pixels = shape[0] * shape[1]
    values = np.empty(n_pixels, dtype=np.float64)
    for pixels, gain in zip(regions.pixels, regions.gains, strict=True):
        values[pixels] = gain
    values[regions.uncovered] = regions.fill
    # PAIR: regions by decreasing gain (a stable sort), the uncovered rest last
    order = sorted(range(len(regions.gains)), key=lambda i: -regions.gains[i])
    ranked = [regions.pixels[i] for i in order]
    if len(regions.uncovered):
        ranked.append(regions.uncovered)
    if flatten:
        ranks = np.zeros(n_pixels, dtype=np.int32)
        for rank, pixels in enumerate(ranked, start=1):
            ranks[pixels] = rank
        return values.reshape(shape), ranks.reshape(shape)
    stack = np.zeros((len(ranked), n_pixels), dtype=bool)
    for i, pixels in enumerate(ranked):
        stack[i, pixels] = True
    return values.reshape(shape), stack.reshape(len(ranked), *shape)


def xrai_regions(
    attribution: np.ndarray,
    masks: np.ndarray,
    *,
    algorithm: str = "full",
    area_threshold: float = 1.0,
    min_pixel_diff: int = 50,
    flatten_xrai_segments: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """XRAI for one image from its attribution and candidate masks.

    ``attribution``: ``(H, W, C)`` (reduced over channels by max, as PAIR does) or
    ``(H, W)``; ``masks``: ``(K, H, W)`` bool. Returns the XRAI map ``(H, W)`` (float64)
    and the ranked regions: an int32 rank map ``(H, W)`` (1 = most important) or, with
    ``flatten_xrai_segments=False``, a bool stack ``(R, H, W)`` in order of importance.
    Equal to PAIR saliency's ``XRAI._xrai`` / ``_xrai_fast`` for the same inputs.
    """
    attr = np.asarray(attribution)
    if attr.ndim == 3:
        attr = attr.max(axis=-1)
    if attr.ndim != 2 or masks.ndim != 3 or masks.shape[1:] != attr.shape:
        raise InvalidInputError(
            f"expected an attribution (H, W[, C]) and masks (K, H, W) of the same H, W; got "
            f"{np.shape(attribution)} and {masks.shape}"
        )
    flat = np.ascontiguousarray(attr).reshape(-1)
    if algorithm == "full":
        regions = _xrai_full(flat, masks, area_threshold, min_pixel_diff)
    elif algorithm == "fast":
        regions = _xrai_fast(flat, masks, min_pixel_diff)
    else:
        raise InvalidInputError(
            f"unknown algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}"
        )
    return _outputs(regions, attr.shape, flatten_xrai_segments)


class _SegmentCache:
    """XRAI's default candidates per image, kept (bit-packed) so that attributing the same
    images for a second model, or again, does not segment them twice."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[np.ndarray, tuple[int, ...]]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every cached segmentation."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get(self, image: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
        digest = hashlib.sha256(repr((image.shape, image.dtype.str)).encode())
        digest.update(np.ascontiguousarray(image).data)
        key = digest.hexdigest()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is not None:
            packed, shape = entry
            return np.unpackbits(packed, count=int(np.prod(shape))).reshape(shape).view(bool)
        masks = xrai_segments(image, n_jobs=n_jobs)
        packed = np.packbits(masks)
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (packed, masks.shape)
                self._bytes += packed.nbytes
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, (old, _) = self._entries.popitem(last=False)
                self._bytes -= old.nbytes
        return masks


#: the default candidates of recent images (about 2.3 MB per 224x224 image)
SEGMENT_CACHE = _SegmentCache(max_bytes=256 << 20)


class XRAI(AttributionMethod):
    """XRAI region attributions, PAIR saliency's algorithm with its parameters.

    The map is constant over channels (XRAI attributes regions, not channels): each pixel
    holds its region's gain density, repeated in every channel, so a map summed over one
    channel totals the channel-max base attribution. The ranked regions come with it in
    ``result.segments`` (:class:`XRAIResult`).

    Parameters
    ----------
    steps:
        Integrated Gradients steps of the default base attribution (PAIR's ``steps``,
        default 100). Unused when ``base_attribution`` is given.
    area_threshold:
        Stop adding regions once they cover more than this fraction of the image; the
        rest gets its mean attribution. Default 1.0 (all regions, PAIR's). ``"fast"``
        ignores it, as PAIR's does.
    algorithm:
        ``"full"`` (default): greedy, each step re-scoring every candidate on the pixels
        it would add. ``"fast"``: candidates ranked once by their own density.
    min_pixel_diff:
        Candidates that would add fewer new pixels are dropped. Default 50 (PAIR's
        ``experimental_params['min_pixel_diff']``); lower it for tiny images. At least 1
        (PAIR fails when every remaining candidate adds nothing).
    flatten_xrai_segments:
        ``result.segments`` as one rank map per image (default) or as a stack of region
        masks per image.
    base_attribution:
        The pixel attribution XRAI aggregates, reduced over channels by max. ``None``
        (default): Integrated Gradients with PAIR's rule (``linspace(0, 1, steps)``) from
        two constant baselines, each image's minimum and its maximum, averaged: XRAI's
        black and white. An :class:`~imacs.AttributionMethod` instance is run on the same
        model, images and targets; one that learns from the dataset first (LTX) learns
        through XRAI's :meth:`prepare`, which hands it the dataset and returns its key.
        An array ``(N, H, W, C)`` or ``(N, H, W)`` is taken as the attribution of the
        images being attributed (as float32, like every map here).
    segments:
        Candidate regions. ``None`` (default): :func:`xrai_segments` (Felzenszwalb at
        six scales, dilated), cached per image. A :class:`~imacs.Segmenter` instance:
        one candidate per label of its partition (a partition gives XRAI nothing to
        choose between, so use it for a fixed ranking of given regions). Or one entry
        per image, each a bool ``(K, H, W)`` stack, a list of ``(H, W)`` bool masks, or an
        ``(H, W)`` int label map.
    """

    name = "xrai"
    # gradients only through the base attribution, which checks its own needs
    requires: ClassVar[frozenset[str]] = frozenset()
    citation = "Kapishnikov et al., ICCV 2019, arXiv:1906.02825"

    def __init__(
        self,
        *,
        steps: int = 100,
        area_threshold: float = 1.0,
        algorithm: str = "full",
        min_pixel_diff: int = 50,
        flatten_xrai_segments: bool = True,
        base_attribution: Any = None,
        segments: Any = None,
    ):
        check_positive_int(steps, "steps")
        check_positive_int(min_pixel_diff, "min_pixel_diff")
        if (
            isinstance(area_threshold, bool)
            or not isinstance(area_threshold, int | float | np.number)
            or not 0.0 <= area_threshold <= 1.0
        ):
            raise InvalidInputError(
                f"expected area_threshold to be a fraction of the image in [0, 1]; got "
                f"{area_threshold!r}"
            )
        if algorithm not in ALGORITHMS:
            raise InvalidInputError(
                f"unknown algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}"
            )
        if base_attribution is not None and not isinstance(
            base_attribution, AttributionMethod | np.ndarray
        ):
            raise InvalidInputError(
                "expected base_attribution to be None, an attribution method instance or a "
                f"numpy array of maps (N, H, W, C); got {type(base_attribution).__name__}"
            )
        if isinstance(segments, str) or (
            segments is not None and not isinstance(segments, Segmenter | Sequence | np.ndarray)
        ):
            raise InvalidInputError(
                "expected segments to be None, a segmenter instance, or one entry of masks "
                f"per image; got {type(segments).__name__}"
            )
        self.steps = steps
        self.area_threshold = area_threshold
        self.algorithm = algorithm
        self.min_pixel_diff = min_pixel_diff
        self.flatten_xrai_segments = flatten_xrai_segments
        self.base_attribution = base_attribution
        self.segments = segments

    def prepare(
        self,
        model: ModelAdapter,
        data: DatasetView,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        store: Store | None = None,
    ) -> str | None:
        """Prepare a ``base_attribution`` method on the dataset (its own :meth:`prepare`).

        The instance keeps what it learnt and makes the base maps of every later call.
        Returns its key, or ``None`` when it learns nothing or there is no such method
        (the default Integrated Gradients and given maps learn nothing).
        """
        if isinstance(self.base_attribution, AttributionMethod):
            return self.base_attribution.prepare(model, data, batch_size=batch_size, store=store)
        return None

    def _base_maps(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> np.ndarray:
        spec = self.base_attribution
        if spec is None:
            # imported here: XRAI only needs IG when no attribution is given
            from imacs.attribution.integrated_gradients import IntegratedGradients

            spec = IntegratedGradients(
                n_steps=self.steps,
                quadrature="riemann_include_endpoints",
                baselines=["black", "white"],
                pixel_range="image",
            )
        if isinstance(spec, AttributionMethod):
            return spec.attribute(model, images, targets, batch_size=batch_size).maps
        maps = np.asarray(spec, dtype=np.float32)
        if maps.shape != images.shape and maps.shape != images.shape[:3]:
            raise InvalidInputError(
                f"expected base_attribution maps of the images' shape {images.shape} (or "
                f"{images.shape[:3]} reduced over channels); got {maps.shape}: pass one map "
                "per image being attributed"
            )
        if not np.isfinite(maps).all():
            raise InvalidInputError("base_attribution maps contain NaN or infinity")
        return maps

    def _check_segments(self, images: np.ndarray) -> None:
        """Check given per-image segments up front, before any model call."""
        spec = self.segments
        if spec is None or isinstance(spec, Segmenter):
            return
        if len(spec) != len(images):
            raise InvalidInputError(
                f"expected segments for each of the {len(images)} images; got {len(spec)} "
                "entries: pass one (K, H, W) mask stack per image"
            )
        height, width = images.shape[1:3]
        for index in range(len(images)):
            entry = np.asarray(spec[index])
            if entry.shape == (height, width) and entry.dtype != bool:
                if np.issubdtype(entry.dtype, np.integer):
                    continue
                raise InvalidInputError(
                    f"segments of image {index}: expected a bool mask stack or an int label "
                    f"map; got a {entry.dtype} array"
                )
            if entry.ndim != 3 or entry.shape[1:] != (height, width) or entry.dtype != bool:
                raise InvalidInputError(
                    f"segments of image {index}: expected a bool array (K, {height}, {width}) "
                    f"of K masks, a list of ({height}, {width}) bool masks or an int label "
                    f"map ({height}, {width}); got a {entry.dtype} array of shape {entry.shape}"
                )

    def _candidates(self, index: int, image: np.ndarray, n_jobs: int | None) -> np.ndarray:
        spec = self.segments
        if spec is None:
            return SEGMENT_CACHE.get(image, n_jobs)
        if isinstance(spec, Segmenter):
            return label_masks(spec.segment(image))
        entry = np.asarray(spec[index])
        return label_masks(entry) if entry.ndim == 2 else entry

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        self._check_segments(images)
        base = self._base_maps(model, images, targets, batch_size)
        maps = np.empty(images.shape, dtype=np.float32)
        segments: list[np.ndarray] = []
        # Several images at once on threads (segmentation and selection release the GIL
        # for most of their time), one per core, so that only that many images'
        # candidates are in memory at a time; a single image segments its scales on
        # threads instead.
        cores = available_cores()
        per_image_jobs = 1 if len(images) > 1 else None

        def regions(i: int) -> tuple[np.ndarray, np.ndarray]:
            return xrai_regions(
                base[i],
                self._candidates(i, images[i], per_image_jobs),
                algorithm=self.algorithm,
                area_threshold=self.area_threshold,
                min_pixel_diff=self.min_pixel_diff,
                flatten_xrai_segments=self.flatten_xrai_segments,
            )

        for start in range(0, len(images), cores):
            index = range(start, min(start + cores, len(images)))
            for i, (values, ranked) in zip(index, thread_map(regions, index), strict=True):
                maps[i] = values[..., None]
                segments.append(ranked)
        return XRAIResult(
            maps,
            self.name,
            self.get_params(),
            segments=np.stack(segments) if self.flatten_xrai_segments else segments,
        )


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(XRAI)
