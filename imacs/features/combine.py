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
    arrays = [np.asarray(block, dtype=np.float64) for block in blocks]
    for k, array in enumerate(arrays):
        if array.ndim != 2 or array.shape[0] != arrays[0].shape[0]:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise InvalidInputError(
                f"expected 2-D blocks (N, D_k) with the same N rows; got shapes {shapes} "
                f"(block {k} differs): stack each featurizer's output over the same regions"
            )
        if not np.isfinite(array).all():
            raise InvalidInputError(
                f"block {k} holds NaN or infinite features; clustering needs finite values"
            )
    scaled = []
    for array in arrays:
        if array.shape[0] == 0 or array.shape[1] == 0:
            scaled.append(np.zeros_like(array))
            continue
        centred = array - array.mean(axis=0)
        std = array.std(axis=0)
        # features arrive as float32: a spread within its rounding is no variation, and
        # dividing by it would blow rounding noise up to unit variance
        noise = _FLOAT32_ROUNDING * np.abs(array).max(axis=0)
        z = np.divide(centred, std, out=np.zeros_like(centred), where=std > noise)
        scaled.append(z / np.sqrt(array.shape[1]))
    return np.concatenate(scaled, axis=1).astype(np.float32)
