"""Combining the outputs of several featurizers into one matrix to cluster."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imacs.errors import InvalidInputError

#: a column whose standard deviation is below this times its largest magnitude is constant
_FLOAT32_ROUNDING = 4 * float(np.finfo(np.float32).eps)


def standardize_blocks(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """Z-score every column, weigh every block equally, and concatenate: ``(N, sum D_k)``.

    ``blocks`` are the ``(N, D_k)`` outputs of the featurizers for the same ``N`` regions
    (stacked over all images). Each column is centred and divided by its standard
    deviation over the ``N`` rows (a column with zero variance, up to float32 rounding,
    separates no regions and becomes 0); then each block is divided by ``sqrt(D_k)``.

    Why: k-means clusters by Euclidean distance, a sum of squared differences over
    columns. Z-scoring stops a column measured in large units (a gradient magnitude)
    from drowning one in small units (a histogram bin). After it every column has
    variance 1, so a block's share of the distance is its number of columns: a 24-bin
    colour histogram would outweigh 7 shape numbers more than three to one, and a
    512-channel embedding would swamp both. Dividing a block by ``sqrt(D_k)`` makes each
    block's total variance 1 (or 0 if all its columns are constant), so each featurizer
    weighs the same whatever its dimension. Returns float32.
    """
    if len(blocks) == 0:
        raise InvalidInputError("expected at least one block of features; got none")
    arrays = [np.asarray(block) for block in blocks]
    for k, array in enumerate(arrays):
        if array.ndim != 2 or array.shape[0] != arrays[0].shape[0]:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise InvalidInputError(
                f"expected 2-D blocks (N, D_k) with the same N rows; got shapes {shapes} "
                f"(block {k} differs): stack each featurizer's output over the same regions"
            )
    n_rows = arrays[0].shape[0]
    combined = np.zeros((n_rows, sum(a.shape[1] for a in arrays)), dtype=np.float32)
    column = 0
    for k, array in enumerate(arrays):
        width = array.shape[1]
        if n_rows and width:
            centre, scale = _column_scales(array, k)
            out = combined[:, column : column + width]
            # a chunk of rows at a time in float64: the transient memory stays fixed
            # whatever the number of regions, and the output is float32 from the start
            for start in range(0, n_rows, _CHUNK_ROWS):
                rows = np.asarray(array[start : start + _CHUNK_ROWS], dtype=np.float64)
                out[start : start + _CHUNK_ROWS] = (rows - centre) * scale
        column += width
    return combined


#: rows standardized at once
_CHUNK_ROWS = 8192


def _column_scales(array: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column of block ``k``: its mean, and what multiplies the centred values.

    The factor is ``1 / (std * sqrt(D_k))``, or 0 for a constant column. Mean and
    standard deviation are summed over chunks of rows in float64 (two passes: the mean,
    then the squared deviations from it), so no float64 copy of the block is made.
    """
    n_rows, width = array.shape
    total = np.zeros(width)
    largest = np.zeros(width)
    for start in range(0, n_rows, _CHUNK_ROWS):
        rows = np.asarray(array[start : start + _CHUNK_ROWS], dtype=np.float64)
        if not np.isfinite(rows).all():
            raise InvalidInputError(
                f"block {k} holds NaN or infinite features; clustering needs finite values"
            )
        total += rows.sum(axis=0)
        np.maximum(largest, np.abs(rows).max(axis=0), out=largest)
    mean = total / n_rows
    squares = np.zeros(width)
    for start in range(0, n_rows, _CHUNK_ROWS):
        rows = np.asarray(array[start : start + _CHUNK_ROWS], dtype=np.float64)
        squares += ((rows - mean) ** 2).sum(axis=0)
    std = np.sqrt(squares / n_rows)
    # features arrive as float32: a spread within its rounding is no variation, and
    # dividing by it would blow rounding noise up to unit variance
    varies = std > _FLOAT32_ROUNDING * largest
    scale = np.zeros(width)
    scale[varies] = 1.0 / (std[varies] * np.sqrt(width))
    return mean, scale
