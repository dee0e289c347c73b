"""Dataset-wide positional attribution maps: where in the frame each model looks.

For model ``m`` and image ``i`` the map ``φ_{m,i}`` is reduced over channels, its
magnitude taken and divided by its L1 norm, so every image carries a total attribution of
1 per model. The positional map is the mean of these over the dataset (Alsallakh et al.,
"Mind the Pad", ICLR 2021; anchors §3.2)::

    PA_m(cell) = mean_i  sum_{pixels p in cell} |φ_{m,i}(p)| / sum_p |φ_{m,i}(p)|

**One grid for images of any size.** Each normalised map is binned into ``grid`` x
``grid`` cells that each cover the same *share* of the image (cell ``g`` of an axis of
``n`` pixels spans ``[g n / G, (g + 1) n / G)``); a pixel cut by a cell boundary gives each
cell the fraction of it that falls inside. Binning keeps mass exactly, so a cell holds the
share of the image's attribution in that part of the frame, whatever the image's size.
Values are shown as *density*: a cell's share times the number of cells, so 1 means the
uniform share and 2 twice it.

**B - A and where it is real.** Per cell, the mean over images of ``d_i = PA_B,i - PA_A,i``
with a percentile bootstrap interval over images (pointwise, ``1 - alpha``). Which cells
differ is decided by a paired sign-flip permutation test with the *max-t* statistic
(Westfall and Young's single-step maxT; Nichols and Holmes 2002): under the null that A
and B are exchangeable within each image, flipping the sign of an image's whole
difference map leaves its distribution unchanged; the maximum over cells of |t| in each
flip gives one null distribution for all cells, so the adjusted p-values control the
family-wise error over all cells at once and use the strong correlation of neighbouring
cells, which Bonferroni ignores and Benjamini-Hochberg only assumes.

**Border against centre.** For a frame ``k`` pixels wide the ratio is the frame's share of
the attribution over its share of the area: 1 when attribution ignores position, above 1
when a model leans on the border (padding effects), below 1 when it avoids it. Computed
per image on the full-resolution map, then averaged.

Maps are added one image at a time (:meth:`PositionalAccumulator.add`) and only their
binned grids are kept, ``grid²`` float32 per model and image, in memory up to 16 MB and in
a temporary file past it; the statistics read them back a block at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs.spatial.row_buffer import RowBuffer

#: cells per side of the positional grid
DEFAULT_GRID = 32
#: frame widths in pixels of the border-versus-centre ratios (those below half the image)
DEFAULT_FRAMES = (1, 2, 4, 8)
#: the smallest |B - A| (in density: shares of the uniform share) a marked cell needs;
#: seed twins of one tiny CNN differ significantly by up to 0.24 in some cells
#: (tests/spatial/test_positional.py), a planted left bias by up to 1.3
DEFAULT_MIN_EFFECT = 0.5
DEFAULT_BOOTSTRAP = 1000
DEFAULT_FLIPS = 2000


def cell_overlaps(n: int, cells: int) -> np.ndarray:
    """``(cells, n)``: the fraction of pixel ``j`` that lies in cell ``g`` (columns sum to 1)."""
    edges = np.arange(cells + 1) * (n / cells)
    low, high = edges[:-1, None], edges[1:, None]
    pixels = np.arange(n)[None, :]
    return np.clip(np.minimum(high, pixels + 1) - np.maximum(low, pixels), 0.0, None)


def absolute_share(attribution: np.ndarray) -> np.ndarray:
    """``(H, W)`` |map| summed over channels' signed sum, divided by its L1 norm."""
    reduced = np.asarray(attribution, dtype=np.float64)
    if reduced.ndim == 3:
        reduced = reduced.sum(axis=-1)
    if reduced.ndim != 2:
        raise InvalidInputError(
            f"expected an attribution map of shape (H, W) or (H, W, C); got {reduced.shape}"
        )
    reduced = np.abs(reduced)
    total = reduced.sum()
    return reduced / total if total > 0 else np.zeros_like(reduced)


def frame_share(height: int, width: int, k: int) -> float:
    """The share of an ``height x width`` image's area in its ``k``-pixel frame."""
    inner = max(height - 2 * k, 0) * max(width - 2 * k, 0)
    return 1.0 - inner / (height * width)


def frame_ratio(share: np.ndarray, k: int) -> float:
    """The mass of ``share`` in the ``k``-pixel frame over the frame's share of the area."""
    height, width = share.shape
    inner = share[k : height - k, k : width - k].sum() if 2 * k < min(height, width) else 0.0
    return float((share.sum() - inner) / frame_share(height, width, k))


class PositionalAccumulator:
    """Collects both models' binned maps, image by image, for :class:`PositionalMaps`.

    Each image adds one row of ``2 * grid²`` float32 values (A's cells, then B's) to a
    :class:`~imacs.spatial.row_buffer.RowBuffer`, which moves them to a temporary file in
    ``directory`` past 16 MB; the statistics then read them a block at a time, so memory
    stays the same however many images are added.
    """

    def __init__(
        self,
        grid: int = DEFAULT_GRID,
        frames: Sequence[int] = DEFAULT_FRAMES,
        *,
        directory: str | os.PathLike[str] | None = None,
    ):
        if not isinstance(grid, int) or grid < 1:
            raise InvalidInputError(f"expected grid to be a positive int; got {grid!r}")
        self.grid = grid
        self.frames = tuple(int(k) for k in frames)
        self.cells = RowBuffer(2 * grid * grid, directory=directory)
        #: per image, A's then B's border-versus-centre ratio at each frame width
        self.ratios = RowBuffer(2 * len(self.frames), dtype=np.float64, spill_bytes=None)
        self.min_side: int | None = None
        self._overlaps: dict[tuple[int, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.cells)

    def _binned(self, share: np.ndarray) -> np.ndarray:
        rows = self._overlap(share.shape[0])
        columns = self._overlap(share.shape[1])
        return (rows @ share @ columns.T).astype(np.float32)

    def _overlap(self, n: int) -> np.ndarray:
        key = (n, self.grid)
        if key not in self._overlaps:
            self._overlaps[key] = cell_overlaps(n, self.grid)
        return self._overlaps[key]

    def add(self, map_a: np.ndarray, map_b: np.ndarray) -> None:
        """Add one image's raw maps of A and B (``(H, W)`` or ``(H, W, C)``)."""
        cells: list[np.ndarray] = []
        ratios: list[float] = []
        for raw in (map_a, map_b):
            share = absolute_share(raw)
            side_min = min(share.shape)
            self.min_side = side_min if self.min_side is None else min(self.min_side, side_min)
            cells.append(self._binned(share).ravel())
            ratios.extend(
                frame_ratio(share, k) if 2 * k < side_min else np.nan for k in self.frames
            )
        self.cells.append(np.concatenate(cells))
        self.ratios.append(np.asarray(ratios))

    def extend(self, other: PositionalAccumulator) -> None:
        """Add ``other``'s images after these (both on the same grid and frames)."""
        if (other.grid, other.frames) != (self.grid, self.frames):
            raise InvalidInputError(
                f"cannot join positional maps on grid {other.grid}, frames {other.frames} to "
                f"grid {self.grid}, frames {self.frames}"
            )
        self.cells.extend(other.cells)
        self.ratios.extend(other.ratios)
        if other.min_side is not None:
            low = self.min_side
            self.min_side = other.min_side if low is None else min(low, other.min_side)

    def close(self) -> None:
        """Drop the gathered maps (and their temporary file)."""
        self.cells.close()
        self.ratios.close()

    def result(
        self,
        *,
        alpha: float = 0.05,
        min_effect: float = DEFAULT_MIN_EFFECT,
        n_bootstrap: int = DEFAULT_BOOTSTRAP,
        n_flips: int = DEFAULT_FLIPS,
        seed: int = 0,
    ) -> PositionalMaps:
        """The positional maps, their difference, its intervals and the FWER mark."""
        n = len(self.cells)
        if not n:
            raise InvalidInputError("no maps were added: positional maps need at least one image")
        shape = (self.grid, self.grid)
        n_cells = self.grid * self.grid

        def difference(block: np.ndarray) -> np.ndarray:
            # B - A in float64 for one block of images: no float64 copy of all of them
            values = block[:, n_cells:].astype(np.float64)
            values -= block[:, :n_cells]
            return values

        def differences() -> Iterator[np.ndarray]:
            return (difference(block) for block in self.cells.blocks())

        sum_a, sum_b, sum_difference = np.zeros(n_cells), np.zeros(n_cells), np.zeros(n_cells)
        for block in self.cells.blocks():
            sum_a += block[:, :n_cells].sum(axis=0, dtype=np.float64)
            sum_b += block[:, n_cells:].sum(axis=0, dtype=np.float64)
            sum_difference += difference(block).sum(axis=0)
        rows = RowBlocks(n, n_cells, differences)
        rng = np.random.default_rng([seed, 15])
        low, high = bootstrap_interval(rows, alpha, n_bootstrap, rng)
        p_values = maxt_sign_flip(rows, n_flips, rng)
        ratios = self.ratios.to_array()
        frames = len(self.frames)
        border = _border_table(ratios[:, :frames], ratios[:, frames:], self.frames, alpha, rng)
        return PositionalMaps(
            mean_a=(sum_a / n * n_cells).reshape(shape),
            mean_b=(sum_b / n * n_cells).reshape(shape),
            difference=(sum_difference / n * n_cells).reshape(shape),
            ci_low=(low * n_cells).reshape(shape),
            ci_high=(high * n_cells).reshape(shape),
            p_value=p_values.reshape(shape),
            alpha=alpha,
            min_effect=min_effect,
            n_images=n,
            border=border,
        )


@dataclass
class RowBlocks:
    """``n`` rows of ``width`` values that ``blocks()`` yields in order, a block at a time.

    What the resampling statistics read, so that the rows need not be in memory at once.
    """

    n: int
    width: int
    blocks: Callable[[], Iterable[np.ndarray]]

    @classmethod
    def of(cls, values: np.ndarray | RowBlocks) -> RowBlocks:
        """``values`` as row blocks: an ``(N, C)`` array is one block."""
        if isinstance(values, RowBlocks):
            return values
        array = np.asarray(values)
        return cls(len(array), array.shape[1], lambda: [array])

    def weighted_sums(self, weights: np.ndarray) -> np.ndarray:
        """``weights @ rows`` for ``weights`` ``(R, n)``, read a block at a time."""
        total = np.zeros((len(weights), self.width))
        start = 0
        for block in self.blocks():
            total += weights[:, start : start + len(block)] @ block
            start += len(block)
        if start != self.n:
            raise ValueError(f"expected {self.n} rows; the blocks held {start}")
        return total


def replicates_per_chunk(n: int) -> int:
    """Resampling replicates drawn at once for ``n`` images: 250, fewer past 4,194 images.

    Each replicate is a row of ``n`` weights or signs, so a fixed 250 would make the
    transient memory grow with the dataset (40 MB of float64 at 20,000 images, twice that
    while drawing); past 2**20 / 250 images the chunk shrinks to keep it at 8 MB. The
    random numbers are the same whatever the chunk (numpy draws the rows in turn), so the
    chunk changes the memory and the number of passes over the rows, not the result.
    """
    return max(1, min(250, 2**20 // max(n, 1)))


def bootstrap_interval(
    values: np.ndarray | RowBlocks, alpha: float, n_bootstrap: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of the column means of ``values`` ``(N, C)``.

    Resamples images (rows): each replicate is a multinomial weighting of the rows, so a
    chunk of replicates is one matrix product, summed over the rows' blocks.
    """
    rows = RowBlocks.of(values)
    n = rows.n
    means = np.empty((n_bootstrap, rows.width))
    chunk = replicates_per_chunk(n)
    for start in range(0, n_bootstrap, chunk):
        stop = min(start + chunk, n_bootstrap)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=stop - start) / n
        means[start:stop] = rows.weighted_sums(weights)
    return (
        np.quantile(means, alpha / 2, axis=0),
        np.quantile(means, 1 - alpha / 2, axis=0),
    )


def maxt_sign_flip(
    differences: np.ndarray | RowBlocks, n_flips: int, rng: np.random.Generator
) -> np.ndarray:
    """FWER-adjusted p-value per column of paired ``differences`` ``(N, C)``, single-step maxT.

    The statistic is the one-sample t of each column; every flip multiplies each row by a
    random sign, which leaves the sum of squares as it is, so a chunk of flips needs only
    the signed sums. The observed flip (no change) is counted, so p is at least
    ``1 / (n_flips + 1)``.
    """
    rows = RowBlocks.of(differences)
    n = rows.n
    if n < 2:
        return np.ones(rows.width)
    squares, sums = np.zeros(rows.width), np.zeros(rows.width)
    for block in rows.blocks():
        squares += (block**2).sum(axis=0)
        sums += block.sum(axis=0)

    def t_of(sums: np.ndarray) -> np.ndarray:
        mean = sums / n
        variance = np.maximum(squares - n * mean**2, 0.0) / (n - 1)
        # a cell with (almost) no spread has no evidence either way
        scale = np.sqrt(variance / n)
        return np.where(scale > 1e-12, np.abs(mean) / np.maximum(scale, 1e-300), 0.0)

    observed = t_of(sums)
    exceed = np.ones(rows.width)
    chunk = replicates_per_chunk(n)
    for start in range(0, n_flips, chunk):
        stop = min(start + chunk, n_flips)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(stop - start, n))
        maxima = t_of(rows.weighted_sums(signs)).max(axis=1)
        exceed += (maxima[:, None] >= observed[None, :] - 1e-12).sum(axis=0)
    return exceed / (n_flips + 1)


def _border_table(
    ratios_a: np.ndarray,
    ratios_b: np.ndarray,
    frames: Sequence[int],
    alpha: float,
    rng: np.random.Generator,
) -> Any:
    import pandas as pd

    rows = []
    for j, k in enumerate(frames):
        a, b = ratios_a[:, j], ratios_b[:, j]
        kept = ~(np.isnan(a) | np.isnan(b))
        if not kept.any():
            continue
        d = (b - a)[kept][:, None]
        low, high = bootstrap_interval(d, alpha, DEFAULT_BOOTSTRAP, rng)
        p = maxt_sign_flip(d, DEFAULT_FLIPS, rng)[0]
        rows.append(
            {
                "frame": k,
                "ratio_a": float(a[kept].mean()),
                "ratio_b": float(b[kept].mean()),
                "difference": float(d.mean()),
                "ci_low": float(low[0]),
                "ci_high": float(high[0]),
                "p_value": float(p),
                "n_images": int(kept.sum()),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "frame",
            "ratio_a",
            "ratio_b",
            "difference",
            "ci_low",
            "ci_high",
            "p_value",
            "n_images",
        ],
    )
    # Holm over the frame widths: a few nested tests
    order = np.argsort(table["p_value"].to_numpy())
    adjusted = np.empty(len(table))
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(table) - rank) * table["p_value"].iloc[index]))
        adjusted[index] = running
    table["significant"] = adjusted <= alpha
    return table


@dataclass
class PositionalMaps:
    """Both models' positional maps on one grid, B - A, and where the difference is real.

    Maps are densities: a cell's mean share of the image's |attribution| times the number
    of cells (1 = the uniform share). ``ci_low``/``ci_high`` are pointwise bootstrap
    intervals of ``difference``; ``p_value`` is FWER-adjusted over all cells (maxT
    sign-flip), and ``significant`` is ``p_value <= alpha``; ``marked`` cells are
    significant with ``|difference| >= min_effect``, the cells the report outlines.
    ``border`` holds the border-versus-centre ratios per frame width.
    """

    mean_a: np.ndarray
    mean_b: np.ndarray
    difference: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    alpha: float
    n_images: int
    min_effect: float = DEFAULT_MIN_EFFECT
    border: Any = field(default=None)

    @property
    def significant(self) -> np.ndarray:
        return self.p_value <= self.alpha

    @property
    def marked(self) -> np.ndarray:
        return self.significant & (np.abs(self.difference) >= self.min_effect)

    ARRAYS = ("mean_a", "mean_b", "difference", "ci_low", "ci_high", "p_value")

    def as_arrays(self) -> dict[str, np.ndarray]:
        """Everything as named arrays, for an ``.npz`` file."""
        arrays = {name: np.asarray(getattr(self, name)) for name in self.ARRAYS}
        arrays["alpha"] = np.asarray(self.alpha)
        arrays["n_images"] = np.asarray(self.n_images)
        arrays["min_effect"] = np.asarray(self.min_effect)
        if self.border is not None:
            for column in self.border.columns:
                arrays[f"border_{column}"] = self.border[column].to_numpy()
        return arrays

    @classmethod
    def from_arrays(cls, arrays: Any) -> PositionalMaps:
        import pandas as pd

        border = pd.DataFrame(
            {
                name[len("border_") :]: arrays[name]
                for name in arrays.files
                if name.startswith("border_")
            }
        )
        return cls(
            **{name: np.asarray(arrays[name]) for name in cls.ARRAYS},
            alpha=float(arrays["alpha"]),
            n_images=int(arrays["n_images"]),
            min_effect=float(arrays["min_effect"]),
            border=border,
        )
