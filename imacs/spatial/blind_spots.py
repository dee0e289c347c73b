"""The blind-spot probe: one stimulus pasted at every cell of a grid, scored by a model.

A stimulus (a patch cut from a dataset image, or a synthetic blob from :func:`blob`) is
pasted on a neutral background at each cell of a ``grid`` x ``grid`` lattice of
positions spanning the whole frame. The model's target score at each position makes a
heat map; a network with a blind spot scores the stimulus far lower there (Alsallakh et
al., "Mind the Pad - CNNs Can Develop Blind Spots", ICLR 2021, whose detection
experiment this mirrors). A cell is flagged when its score lies more than ``threshold``
robust standard deviations (1.4826 x the median absolute deviation over cells) below the
median cell. Every cell is one image, so the probe costs one forward pass per cell,
sent in batches of the adapter's batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError

DEFAULT_GRID = 8
#: robust standard deviations below the median that flag a cell
DEFAULT_THRESHOLD = 3.0


def blob(size: int, channels: int = 3, *, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """A ``(size, size, channels)`` Gaussian blob from ``low`` at its rim to ``high`` inside."""
    axis = np.linspace(-1.0, 1.0, size)
    bump = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / 0.3)
    values = low + (high - low) * bump
    return np.repeat(values[..., None], channels, axis=-1).astype(np.float32)


def positions(height: int, width: int, patch: tuple[int, int], grid: int) -> list[tuple[int, int]]:
    """Top-left corners of the patch at each cell, row by row, from edge to edge."""
    rows = np.linspace(0, height - patch[0], grid).round().astype(int)
    columns = np.linspace(0, width - patch[1], grid).round().astype(int)
    return [(int(y), int(x)) for y in rows for x in columns]


@dataclass
class BlindSpots:
    """Each grid cell's score, the median, and the cells flagged as blind spots."""

    scores: np.ndarray
    target: int
    median: float
    spread: float
    flagged: np.ndarray
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores.tolist(),
            "target": self.target,
            "median": self.median,
            "spread": self.spread,
            "flagged": self.flagged.tolist(),
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlindSpots:
        return cls(
            scores=np.asarray(data["scores"], dtype=float),
            target=int(data["target"]),
            median=float(data["median"]),
            spread=float(data["spread"]),
            flagged=np.asarray(data["flagged"], dtype=bool),
            threshold=float(data["threshold"]),
        )


def probe_blind_spots(
    adapter: Any,
    stimulus: np.ndarray,
    image_shape: tuple[int, int, int],
    *,
    background: float | np.ndarray = 0.5,
    target: int | None = None,
    grid: int = DEFAULT_GRID,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int | None = None,
) -> BlindSpots:
    """Score ``stimulus`` at every cell of a ``grid`` x ``grid`` lattice on ``background``.

    ``image_shape`` is ``(H, W, C)``; ``background`` a value or a colour per channel
    (the dataset's mean colour is a neutral choice). ``target`` is the class scored; by
    default the one the model predicts with the stimulus in the middle cell.
    """
    height, width, channels = image_shape
    stimulus = np.asarray(stimulus, dtype=np.float32)
    if stimulus.ndim == 2:
        stimulus = stimulus[..., None]
    if stimulus.shape[-1] != channels:
        stimulus = np.broadcast_to(stimulus[..., :1], (*stimulus.shape[:2], channels))
    if stimulus.shape[0] > height or stimulus.shape[1] > width:
        raise InvalidInputError(
            f"the stimulus of {stimulus.shape[0]}x{stimulus.shape[1]} pixels does not fit in "
            f"{height}x{width} images; give a smaller patch"
        )
    if not isinstance(grid, int) or grid < 1:
        raise InvalidInputError(f"expected grid to be a positive int; got {grid!r}")
    canvas = np.empty((height, width, channels), dtype=np.float32)
    canvas[...] = np.asarray(background, dtype=np.float32)
    corners = positions(height, width, stimulus.shape[:2], grid)
    images = np.repeat(canvas[None], len(corners), axis=0)
    for image, (y, x) in zip(images, corners, strict=True):
        image[y : y + stimulus.shape[0], x : x + stimulus.shape[1]] = stimulus
    if target is None:
        middle = (grid // 2) * grid + grid // 2
        target = int(adapter.predict(images[middle : middle + 1]).argmax(axis=1)[0])
    scores = adapter.scores(images, np.full(len(images), target), batch_size=batch_size).astype(
        float
    )
    median = float(np.median(scores))
    spread = float(1.4826 * np.median(np.abs(scores - median)))
    # a flat map (every cell alike) has no spread: then nothing is flagged
    floor = max(spread, 1e-6 * max(abs(median), 1.0))
    flagged = scores < median - threshold * floor
    return BlindSpots(
        scores=scores.reshape(grid, grid),
        target=target,
        median=median,
        spread=spread,
        flagged=flagged.reshape(grid, grid),
        threshold=threshold,
    )
