"""Small encodings of an image, its two attribution maps and its label map, for the report.

The report draws everything on canvas in the browser: it colours the maps, takes their
difference, outlines regions and crops region thumbnails. What it needs per image is
therefore data, not pictures, kept small enough for thousands of images in one file, and
two decodes per image:

- the *picture*: the image as 8-bit RGB, its long side at most ``max_side`` pixels, as a
  PNG, or as a JPEG where the PNG would be much bigger (photographs);
- the *sheet*: one lossless RGB PNG of twice the picture's height. The top half is the
  label map, each label spread over the three bytes of a pixel
  (``label = R + 256 G + 65536 B``) and resized nearest-neighbour so labels stay labels.
  The bottom half holds both maps: red is A, green is B (blue is 128), each quantised to
  8 bits around 128 with its own scale, kept beside the PNG, so that the page can draw
  each map at full contrast and still take their difference in common units.

PNGs and JPEGs carry no colour profile, so a browser hands their bytes to the canvas
unchanged.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError

#: the long side of the images embedded in the report, in pixels
MAX_SIDE = 128
#: the percentile of a map's |value| that becomes its full 8-bit range; the few pixels
#: above it are clipped, as :func:`imacs.visualization.heatmap` does
MAP_PERCENTILE = 99.5
#: 8-bit code of a zero attribution
MAP_ZERO = 128
#: codes MAP_ZERO - MAP_STEPS .. MAP_ZERO + MAP_STEPS span -scale .. +scale
MAP_STEPS = 127
#: a picture stays a lossless PNG unless that is more than this many times its JPEG
PNG_ALLOWANCE = 1.5
JPEG_QUALITY = 92


def display_size(height: int, width: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """``(height, width)`` scaled down so the long side is at most ``max_side``; never up."""
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"expected a positive image size; got {height}x{width}")
    factor = min(1.0, max_side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def encode(pixels: np.ndarray, format: str = "PNG") -> bytes:
    """``(H, W, 3)`` or ``(H, W)`` uint8 as PNG (lossless) or JPEG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    if format == "JPEG":
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def _resize_float(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged resize of one float plane to ``size`` (height, width)."""
    from PIL import Image

    if plane.shape == size:
        return plane
    image = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))  # mode "F"
    return np.asarray(image.resize((size[1], size[0]), Image.Resampling.BOX), dtype=np.float64)


def pixel_scale(image: np.ndarray) -> float:
    """The top of an image's pixel range: 1 for [0, 1] images, 255 for 8-bit ones.

    Images above 255 are taken as 16-bit. The report only shows the images, so a guess
    that is off for an unusually dark image only makes it look darker.
    """
    peak = float(np.max(image)) if image.size else 0.0
    if peak <= 1.5:
        return 1.0
    return 255.0 if peak <= 255.5 else 65535.0


def image_pixels(
    image: np.ndarray, size: tuple[int, int], *, scale: float | None = None
) -> np.ndarray:
    """An ``(H, W, C)`` image as ``(h, w, 3)`` uint8 RGB of ``size``.

    ``scale`` is the top of the pixel range (see :func:`pixel_scale`, the default). One
    channel is shown grey, two show the first, four drop the fourth (alpha would hide
    pixels the model saw).
    """
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise InvalidInputError(
            f"expected an image of shape (H, W, C) with C in (1, 2, 3, 4); got {array.shape}"
        )
    top = pixel_scale(array) if scale is None else scale
    channels = array[..., :3] if array.shape[-1] >= 3 else array[..., :1].repeat(3, axis=-1)
    planes = [_resize_float(channels[..., c] / top, size) for c in range(3)]
    return np.clip(np.round(np.stack(planes, axis=-1) * 255), 0, 255).astype(np.uint8)


def picture(image: np.ndarray, size: tuple[int, int], *, scale: float | None = None) -> bytes:
    """The image as PNG bytes, or JPEG bytes where the PNG would be much bigger."""
    pixels = image_pixels(image, size, scale=scale)
    lossless = encode(pixels, "PNG")
    lossy = encode(pixels, "JPEG")
    return lossless if len(lossless) <= PNG_ALLOWANCE * len(lossy) else lossy


def display_map(raw: Any, size: tuple[int, int]) -> np.ndarray:
    """A raw map summed over channels, L1-normalised as scoring does, resized by area."""
    from imacs.comparison.scoring import normalise_map

    return _resize_float(normalise_map(np.asarray(raw)), size)


def map_codes(plane: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """A map's 8-bit codes around :data:`MAP_ZERO`, and the scale they are relative to.

    ``code = 128 + round(127 * value / scale)``, clipped to 1..255. The ``scale`` is,
    unless given, the :data:`MAP_PERCENTILE` percentile of ``|value|`` (the maximum
    when that is zero, 1 for an all-zero map).
    """
    if scale is None:
        magnitude = np.abs(plane)
        scale = float(np.percentile(magnitude, MAP_PERCENTILE)) or float(magnitude.max()) or 1.0
    code = np.round(MAP_ZERO + MAP_STEPS * plane / scale)
    return np.clip(code, MAP_ZERO - MAP_STEPS, MAP_ZERO + MAP_STEPS), scale


def map_pixels(map_a: Any, map_b: Any, size: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """Both raw maps as ``(h, w, 3)`` uint8 codes of ``size``, and each map's scale.

    Each map is summed over channels (signed) and L1-normalised, as scoring does, then
    resized by area (:func:`display_map`) and coded by :func:`map_codes`, in red for A
    and green for B (blue is 128). Each map has its own scale, so both keep their full
    8-bit resolution, and ``(code - 128) / 127 * scale`` gives the values back to compare
    them.
    """
    return plane_pixels(display_map(map_a, size), display_map(map_b, size))


def plane_pixels(plane_a: np.ndarray, plane_b: np.ndarray) -> tuple[np.ndarray, float, float]:
    """:func:`map_pixels` of two maps already at their display size."""
    code_a, scale_a = map_codes(plane_a)
    code_b, scale_b = map_codes(plane_b)
    pixels = np.stack([code_a, code_b, np.full(plane_a.shape, MAP_ZERO)], axis=-1)
    return pixels.astype(np.uint8), scale_a, scale_b


def mean_picture(stack: np.ndarray) -> tuple[bytes, float]:
    """A mean-map stack ``(3, h, w)`` (A, B, where a cluster's regions lie) as one PNG.

    Red and green are A's and B's codes at one scale, the larger of the two maps'
    :data:`MAP_PERCENTILE` percentiles, so that the page can show them side by side and
    take B - A; blue is the share of images in which the pixel lies in the cluster's
    regions, 0..255. Returns the PNG and the scale.
    """
    magnitude = np.abs(stack[:2])
    scale = float(np.percentile(magnitude, MAP_PERCENTILE)) or float(magnitude.max()) or 1.0
    code_a, _ = map_codes(stack[0], scale)
    code_b, _ = map_codes(stack[1], scale)
    where = np.clip(np.round(255 * stack[2]), 0, 255)
    return encode(np.stack([code_a, code_b, where], axis=-1).astype(np.uint8)), scale


def display_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An ``(H, W)`` label map resized nearest-neighbour to ``size``, as int32."""
    from PIL import Image

    values = np.asarray(labels).astype(np.int32)
    if values.shape != size:
        resized = Image.fromarray(values).resize((size[1], size[0]), Image.Resampling.NEAREST)
        values = np.asarray(resized, dtype=np.int32)
    return values


def label_pixels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An ``(H, W)`` integer label map as ``(h, w, 3)`` uint8, resized nearest-neighbour.

    Label ``l`` becomes the pixel ``(l & 255, l >> 8 & 255, l >> 16 & 255)``.
    """

    array = np.asarray(labels)
    if array.ndim != 2 or array.dtype.kind not in "iu":
        raise InvalidInputError(
            f"expected an integer label map of shape (H, W); got {array.dtype} {array.shape}"
        )
    if array.size and (array.min() < 0 or array.max() >= 1 << 24):
        raise InvalidInputError(
            f"expected labels in 0 .. {(1 << 24) - 1}; got {array.min()} .. {array.max()}"
        )
    values = display_labels(array, size)
    return np.stack([values & 255, (values >> 8) & 255, (values >> 16) & 255], axis=-1).astype(
        np.uint8
    )


def sheet(
    labels: np.ndarray, map_a: Any, map_b: Any, size: tuple[int, int]
) -> tuple[bytes, float, float]:
    """The label map above both maps' codes, as one PNG, and the maps' scales."""
    maps, scale_a, scale_b = map_pixels(map_a, map_b, size)
    return encode(np.concatenate([label_pixels(labels, size), maps], axis=0)), scale_a, scale_b


def sheet_from_planes(
    labels: np.ndarray, plane_a: np.ndarray, plane_b: np.ndarray
) -> tuple[bytes, float, float]:
    """:func:`sheet` of a label map and two maps already at their display size."""
    maps, scale_a, scale_b = plane_pixels(plane_a, plane_b)
    size = (int(plane_a.shape[0]), int(plane_a.shape[1]))
    return encode(np.concatenate([label_pixels(labels, size), maps], axis=0)), scale_a, scale_b
