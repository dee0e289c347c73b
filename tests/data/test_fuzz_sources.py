"""Fuzzing the data sources: any input either reads as valid batches or raises an imacs error.

Arrays of any rank, size, dtype and range, nested lists, iterables of odd batches, labels
and class names of any kind, and folders holding garbage, truncated and exotic image files
go through :func:`~imacs.data.sources.as_data_source` and
:func:`~imacs.data.folder.read_image_folder`. What comes out must be what the sources
promise (float32, channel-last, finite, int64 labels); what is refused must be refused
with an :class:`~imacs.errors.ImacsError` that says something, never a bare numpy or PIL
exception.
"""

from __future__ import annotations

import contextlib
import io
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from imacs.data import DataSource, as_data_source, read_image_folder
from imacs.data.folder import IMAGE_SUFFIXES
from imacs.errors import ImacsError

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.complex_number_dtypes(),
    hnp.datetime64_dtypes(),
    hnp.unicode_string_dtypes(max_len=3),
    hnp.byte_string_dtypes(max_len=3),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5)
ARRAYS = hnp.arrays(DTYPES, SHAPES)
SIZES = st.one_of(
    st.none(),
    st.tuples(st.integers(-2, 9), st.integers(-2, 9)),
    st.just((3.0, 4)),
    st.just([5, 5]),
)
CHANNELS = st.sampled_from(["auto", "first", "last"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.binary(max_size=4),
)
LABELS = st.one_of(
    st.none(),
    st.lists(SCALARS, max_size=8),
    hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=2, max_side=8)),
)
CLASS_NAMES = st.one_of(st.none(), st.lists(SCALARS, max_size=5))
BATCH_SIZES = st.integers(1, 5)


def _read_all(source: DataSource, batch_size: int) -> list[Any]:
    """Every batch of one pass, each checked against the promise of :class:`Batch`."""
    batches = list(source.batches(batch_size))
    assert batches, "a pass that yields nothing must raise instead"
    shape = batches[0].images.shape[1:]
    for batch in batches:
        images = batch.images
        assert images.dtype == np.float32 and images.ndim == 4
        assert images.shape[1:] == shape and images.shape[1] >= 1 and images.shape[2] >= 1
        assert images.shape[-1] in (1, 2, 3, 4)
        assert 1 <= len(batch) <= batch_size and len(images) == len(batch.names)
        assert np.isfinite(images).all()
        if batch.labels is not None:
            assert batch.labels.dtype == np.int64 and batch.labels.shape == (len(batch),)
            assert (batch.labels >= 0).all()
    return batches


@contextlib.contextmanager
def _only_imacs_errors() -> Iterator[None]:
    """Let the body succeed or raise an imacs error with a message; anything else fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skipped files and PIL's own warnings
            yield
    except ImacsError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"


@FUZZ
@given(
    images=ARRAYS,
    labels=LABELS,
    size=SIZES,
    channels=CHANNELS,
    class_names=CLASS_NAMES,
    batch_size=BATCH_SIZES,
)
def test_any_array_reads_or_is_refused_with_an_imacs_error(
    images: np.ndarray,
    labels: Any,
    size: Any,
    channels: Any,
    class_names: Any,
    batch_size: int,
) -> None:
    with _only_imacs_errors():
        source = as_data_source(
            images, labels, size=size, channels=channels, class_names=class_names
        )
        _read_all(source, batch_size)


NESTED = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4), max_leaves=40)


#: a short text such as "/" or "." names a real folder, which would be read as a folder of
#: images: the whole disk, not the fuzzing of nested lists this test is for
NOT_A_REAL_PATH = NESTED.filter(lambda data: not (isinstance(data, str) and Path(data).exists()))


@FUZZ
@given(data=NOT_A_REAL_PATH, labels=LABELS, batch_size=BATCH_SIZES)
def test_nested_lists_read_or_are_refused_with_an_imacs_error(
    data: Any, labels: Any, batch_size: int
) -> None:
    with _only_imacs_errors():
        _read_all(as_data_source(data, labels), batch_size)


ELEMENTS = st.one_of(
    ARRAYS,
    st.tuples(ARRAYS),
    st.tuples(ARRAYS, LABELS),
    st.tuples(ARRAYS, LABELS, SCALARS),
    st.dictionaries(
        st.sampled_from(["image", "images", "label", "labels", "other"]),
        st.one_of(ARRAYS, LABELS),
        max_size=3,
    ),
    SCALARS,
)


@FUZZ
@given(
    elements=st.lists(ELEMENTS, max_size=4),
    labels=LABELS,
    size=SIZES,
    class_names=CLASS_NAMES,
    batch_size=BATCH_SIZES,
)
def test_any_iterable_of_batches_reads_or_is_refused_with_an_imacs_error(
    elements: list[Any], labels: Any, size: Any, class_names: Any, batch_size: int
) -> None:
    with _only_imacs_errors():
        source = as_data_source(elements, labels, size=size, class_names=class_names)
        _read_all(source, batch_size)


# -- folders ------------------------------------------------------------------------------

#: PIL modes and the formats that can hold them
MODES = {
    "1": ("png", "bmp", "tiff"),
    "L": ("png", "jpeg", "bmp", "gif", "tiff", "webp"),
    "LA": ("png", "tiff"),
    "P": ("png", "gif", "bmp", "tiff"),
    "RGB": ("png", "jpeg", "bmp", "tiff", "webp"),
    "RGBA": ("png", "tiff", "webp"),
    "CMYK": ("jpeg", "tiff"),
    "I;16": ("png", "tiff"),
    "I": ("tiff",),
    "F": ("tiff",),
}
SUFFIX = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "gif": ".gif", "tiff": ".tif"}
SUFFIX["webp"] = ".webp"


@st.composite
def image_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real image file in some mode and format, maybe cut short or with a byte flipped."""
    mode = draw(st.sampled_from(sorted(MODES)))
    fmt = draw(st.sampled_from(MODES[mode]))
    height, width = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    bands = len(Image.new(mode, (1, 1)).getbands())
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, bands), np.uint8)
    image = Image.fromarray(pixels[..., 0] if bands == 1 else pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    data = buffer.getvalue()
    damage = draw(st.sampled_from(["none", "cut", "flip"]))
    if damage == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    return SUFFIX[fmt], data


@st.composite
def png_with_any_size(draw: st.DrawFn) -> tuple[str, bytes]:
    """A 1x1 PNG whose header claims any size, with a valid header checksum.

    Sizes of billions of pixels are what a decompression bomb looks like to a reader.
    """
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="png")
    data = bytearray(buffer.getvalue())
    width, height = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
    struct.pack_into(">II", data, 16, width, height)  # IHDR's width and height
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return ".png", bytes(data)


FILE_NAMES = st.text(
    st.characters(codec="utf-8", exclude_characters="/\\\x00", exclude_categories=("Cs",)),
    min_size=1,
    max_size=8,
).filter(lambda name: name not in (".", ".."))
ENTRIES = st.lists(
    st.tuples(
        st.sampled_from(["", "cat", "dog", "deep/er"]),
        FILE_NAMES,
        st.one_of(
            image_bytes(),
            png_with_any_size(),
            st.tuples(st.sampled_from([*sorted(IMAGE_SUFFIXES), ".txt", ""]), st.binary()),
            st.tuples(st.sampled_from([".png", ".jpg"]), st.just(None)),  # a folder
        ),
    ),
    max_size=6,
)


def _make_folder(root: Path, entries: list[Any]) -> None:
    for sub, name, (suffix, content) in entries:
        path = root / sub / f"{name}{suffix}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if content is None:
                path.mkdir(exist_ok=True)
            elif not path.is_dir():
                path.write_bytes(content)
        except OSError:  # a name this file system refuses: not what is being tested
            continue


@settings(FUZZ, max_examples=60)
@given(
    entries=ENTRIES,
    on_error=st.sampled_from(["raise", "skip"]),
    size=SIZES,
    batch_size=BATCH_SIZES,
)
def test_any_folder_reads_or_is_refused_with_an_imacs_error(
    entries: list[Any], on_error: Any, size: Any, batch_size: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _make_folder(Path(folder), entries)
        with _only_imacs_errors():
            _read_all(as_data_source(folder, size=size, on_error=on_error), batch_size)
        with _only_imacs_errors():
            read = read_image_folder(folder, size=size, on_error=on_error)
            _read_all(as_data_source(read), batch_size)


#: labels that look like class indices, with the digits int() and str.isdigit() disagree on
NUMBER_LIKE = st.from_regex(r"-{0,2}[0-9²٣]{1,22}", fullmatch=True)
CSV_LABELS = st.one_of(st.text(max_size=12), NUMBER_LIKE, st.integers(-2, 4).map(str))


def _csv(rows: list[tuple[str, str]]) -> bytes:
    text = "filename,label\n" + "".join(f"{name},{label}\n" for name, label in rows)
    return text.encode(errors="surrogatepass")


@FUZZ
@given(
    csv=st.one_of(
        st.binary(max_size=60),
        st.text(max_size=60).map(str.encode),
        # a row for each image, so that the labels themselves are what gets parsed
        st.tuples(
            st.permutations(["a.png", "b.png", "c.png"]),
            st.lists(CSV_LABELS, min_size=3, max_size=3),
        ).map(lambda drawn: _csv(list(zip(*drawn, strict=True)))),
        st.lists(
            st.tuples(
                st.sampled_from(["a.png", "b.png", "./a.png", "a.png ", "d.png"]), CSV_LABELS
            ),
            max_size=4,
        ).map(_csv),
    ),
    class_names=CLASS_NAMES,
)
def test_any_labels_csv_reads_or_is_refused_with_an_imacs_error(
    csv: bytes, class_names: Any
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name in ("a.png", "b.png", "c.png"):
            Image.new("L", (3, 3)).save(root / name)
        (root / "labels.csv").write_bytes(csv)
        with _only_imacs_errors():
            source = as_data_source(root, root / "labels.csv", class_names=class_names)
            _read_all(source, 2)
