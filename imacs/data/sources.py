"""Streaming data sources: a dataset read batch by batch, so memory follows the batch size.

:func:`as_data_source` turns what a user has (a folder of image files, an
:class:`~imacs.data.folder.ImageFolder`, a numpy array, a PyTorch ``DataLoader`` or any
iterable of batches, a ``tf.data.Dataset``) into a :class:`DataSource`, whose
:meth:`~DataSource.batches` yields :class:`Batch` es of at most ``batch_size`` images:
float32, channel-last ``(n, H, W, C)``, in the source's own pixel range (8-bit files and
integer arrays become 0..255 floats, never rescaled), with one stable name per image and
int64 class indices when labels are known.

Every source checks the same things as it streams, with the same messages: finite pixels,
one image shape across the dataset, labels that are class indices, and a dataset that is not
empty. Neither torch nor tensorflow is imported here: tensors are recognised by their
``.detach()`` / ``.numpy()`` / ``__array__`` methods.
"""

from __future__ import annotations

import abc
import csv
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal

import numpy as np
from PIL import Image

from imacs.data.folder import (
    UNREADABLE,
    ImageFolder,
    _check_size,
    _class_folder_labels,
    _find_images,
    _read,
)
from imacs.errors import InvalidInputError
from imacs.parameters import check_choice, check_positive_int

__all__ = [
    "ArraySource",
    "Batch",
    "DataSource",
    "FolderSource",
    "IterableSource",
    "TensorFlowDatasetSource",
    "as_data_source",
]

Channels = Literal["auto", "first", "last"]
OnError = Literal["raise", "skip"]

_CHANNEL_COUNTS = (1, 2, 3, 4)
#: a label in a CSV file that is a class index rather than a class name
_INTEGER = re.compile(r"-?[0-9]+")
_IMAGE_KEYS = ("image", "images")
_LABEL_KEYS = ("label", "labels")


@dataclass
class Batch:
    """At most ``batch_size`` images of a :class:`DataSource`, with their labels and names.

    ``images`` is float32 ``(n, H, W, C)``, finite, channel-last; ``labels`` is int64
    ``(n,)`` class indices, or ``None`` when the source has no labels; ``names`` gives
    each image a name that stays the same from one pass to the next (a file path relative
    to the folder, ``"array[17]"``, ``"batch3[5]"`` for the sixth image of the fourth batch
    a loader yielded, ``"element[17]"`` for the eighteenth element of an unbatched
    ``tf.data.Dataset``).
    """

    images: np.ndarray
    labels: np.ndarray | None
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)


class DataSource(abc.ABC):
    """A dataset that can be read any number of times, one batch at a time.

    Attributes
    ----------
    class_names:
        The names of the label indices, when known.
    skipped:
        Files left out because they could not be read (``on_error="skip"``).
    n_images:
        How many images a pass yields, when known before reading them (an array, a folder
        read with ``on_error="raise"``); otherwise ``None`` until one pass has finished.
        ``len(source)`` gives it, or raises ``TypeError`` while it is unknown.
    """

    class_names: list[str] | None = None
    skipped: list[str]
    n_images: int | None = None

    @abc.abstractmethod
    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Yield the dataset in batches of at most ``batch_size`` images, from the start."""

    def __len__(self) -> int:
        if self.n_images is None:
            raise TypeError(
                f"the number of images in this {type(self).__name__} is unknown until one "
                "pass over it has finished"
            )
        return self.n_images

    def __bool__(self) -> bool:  # without it, bool() would call __len__, which may raise
        return True


# -- conversions shared by the sources ----------------------------------------------------


def _few(items: Sequence[str], limit: int = 3) -> str:
    """``'a', 'b', 'c' and 4 more``: enough of a list to find the problem, never a flood."""
    shown = ", ".join(repr(item) for item in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _to_numpy(value: Any) -> np.ndarray:
    """A numpy array from a numpy array, a torch or TensorFlow tensor, or a nested list."""
    if hasattr(value, "detach"):  # torch: leave the autograd graph and the GPU
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":  # numpy has no bfloat16
            value = value.float()
    if not isinstance(value, np.ndarray) and callable(getattr(value, "numpy", None)):
        value = value.numpy()
    try:
        return np.asarray(value)
    except ValueError:  # NumPy 2 refuses ragged nested sequences outright
        return np.empty(0, dtype=object)


def _channel_last(array: np.ndarray, channels: Channels) -> np.ndarray:
    """Move the channel axis of a ``(B, ., ., .)`` batch last, as ``channels`` says.

    ``"auto"`` takes ``(B, C, H, W)`` for channels-first when ``C`` is 1 or 3 and the last
    axis cannot be a channel axis (not 1, 3 or 4), the layout PyTorch loaders yield.
    """
    if channels == "first" or (
        channels == "auto" and array.shape[1] in (1, 3) and array.shape[-1] not in (1, 3, 4)
    ):
        return array.transpose(0, 2, 3, 1)
    return array


def _as_images(value: Any, channels: Channels, where: str, *, single: bool) -> np.ndarray:
    """Float32 channel-last ``(B, H, W, C)`` from a batch (or one image when ``single``).

    A batch of rank 3 is ``(B, H, W)`` grayscale; one image of rank 2 is ``(H, W)``
    grayscale and of rank 3 ``(H, W, C)`` (or ``(C, H, W)``, see ``channels``).
    """
    array = _to_numpy(value)
    if array.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"expected numeric images in {where}; got an array of dtype {array.dtype} "
            "(images of different sizes?)"
            if array.dtype == object
            else f"expected numeric images in {where}; got an array of dtype {array.dtype}"
        )
    if single and array.ndim == 2:
        array = array[None, :, :, None]
    elif single and array.ndim == 3:
        array = array[None]
    elif not single and array.ndim == 3:
        if array.shape[-1] in (1, 3, 4):  # (B, H, 3) is far likelier (H, W, 3), one image
            raise InvalidInputError(
                f"expected a batch of images (B, H, W, C) or (B, H, W) in {where}; got shape "
                f"{array.shape}, which looks like one image (H, W, C): add a batch axis with "
                "image[None], or stack single images with np.stack"
            )
        array = array[..., None]
    if array.ndim != 4:
        raise InvalidInputError(
            f"expected images of shape (B, H, W, C) or (B, H, W) in {where}; got shape "
            f"{array.shape}"
        )
    array = _channel_last(array, channels)
    if array.shape[-1] not in _CHANNEL_COUNTS:
        raise InvalidInputError(
            f"expected channel-last images (B, H, W, C) with C in {_CHANNEL_COUNTS} in "
            f"{where}; got shape {array.shape}: pass channels='first' if the channel axis "
            "comes before height and width"
        )
    if 0 in array.shape[1:3]:
        raise InvalidInputError(
            f"expected images of at least 1x1 pixels in {where}; got shape {array.shape} "
            "(B, H, W, C), which has no pixels"
        )
    if array.dtype.kind == "f" and array.dtype.itemsize > 4:
        # beyond float32's range a value would become infinity, and the error would blame
        # the source for an infinity it does not hold
        finite = np.abs(array[np.isfinite(array)])
        top = float(finite.max()) if finite.size else 0.0
        if top > float(np.finfo(np.float32).max):
            raise InvalidInputError(
                f"expected pixel values within float32's range (|x| <= 3.4e38) in {where}; "
                f"got {top:.3g}: rescale the images"
            )
    return np.ascontiguousarray(array, dtype=np.float32)


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of float images to ``size`` with PIL, as image files are resized."""
    height, width = size
    if images.shape[1:3] == (height, width):
        return images
    out = np.empty((len(images), height, width, images.shape[-1]), dtype=np.float32)
    for i, image in enumerate(images):
        for c in range(image.shape[-1]):
            plane = Image.fromarray(np.ascontiguousarray(image[..., c]))  # mode "F"
            resized = plane.resize((width, height), Image.Resampling.BILINEAR)
            out[i, ..., c] = np.asarray(resized, dtype=np.float32)
    return out


def _decode(value: Any) -> str:
    # class names as bytes (tf.data) are UTF-8 text; other bytes still name distinct classes
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else str(value)


def _label_indices(
    values: Any, class_names: list[str] | None, where: str
) -> tuple[np.ndarray, list[str] | None]:
    """Class indices from ints or class names, and the class names that index them.

    Names are looked up in ``class_names`` when given, else in the sorted unique names,
    which become the class names.
    """
    array = _to_numpy(values)
    if array.ndim != 1:
        raise InvalidInputError(
            f"expected one label per image in {where}; got an array of shape {array.shape}"
        )
    if array.dtype.kind in "USO":
        names = [_decode(v) for v in array.tolist()]
        if class_names is None:
            class_names = sorted(set(names))
        index = {name: i for i, name in enumerate(class_names)}
        unknown = sorted({name for name in names if name not in index})
        if unknown:
            raise InvalidInputError(
                f"labels in {where} name classes that are not in class_names: {_few(unknown)}; "
                f"the known classes are {_few(class_names, 10)}"
            )
        return np.array([index[name] for name in names], dtype=np.int64), class_names
    return _check_indices(array, class_names, where), class_names


def _check_indices(array: np.ndarray, class_names: list[str] | None, where: str) -> np.ndarray:
    whole = array.dtype.kind == "f" and np.all(np.mod(array, 1) == 0)
    if whole and np.all(np.abs(array) < 2.0**63):  # beyond, the cast would make up a value
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise InvalidInputError(
            f"expected integer class indices or class names as labels in {where}; got dtype "
            f"{array.dtype}"
        )
    array = array.astype(np.int64, copy=False)
    if len(array) and array.min() < 0:
        raise InvalidInputError(
            f"expected class indices >= 0 as labels in {where}; got {int(array.min())}"
        )
    if class_names is not None and len(array) and array.max() >= len(class_names):
        raise InvalidInputError(
            f"expected class indices below {len(class_names)} (the number of class_names) as "
            f"labels in {where}; got {int(array.max())}"
        )
    return array


# -- the streaming machinery --------------------------------------------------------------


def _concat(parts: list[Batch]) -> Batch:
    if len(parts) == 1:
        return parts[0]
    labels = None
    if parts[0].labels is not None:
        labels = np.concatenate([p.labels for p in parts if p.labels is not None])
    names = [name for p in parts for name in p.names]
    return Batch(np.concatenate([p.images for p in parts]), labels, names)


def _take(batch: Batch, start: int, stop: int) -> Batch:
    labels = None if batch.labels is None else batch.labels[start:stop]
    return Batch(batch.images[start:stop], labels, batch.names[start:stop])


class _StreamedSource(DataSource):
    """Checks and re-batches the chunks a subclass reads, whatever their sizes.

    Subclasses yield float32 channel-last chunks from :meth:`_chunks`; this class checks
    pixels, shapes and labels, adds the ``labels=`` the user gave, and cuts the stream into
    batches of exactly ``batch_size`` images (the last one may be smaller).
    """

    def __init__(self, explicit_labels: np.ndarray | None, class_names: list[str] | None):
        self._explicit_labels = explicit_labels
        self.class_names = class_names
        self.skipped = []

    @abc.abstractmethod
    def _chunks(self, batch_size: int) -> Iterator[Batch]:
        """Yield the dataset in chunks of any size, converted but not yet checked."""

    def _describe(self) -> str:
        return "the data source"

    def batches(self, batch_size: int) -> Iterator[Batch]:
        """Yield batches of ``batch_size`` images (the last may be smaller), from the start."""
        check_positive_int(batch_size, "batch_size")
        return self._batches(batch_size)

    def _batches(self, batch_size: int) -> Iterator[Batch]:
        reference: tuple[str, tuple[int, ...]] | None = None
        labelled: bool | None = None
        total = 0
        pending: list[Batch] = []
        n_pending = 0
        for chunk in self._chunks(batch_size):
            if not chunk.names:
                continue
            reference = self._check_images(chunk, reference)
            if labelled is None:
                labelled = chunk.labels is not None
            chunk = self._with_labels(chunk, total, labelled)
            total += len(chunk)
            pending.append(chunk)
            n_pending += len(chunk)
            while n_pending >= batch_size:
                merged = _concat(pending)
                yield _take(merged, 0, batch_size)
                n_pending -= batch_size
                pending = [_take(merged, batch_size, len(merged))] if n_pending else []
        if total == 0:
            skipped = (
                f" ({len(self.skipped)} unreadable file(s) skipped: {_few(self.skipped)})"
                if self.skipped
                else ""
            )
            raise InvalidInputError(
                f"the dataset is empty: {self._describe()} yielded no images{skipped}"
            )
        if self._explicit_labels is not None and total != len(self._explicit_labels):
            raise InvalidInputError(
                f"labels= has {len(self._explicit_labels)} entries but {self._describe()} "
                f"yielded {total} images: give one label per image"
            )
        if pending:
            yield _concat(pending)
        self.n_images = total

    @staticmethod
    def _check_images(
        chunk: Batch, reference: tuple[str, tuple[int, ...]] | None
    ) -> tuple[str, tuple[int, ...]]:
        finite = np.isfinite(chunk.images).reshape(len(chunk), -1).all(axis=1)
        if not finite.all():
            bad = [chunk.names[i] for i in np.flatnonzero(~finite)]
            raise InvalidInputError(
                f"expected finite pixel values; image {bad[0]!r} contains NaN or infinity"
                + (f" (and {len(bad) - 1} more in its batch)" if len(bad) > 1 else "")
                + ": clean or drop those images first"
            )
        if reference is None:
            return chunk.names[0], chunk.images.shape[1:]
        name, shape = reference
        if chunk.images.shape[1:] != shape:
            other, other_shape = chunk.names[0], chunk.images.shape[1:]
            if shape[:2] == other_shape[:2]:  # same size, different channel counts
                advice = (
                    "pass convert_grayscale=True to give grey images three channels, or "
                    "convert the images to one colour mode; a model takes one number of channels"
                )
            else:
                advice = (
                    "pass size=(height, width) to resize every image (bilinear), or resize "
                    "them to the model's input size; a model takes one input shape"
                )
            raise InvalidInputError(
                f"the images have different shapes: {name!r} is {shape} (H, W, C) but "
                f"{other!r} is {other_shape}: {advice}"
            )
        return reference

    def _with_labels(self, chunk: Batch, start: int, labelled: bool) -> Batch:
        where = f"the labels of {chunk.names[0]!r}"
        if (chunk.labels is not None) != labelled:
            raise InvalidInputError(
                f"some batches of {self._describe()} have labels and some do not "
                f"(first at {chunk.names[0]!r}): yield labels with every batch or with none"
            )
        if chunk.labels is not None:
            if self._explicit_labels is not None:
                raise InvalidInputError(
                    f"labels are given twice: {self._describe()} yields its own labels and "
                    "labels= was passed too; drop labels= or the source's labels"
                )
            if chunk.labels.dtype.kind in "USO" and self.class_names is None:
                raise InvalidInputError(
                    f"{self._describe()} yields class names as labels ({where}); pass "
                    "class_names=[...] so that every batch maps them to the same indices "
                    "(a stream's full set of names is only known at its end)"
                )
            indices, _ = _label_indices(chunk.labels, self.class_names, where)
            if len(indices) != len(chunk):
                raise InvalidInputError(
                    f"expected one label per image in {where}; got {len(indices)} labels for "
                    f"{len(chunk)} images"
                )
            return Batch(chunk.images, indices, chunk.names)
        if self._explicit_labels is None:
            return chunk
        labels = self._explicit_labels[start : start + len(chunk)]
        if len(labels) != len(chunk):
            raise InvalidInputError(
                f"labels= has {len(self._explicit_labels)} entries but {self._describe()} "
                "yields more images: give one label per image"
            )
        return Batch(chunk.images, labels, chunk.names)


class FolderSource(_StreamedSource):
    """Image files under a folder, read lazily a file at a time (recursively, sorted by path).

    Labels come from one level of class sub-folders (as :func:`read_image_folder` finds
    them), from ``labels`` (a CSV file with columns ``filename``, relative to the folder,
    and ``label``, an index or a class name; or one label per file in sorted order), or are
    unknown.

    Size policy: all images must share one shape, because a model takes one input shape;
    with ``size=(height, width)`` every image is resized to it (bilinear, PIL) as it is
    read. Without it, the first image whose shape differs stops the pass with an error
    naming it and the first image. With ``convert_grayscale`` grey files get three equal
    channels, for models that take RGB and for folders that mix grey and colour files.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        labels: Any = None,
        *,
        size: tuple[int, int] | None = None,
        on_error: OnError = "raise",
        class_names: list[str] | None = None,
        convert_grayscale: bool = False,
    ):
        self.root = Path(folder)
        known = {Path(labels).resolve()} if isinstance(labels, str | os.PathLike) else set()
        self.paths = _find_images(self.root, known=known)
        self.names = [str(p.relative_to(self.root)) for p in self.paths]
        self.size = size
        self.on_error = on_error
        self.convert_grayscale = convert_grayscale
        folder_labels, folder_classes = _class_folder_labels(self.names)
        self._labels: np.ndarray | None
        if folder_labels is not None and labels is not None:
            raise InvalidInputError(
                f"labels are given twice: the images under {str(self.root)!r} sit in class "
                "sub-folders, and labels= was passed too; drop labels= or flatten the folder"
            )
        if folder_labels is not None and folder_classes is not None:
            if class_names is not None:  # the sub-folders name classes of the given list
                folder_labels, _ = _label_indices(
                    np.array(folder_classes)[folder_labels], class_names, "the sub-folder names"
                )
                folder_classes = class_names
            self._labels, class_names = folder_labels, folder_classes
        elif isinstance(labels, str | os.PathLike):
            self._labels, class_names = self._labels_from_csv(Path(labels), class_names)
        elif labels is not None:
            self._labels, class_names = _label_indices(labels, class_names, "labels=")
            if len(self._labels) != len(self.paths):
                raise InvalidInputError(
                    f"labels= has {len(self._labels)} entries but {str(self.root)!r} holds "
                    f"{len(self.paths)} image files: give one label per file, in sorted order"
                )
        else:
            self._labels = None
        super().__init__(None, class_names)
        self.n_images = len(self.paths) if on_error == "raise" else None
        self._warned: set[str] = set()

    def _describe(self) -> str:
        return f"the folder {str(self.root)!r}"

    def _labels_from_csv(
        self, path: Path, class_names: list[str] | None
    ) -> tuple[np.ndarray, list[str] | None]:
        if not path.is_file():
            raise InvalidInputError(
                f"expected labels= to be a CSV file with columns filename,label; "
                f"{str(path)!r} is not a file"
            )
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle)
                columns = [c.strip() for c in reader.fieldnames or []]
                if "filename" not in columns or "label" not in columns:
                    raise InvalidInputError(
                        f"expected the labels CSV {str(path)!r} to have columns 'filename' "
                        f"and 'label'; found {columns}"
                    )
                rows = [
                    {k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader
                ]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise InvalidInputError(
                f"cannot read the labels CSV {str(path)!r} ({exc}); expected a UTF-8 text "
                "file with columns filename,label"
            ) from exc
        by_name: dict[str, str] = {}
        duplicates = []
        for row in rows:
            name = str(PurePath(row["filename"]))
            if name in by_name:
                duplicates.append(name)
            by_name[name] = row["label"]
        if duplicates:
            raise InvalidInputError(
                f"the labels CSV {str(path)!r} lists {len(duplicates)} file(s) more than once: "
                f"{_few(sorted(set(duplicates)))}; keep one row per file"
            )
        known = set(self.names)
        unknown = sorted(name for name in by_name if name not in known)
        if unknown:
            raise InvalidInputError(
                f"the labels CSV {str(path)!r} names {len(unknown)} file(s) that are not image "
                f"files under {str(self.root)!r}: {_few(unknown)}; filenames are paths "
                "relative to the folder"
            )
        missing = [name for name in self.names if name not in by_name]
        if missing:
            raise InvalidInputError(
                f"{len(missing)} image file(s) under {str(self.root)!r} have no row in the "
                f"labels CSV {str(path)!r}: {_few(missing)}; add them or remove the files"
            )
        values = [by_name[name] for name in self.names]
        empty = [name for name, value in zip(self.names, values, strict=True) if not value]
        if empty:
            raise InvalidInputError(
                f"the labels CSV {str(path)!r} has an empty label for {_few(empty)}"
            )
        where = f"the labels CSV {str(path)!r}"
        # ASCII digits only: int() also reads "٣" and str.isdigit() also passes "²"
        if all(_INTEGER.fullmatch(v) for v in values):
            too_large = [v for v in values if abs(int(v)) > np.iinfo(np.int64).max]
            if too_large:
                raise InvalidInputError(
                    f"expected class indices or class names as labels in {where}; got "
                    f"{_few(too_large)}, too large to be class indices"
                )
            indices = np.array([int(v) for v in values], dtype=np.int64)
            return _check_indices(indices, class_names, where), class_names
        return _label_indices(np.array(values, dtype=object), class_names, where)

    def _chunks(self, batch_size: int) -> Iterator[Batch]:
        for i, (path, name) in enumerate(zip(self.paths, self.names, strict=True)):
            try:
                image = _read(path, self.size, convert_grayscale=self.convert_grayscale)
            except UNREADABLE as exc:
                if self.on_error == "raise":
                    raise InvalidInputError(
                        f"cannot read image {str(path)!r} ({exc}); fix or remove the file, or "
                        "pass on_error='skip' to leave unreadable files out with a warning"
                    ) from exc
                if name not in self._warned:
                    self._warned.add(name)
                    self.skipped.append(name)
                    warnings.warn(f"skipping unreadable image {str(path)!r}: {exc}", stacklevel=3)
                continue
            labels = None if self._labels is None else self._labels[i : i + 1]
            yield Batch(image[None], labels, [name])


class ArraySource(_StreamedSource):
    """Images already in memory (a numpy array, a tensor, an :class:`ImageFolder`).

    Batches are converted to float32 one at a time, so an integer array is not copied
    whole. ``(N, H, W)`` gets a channel axis; ``(N, C, H, W)`` is moved channel-last as
    ``channels`` says. With ``size=(height, width)`` each image is resized (bilinear).
    """

    def __init__(
        self,
        images: Any,
        labels: Any = None,
        *,
        size: tuple[int, int] | None = None,
        channels: Channels = "auto",
        class_names: list[str] | None = None,
        names: list[str] | None = None,
        source_labels: np.ndarray | None = None,
        source_class_names: list[str] | None = None,
    ):
        array = _to_numpy(images)
        if array.ndim not in (3, 4) or array.dtype.kind not in "biuf":
            raise InvalidInputError(
                "expected images as an array of shape (N, H, W, C) or (N, H, W); got "
                + (
                    f"an array of dtype {array.dtype}"
                    if array.dtype.kind not in "biuf"
                    else f"shape {array.shape}"
                )
            )
        if len(array) == 0:
            raise InvalidInputError("the dataset is empty: the image array has 0 images")
        if source_labels is not None and labels is not None:
            raise InvalidInputError(
                "labels are given twice: the ImageFolder has labels and labels= was passed "
                "too; drop one"
            )
        explicit = None
        if source_labels is not None:
            where = "the ImageFolder's labels"
            if class_names is not None and source_class_names is not None:
                # the folder's class names, looked up in the list the caller gave
                named = np.array(source_class_names, dtype=object)[source_labels]
                source_labels, class_names = _label_indices(named, class_names, where)
            else:
                class_names = source_class_names or class_names
                source_labels = _check_indices(_to_numpy(source_labels), class_names, where)
        elif labels is not None:
            explicit, class_names = _label_indices(labels, class_names, "labels=")
            if len(explicit) != len(array):
                raise InvalidInputError(
                    f"expected one label per image: the images have {len(array)} but labels= "
                    f"has {len(explicit)}"
                )
        super().__init__(explicit, class_names)
        self.images = array
        self.size = size
        self.channels = channels
        self.names = names if names is not None else [f"array[{i}]" for i in range(len(array))]
        self._source_labels = source_labels
        self.n_images = len(array)
        self._check_first()

    def _check_first(self) -> None:
        """Fail on a wrong layout when the source is made, not at the first batch."""
        _as_images(self.images[:1], self.channels, "the image array", single=False)

    def _chunks(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self.images), batch_size):
            stop = min(start + batch_size, len(self.images))
            images = _as_images(self.images[start:stop], self.channels, "the images", single=False)
            if self.size is not None:
                images = _resize(images, self.size)
            labels = None if self._source_labels is None else self._source_labels[start:stop]
            yield Batch(images, labels, self.names[start:stop])

    def _describe(self) -> str:
        return "the image array"


class _ImageFolderSource(ArraySource):
    def __init__(
        self,
        folder: ImageFolder,
        labels: Any,
        *,
        size: tuple[int, int] | None,
        class_names: list[str] | None,
    ):
        super().__init__(
            folder.images,
            labels,
            size=size,
            channels="last",
            class_names=class_names,
            names=list(folder.names),
            source_labels=folder.labels,
            source_class_names=folder.class_names,
        )
        self.skipped = list(folder.skipped or [])

    def _describe(self) -> str:
        return "the ImageFolder"


class IterableSource(_StreamedSource):
    """An iterable of batches: a PyTorch ``DataLoader``, a list of arrays, any re-iterable.

    Each element is ``(images, labels)``, ``images`` alone, or a dict with keys ``"image"``
    and ``"label"``; tensors are converted with ``.detach().cpu().numpy()``. A batch of rank
    3 is ``(B, H, W)`` grayscale.

    Every call to :meth:`batches` iterates the source again, so the source must yield the
    same images in the same order each time: a ``DataLoader(shuffle=True)`` or random
    augmentation does not. A comparison therefore reads the source once, into its store.
    """

    def __init__(
        self,
        data: Iterable[Any],
        labels: Any = None,
        *,
        size: tuple[int, int] | None = None,
        channels: Channels = "auto",
        class_names: list[str] | None = None,
    ):
        explicit = None
        if labels is not None:
            explicit, class_names = _label_indices(labels, class_names, "labels=")
        super().__init__(explicit, class_names)
        self.data = data
        self.size = size
        self.channels = channels
        # a generator is used up by one pass; iter() on a DataLoader would start its workers
        self._one_shot = isinstance(data, Iterator)
        self._passes = 0

    def _describe(self) -> str:
        return f"the {type(self.data).__name__}"

    def _elements(self) -> Iterator[Any]:
        return iter(self.data)

    def _split(self, element: Any, where: str) -> tuple[Any, Any]:
        """``(images, labels or None)`` from one element of the source."""
        if isinstance(element, dict):
            image_key = next((k for k in _IMAGE_KEYS if k in element), None)
            if image_key is None:
                raise InvalidInputError(
                    f"expected {where} to have an 'image' key (and optionally 'label'); got keys "
                    f"{sorted(map(str, element))}"
                )
            label_key = next((k for k in _LABEL_KEYS if k in element), None)
            return element[image_key], None if label_key is None else element[label_key]
        if isinstance(element, tuple | list):
            if len(element) == 1:
                return element[0], None
            if len(element) == 2:
                return element[0], element[1]
            raise InvalidInputError(
                f"expected {where} to be (images, labels) or images alone; got a "
                f"{type(element).__name__} of {len(element)} items"
            )
        return element, None

    def _chunks(self, batch_size: int) -> Iterator[Batch]:
        if self._one_shot and self._passes:
            raise InvalidInputError(
                f"{self._describe()} is a one-shot iterator (a generator?) that the first pass "
                "used up; pass something that can be iterated again: a list, a DataLoader, "
                "a tf.data.Dataset"
            )
        self._passes += 1
        for index, element in enumerate(self._elements()):
            yield self._chunk(index, element)

    def _chunk(self, index: int, element: Any) -> Batch:
        where = f"batch {index} of {self._describe()}"
        images, labels = self._split(element, where)
        array = _as_images(images, self.channels, where, single=False)
        names = [f"batch{index}[{j}]" for j in range(len(array))]
        return self._finish(array, labels, names, single=False)

    def _finish(self, array: np.ndarray, labels: Any, names: list[str], *, single: bool) -> Batch:
        if self.size is not None:
            array = _resize(array, self.size)
        if labels is None:
            return Batch(array, None, names)
        label_array = _to_numpy(labels)
        if single or label_array.ndim == 0:
            label_array = label_array.reshape(-1)
        return Batch(array, label_array, names)


class TensorFlowDatasetSource(IterableSource):
    """A ``tf.data.Dataset``, read with ``.as_numpy_iterator()`` on every pass.

    Elements may be batched or not, told apart by the rank of the image: rank 4 is a batch
    ``(B, H, W, C)``, rank 3 is one image ``(H, W, C)`` and rank 2 one grayscale image
    ``(H, W)``; single images are grouped into batches here. Elements are ``(image,
    label)``, a dict with ``"image"`` and ``"label"`` keys, or the image alone; string
    labels (bytes) are class names.
    """

    def _describe(self) -> str:
        return "the tf.data.Dataset"

    def _elements(self) -> Iterator[Any]:
        return iter(self.data.as_numpy_iterator())  # type: ignore[attr-defined]

    def _chunk(self, index: int, element: Any) -> Batch:
        images, labels = self._split(element, f"element {index} of the tf.data.Dataset")
        single = _to_numpy(images).ndim in (2, 3)
        if single:
            where = f"element {index} of the tf.data.Dataset"
            array = _as_images(images, self.channels, where, single=True)
            return self._finish(array, labels, [f"element[{index}]"], single=True)
        where = f"batch {index} of the tf.data.Dataset"
        array = _as_images(images, self.channels, where, single=False)
        names = [f"batch{index}[{j}]" for j in range(len(array))]
        return self._finish(array, labels, names, single=False)


def as_data_source(
    data: Any,
    labels: Any = None,
    *,
    size: tuple[int, int] | None = None,
    on_error: OnError = "raise",
    class_names: list[str] | None = None,
    channels: Channels = "auto",
    convert_grayscale: bool = False,
) -> DataSource:
    """Wrap a dataset so that it can be read batch by batch, with checks and labels.

    Parameters
    ----------
    data:
        A folder (``str`` or path) of image files; an :class:`ImageFolder`; an array or
        tensor ``(N, H, W, C)`` or ``(N, H, W)``; a ``tf.data.Dataset``; a PyTorch
        ``DataLoader`` or any re-iterable of batches (``(images, labels)``, ``images``,
        or ``{"image": ..., "label": ...}``); or a :class:`DataSource`, returned as is.
    labels:
        Class labels when ``data`` has none: an array-like with one int or class name per
        image, in the order the source yields them, or (for a folder) the path of a CSV
        file with columns ``filename`` (relative to the folder) and ``label``. Giving
        labels here for a source that has its own is an error, not a silent override.
    size:
        ``(height, width)`` to resize every image to (bilinear). Without it all images
        must share one shape; a pass that meets a second shape stops with an error naming
        the first image and the one that differs.
    on_error:
        For folders: ``"raise"`` stops at the first file that cannot be decoded;
        ``"skip"`` warns once per file, leaves it out and lists it in ``skipped``.
    class_names:
        The names of the class indices, e.g. in the order of the model's outputs. String
        labels (CSV names, sub-folder names, string arrays) are looked up in it; without
        it the sorted unique names become the classes. A streamed source (``DataLoader``,
        ``tf.data``) with string labels needs it, since its names are only known at the end.
    channels:
        Where the channel axis of arrays and tensors is: ``"last"``, ``"first"``
        (``(N, C, H, W)``, moved last), or ``"auto"``: channels-first when axis 1 is 1 or 3
        and the last axis is not 1, 3 or 4. Image files are always channel-last.
    convert_grayscale:
        For folders: give grey image files three equal channels, for models that take RGB.

    Pixels keep the source's range: integers (e.g. uint8) become float32 without rescaling.
    Each :meth:`~DataSource.batches` call reads the source again from the start, so an
    iterable must yield the same images in the same order every time; a shuffling
    ``DataLoader`` does not, which is why a comparison reads its source once, into its store.
    """
    check_choice(on_error, "on_error", ("raise", "skip"))
    check_choice(channels, "channels", ("auto", "first", "last"))
    checked_size = _check_size(size)
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(set(class_names)) != len(class_names):
            raise InvalidInputError(f"expected distinct class_names; got {class_names}")
    if isinstance(data, DataSource):
        if labels is not None or size is not None or class_names is not None or convert_grayscale:
            raise InvalidInputError(
                "expected no labels=, size=, class_names= or convert_grayscale= with a "
                "DataSource, which carries its own; make the DataSource with them instead"
            )
        return data
    if isinstance(data, str | os.PathLike):
        if channels == "first":
            raise InvalidInputError(
                "channels='first' applies to arrays and tensors; image files are read "
                "channel-last (H, W, C) already"
            )
        return FolderSource(
            data,
            labels,
            size=checked_size,
            on_error=on_error,
            class_names=class_names,
            convert_grayscale=convert_grayscale,
        )
    if convert_grayscale:
        raise InvalidInputError(
            "convert_grayscale=True applies to a folder of image files; give an array three "
            "channels with np.repeat(images, 3, axis=-1) instead"
        )
    if isinstance(data, ImageFolder):
        if channels == "first":
            raise InvalidInputError(
                "channels='first' applies to arrays and tensors; an ImageFolder is "
                "channel-last (N, H, W, C) already"
            )
        return _ImageFolderSource(data, labels, size=checked_size, class_names=class_names)
    if hasattr(data, "as_numpy_iterator"):
        return TensorFlowDatasetSource(
            data, labels, size=checked_size, channels=channels, class_names=class_names
        )
    if isinstance(data, np.ndarray) or hasattr(data, "__array__") or hasattr(data, "detach"):
        return ArraySource(
            data, labels, size=checked_size, channels=channels, class_names=class_names
        )
    if isinstance(data, Iterable):
        return IterableSource(
            data, labels, size=checked_size, channels=channels, class_names=class_names
        )
    raise InvalidInputError(
        f"expected a folder path, an ImageFolder, an array (N, H, W, C), a tf.data.Dataset or "
        f"an iterable of batches such as a DataLoader; got {type(data).__name__}"
    )
