"""The ``"embedding"`` featurizer: a model's own inner features, pooled inside each region.

The option of step 5 of the method spec: regions are described by what a network sees
in them, average-pooled over the region's footprint on a spatial feature map. Using one
of the two compared models biases the clusters towards that model's notion of
similarity; using a third model (any adapter with the ``embedding`` capability) does not.
"""

from __future__ import annotations

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.errors import InvalidInputError
from imacs.features.base import Featurizer
from imacs.hookspecs import Register, hookimpl


def overlap_matrix(n_pixels: int, n_cells: int) -> np.ndarray:
    """``(n_cells, n_pixels)``: how much of pixel ``p`` lies in cell ``c`` along one axis.

    The axis ``[0, n_pixels)`` is cut into ``n_cells`` equal cells, as a feature map's
    positions cut the image; pixel ``p`` spans ``[p, p + 1)``. Every column sums to 1.
    """
    edges = np.linspace(0.0, n_pixels, n_cells + 1)
    pixels = np.arange(n_pixels, dtype=np.float64)
    start = np.maximum(edges[:-1, None], pixels[None, :])
    stop = np.minimum(edges[1:, None], pixels[None, :] + 1.0)
    return np.maximum(stop - start, 0.0)


def region_weights(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(R, h, w)``: each region's mask of ``labels`` area-averaged down to ``shape``.

    Entry ``[r, i, j]`` is the area of region ``r`` inside feature cell ``(i, j)``, in
    pixels; so ``[r]`` sums to the region's area. Computed without one mask per region:
    a ``bincount`` over (region, image row) for each feature column, then one matrix
    product over the rows.
    """
    height, width = labels.shape
    cells_y, cells_x = shape
    labels = labels.astype(np.intp)
    n_regions = int(labels.max()) + 1
    along_y = overlap_matrix(height, cells_y)  # (h, H)
    along_x = overlap_matrix(width, cells_x)  # (w, W)
    index = (labels * height + np.arange(height)[:, None]).ravel()
    per_row = np.empty((n_regions * height, cells_x))  # region area in (image row, column)
    for j in range(cells_x):
        column_share = np.broadcast_to(along_x[j], (height, width)).ravel()
        per_row[:, j] = np.bincount(index, column_share, n_regions * height)
    return np.asarray(along_y @ per_row.reshape(n_regions, height, cells_x))


class ModelEmbedding(Featurizer):
    """Each region as the mean of a model's feature map over the region's footprint.

    ``model.embed(image[None], layer=layer)`` gives a channel-last map ``(1, h, w, c)``;
    each region's mask is downsampled to ``(h, w)`` by area averaging, and the region's
    features are the mean of the ``c``-vectors weighted by those areas. ``D = c``.

    Needs an adapter with the ``embedding`` capability, passed as ``model=``.

    Parameters
    ----------
    layer:
        The layer to read, by the adapter's layer name. ``None`` (default) takes the
        adapter's default, the last layer with a spatial feature map. The layer must be
        spatial (a convolutional block, not a pooled or fully connected layer).
    """

    name = "embedding"
    requires = frozenset({"embedding"})
    citation = "IMACS method spec, step 5 (model features pooled inside the region)"

    def __init__(self, *, layer: str | None = None):
        if layer is not None and not isinstance(layer, str):
            raise InvalidInputError(f"expected layer to be a layer name or None; got {layer!r}")
        self.layer = layer

    def _featurize(
        self, image: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> np.ndarray:
        return self._featurize_batch(image[None], labels[None], model)[0]

    def _featurize_batch(
        self, images: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> list[np.ndarray]:
        assert model is not None  # Featurizer checks that requires is met
        features = np.asarray(model.embed(images, layer=self.layer), dtype=np.float64)
        which = repr(self.layer) if self.layer is not None else "the default layer"
        if features.ndim != 4 or features.shape[0] != len(images):
            hint = (
                "it has no spatial positions; "
                if features.ndim == 2
                else f"expected ({len(images)}, h, w, c) channel-last; "
            )
            raise InvalidInputError(
                f"featurizer 'embedding' needs a spatial feature map from {which}, but "
                f"embed() returned shape {features.shape}: {hint}pass layer= the name of a "
                "convolutional layer (one whose output is (N, C, h, w)); "
                "model.layer_names() lists them"
            )
        _, cells_y, cells_x, channels = features.shape
        blocks = []
        for label_map, image_features in zip(labels, features, strict=True):
            weights = region_weights(label_map, (cells_y, cells_x)).reshape(-1, cells_y * cells_x)
            area = np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)  # absent label: zeros
            blocks.append((weights @ image_features.reshape(cells_y * cells_x, channels)) / area)
        return blocks


@hookimpl
def register_featurizers(register: Register) -> None:
    register(ModelEmbedding)
