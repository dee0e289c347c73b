"""The attribution-method interface.

A method talks only to the model-adapter contract and NumPy: it never imports a
framework. Its constructor takes the paper's parameters with the paper's defaults;
``attribute`` validates inputs once and hands ``_attribute`` clean arrays. A method
that learns from a dataset before it attributes (LTX pre-trains an explainer) overrides
``prepare``, which the runs call once with the whole dataset.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.components import Component
from imacs.errors import InvalidInputError
from imacs.images import as_image_batch, as_targets

if TYPE_CHECKING:
    from imacs.store import Store

DEFAULT_BATCH_SIZE = 32


class DatasetView:
    """The whole dataset a method may learn from in :meth:`AttributionMethod.prepare`.

    ``key`` identifies the images' contents in their order (``make_key("dataset", [digest
    of each image])``, the comparison's dataset key), ``targets`` holds one class per image,
    and ``read(indices)`` returns the images at ``indices`` as a float32 ``(n, H, W, C)``
    array, so a method reads the data a batch at a time and memory stays bounded by what
    it asks for.

    The key is given as text, or as a function of no arguments that computes it: then it
    is computed the first time a method reads ``key``, and kept. Digesting every image is
    a pass over the whole dataset, which a method that learns nothing never pays for.
    """

    def __init__(
        self,
        key: str | Callable[[], str],
        targets: np.ndarray,
        read: Callable[[np.ndarray], np.ndarray],
    ):
        self._key = key
        self.targets = targets
        self.read = read

    @property
    def key(self) -> str:
        """The dataset's key, computed on first use when it was given as a function."""
        if not isinstance(self._key, str):
            self._key = self._key()
        return self._key

    def __len__(self) -> int:
        return len(self.targets)

    def __repr__(self) -> str:
        return f"DatasetView({len(self)} images)"

    def images(self, indices: Any) -> np.ndarray:
        """The images at ``indices`` (a sequence or array of positions)."""
        return np.asarray(self.read(np.asarray(indices, dtype=np.int64)), dtype=np.float32)

    @classmethod
    def from_arrays(cls, images: np.ndarray, targets: np.ndarray) -> DatasetView:
        """A view of images held in memory; its key, the one a comparison would give them,
        is computed only when a method asks for it."""
        from imacs.store import array_digest, make_key

        images = np.asarray(images)
        if len(images) != len(targets):
            raise InvalidInputError(
                f"got {len(targets)} targets for {len(images)} images; give one target per image"
            )

        def key() -> str:
            return make_key("dataset", [array_digest(image) for image in images])

        return cls(key, np.asarray(targets, dtype=np.int64), lambda index: images[index])


@dataclass
class AttributionResult:
    """Attribution maps and what produced them.

    ``maps`` has the images' shape ``(N, H, W, C)``; ``convergence_delta`` is set by path
    methods (one completeness error per image). ``numpy.asarray(result)`` gives ``maps``.
    """

    maps: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    convergence_delta: np.ndarray | None = None

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.maps if dtype is None else self.maps.astype(dtype)

    def __len__(self) -> int:
        return len(self.maps)


class AttributionMethod(Component, abc.ABC):
    """Base class of attribution methods. Subclasses implement ``_attribute``.

    Methods need the adapter's gradients unless they say otherwise: forward-only methods
    (occlusion, PAMI) and wrappers whose needs depend on what they wrap set ``requires``
    to an empty set.
    """

    requires: ClassVar[frozenset[str]] = frozenset({"gradients"})

    def prepare(
        self,
        model: ModelAdapter,
        data: DatasetView,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        store: Store | None = None,
    ) -> str | None:
        """Learn from the whole dataset before any map of ``model`` is made (optional hook).

        Called once per model, with every image the run will attribute and its target, by
        ``imacs.compare`` (before its attribution tasks, whatever their size) and by
        ``imacs attribute``, so that no map depends on how the images are grouped into
        tasks or on where a run was resumed. ``store``, when given, is where the method may
        cache what it learnt between runs. The default learns nothing and returns
        ``None``.

        A method that overrides it keeps what it learnt on the instance, per
        ``model.fingerprint()`` (an executor that ships the method to workers ships that
        too), uses it in later calls of :meth:`attribute` for that model, and returns a
        string that identifies it: a key of everything that shaped it (the model's
        fingerprint, ``data.key``, the targets and the parameters that act on learning).
        The comparison adds that string to the store key of every map, so maps made after
        different learning never share a key, and a resumed run reuses only maps made
        after the same learning.
        """
        return None

    def attribute(
        self,
        model: ModelAdapter,
        images: Any,
        targets: Any,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> AttributionResult:
        """One attribution map per image for its target class.

        ``batch_size`` is the most inputs sent to the model in one call, whatever the
        method multiplies (steps x images x samples); results do not depend on it.
        """
        if not isinstance(model, ModelAdapter):
            raise InvalidInputError(
                f"expected a model adapter; got {type(model).__name__}: wrap the model with "
                "imacs.load_model(model) first"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"expected batch_size to be a positive int; got {batch_size!r}")
        for capability in self.requires:
            model.require(capability, by=f"attribution method {self.name!r}")
        x = as_image_batch(images)
        if model.num_classes is None:
            model.predict(x[:1])
        t = as_targets(targets, len(x), model.num_classes)
        result = self._attribute(model, x, t, batch_size)
        if result.maps.shape != x.shape:
            raise InvalidInputError(
                f"attribution method {self.name!r} returned maps of shape {result.maps.shape} "
                f"for images of shape {x.shape}"
            )
        result.maps = result.maps.astype(np.float32, copy=False)
        return result

    @abc.abstractmethod
    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        """Compute maps for validated float32 images and int64 targets."""
