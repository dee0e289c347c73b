"""A folder of image files as one array, with labels from sub-folder names.

Pixels keep the files' own range (0..255 for 8-bit files, 0..65535 for 16-bit ones, the
values themselves for 32-bit float TIFFs): imacs works in the dataset's pixel range, and a
model that expects [0, 1] says so with its adapter's ``preprocessing={"scale": 1 / 255}``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from imacs.errors import InvalidInputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
#: how many skipped files a warning names; the debug log names them all
NAMED_SKIPPED = 5

logger = logging.getLogger(__name__)


@dataclass
class ImageFolder:
    """Images ``(N, H, W, C)`` float32, their paths relative to the folder, and labels.

    ``labels`` index ``class_names`` when the images sit in one sub-folder per class,
    and are ``None`` otherwise.
    """

    images: np.ndarray
    names: list[str]
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    skipped: list[str] | None = None


#: what reading an image file may raise when the file is damaged or hostile: decoders
#: raise OSError or ValueError mostly, but also SyntaxError, EOFError, struct.error,
#: IndexError or PIL's DecompressionBombError; each means the file cannot be read
UNREADABLE = (Exception,)


def _read(
    path: Path, size: tuple[int, int] | None, *, convert_grayscale: bool = False
) -> np.ndarray:
    """One file as ``(H, W, C)`` float32; grey becomes 3 channels with ``convert_grayscale``."""
    with Image.open(path) as opened:
        opened.load()
        image: Image.Image = opened
        if image.mode == "F":
            pass  # 32-bit float pixels keep their values; any conversion would round them
        elif image.mode == "I" or image.mode.startswith("I;16"):
            image = image.convert("I")
        elif image.mode not in ("L", "RGB"):
            image = image.convert("RGB")  # palette, RGBA, CMYK: compare what a viewer shows
        if size is not None and image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if convert_grayscale and array.shape[-1] == 1:
        # repeated rather than converted by PIL, which would clip 16-bit and float pixels
        array = np.repeat(array, 3, axis=-1)
    return array


def _check_size(size: Any) -> tuple[int, int] | None:
    """``size`` as ``(height, width)``, checked; ``None`` stays ``None``."""
    if size is None:
        return None
    if (
        not isinstance(size, tuple | list)
        or len(size) != 2
        or not all(isinstance(s, int | np.integer) and not isinstance(s, bool) for s in size)
        or min(size) < 1
    ):
        raise InvalidInputError(f"expected size=(height, width) with two ints >= 1; got {size!r}")
    return int(size[0]), int(size[1])


def _find_images(root: Path, *, known: Collection[Path] = ()) -> list[Path]:
    """Image files under ``root``, recursively, sorted by path; an error when there are none.

    Other files are left out with a warning that counts them and names the first few
    (all of them at debug level), except hidden files and the ``known`` ones (a labels
    file kept beside the images).
    """
    if not root.is_dir():
        raise InvalidInputError(f"expected a folder of images; {str(root)!r} is not a folder")
    # a folder named like an image ("scans.png/") is searched, not read
    paths, others = [], []
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            continue
        if path.suffix.lower() in IMAGE_SUFFIXES:
            paths.append(path)
        elif not path.name.startswith(".") and path.resolve() not in known:
            others.append(str(path.relative_to(root)))
    if not paths:
        raise InvalidInputError(
            f"found no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) under {str(root)!r}"
        )
    if others:
        named = ", ".join(others[:NAMED_SKIPPED])
        more = f" and {len(others) - NAMED_SKIPPED} more" if len(others) > NAMED_SKIPPED else ""
        logger.warning(
            "skipped %d file(s) under %r that are not images (%s): %s%s",
            len(others),
            str(root),
            " ".join(sorted(IMAGE_SUFFIXES)),
            named,
            more,
        )
        logger.debug("the files skipped under %r: %s", str(root), ", ".join(others))
    return paths


def _class_folder_labels(names: list[str]) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels and class names from one level of class sub-folders, or ``(None, None)``.

    Only when every image sits exactly one folder deep and there are at least two folders:
    a single sub-folder, or images at several depths, name no classes.
    """
    parents = {Path(name).parent for name in names}
    if not (all(len(Path(name).parts) == 2 for name in names) and len(parents) > 1):
        return None, None
    class_names = sorted(str(p) for p in parents)
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[str(Path(name).parent)] for name in names], dtype=np.int64)
    return labels, class_names


def read_image_folder(
    folder: str | Path,
    *,
    size: tuple[int, int] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    convert_grayscale: bool = False,
) -> ImageFolder:
    """Read every image under ``folder`` (recursively, sorted by path).

    Parameters
    ----------
    size:
        ``(height, width)`` to resize every image to (bilinear). Without it, all images
        must already share one size, because a model needs one input shape: the error
        lists the sizes found.
    on_error:
        ``"raise"`` stops at the first file that cannot be decoded; ``"skip"`` warns,
        leaves it out and records it in ``ImageFolder.skipped``.
    convert_grayscale:
        Give grey images three equal channels, for models that take RGB (and for folders
        that mix grey and colour files).
    """
    size = _check_size(size)
    root = Path(folder)
    paths = _find_images(root)
    arrays, names, skipped = [], [], []
    for path in paths:
        try:
            arrays.append(_read(path, size, convert_grayscale=convert_grayscale))
        except UNREADABLE as exc:
            if on_error == "raise":
                raise InvalidInputError(
                    f"cannot read image {str(path)!r} ({exc}); fix or remove the file, or pass "
                    "on_error='skip' to leave unreadable files out with a warning"
                ) from exc
            warnings.warn(f"skipping unreadable image {str(path)!r}: {exc}", stacklevel=2)
            skipped.append(str(path.relative_to(root)))
            continue
        names.append(str(path.relative_to(root)))
    if not arrays:
        raise InvalidInputError(
            f"none of the {len(paths)} image files under {str(root)!r} could be read"
        )
    shapes = sorted({a.shape for a in arrays})
    if len({shape[:2] for shape in shapes}) == 1 and len(shapes) > 1:
        raise InvalidInputError(
            f"the images under {str(root)!r} mix grey and colour files ({len(shapes)} channel "
            f"counts: {', '.join(map(str, shapes))}); pass convert_grayscale=True to give grey "
            "images three channels, as a model takes one number of channels"
        )
    if len(shapes) > 1:
        raise InvalidInputError(
            f"the images under {str(root)!r} have {len(shapes)} different shapes "
            f"(e.g. {', '.join(map(str, shapes[:3]))}); pass size=(height, width) to resize "
            "them all (bilinear), or resize the files to the model's input size"
        )
    labels, class_names = _class_folder_labels(names)
    return ImageFolder(np.stack(arrays), names, labels, class_names, skipped or None)
