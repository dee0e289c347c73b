"""Captum's Occlusion: the score change when a sliding window is set to the baseline.

Zeiler, Fergus. "Visualizing and Understanding Convolutional Networks". ECCV 2014.
arXiv:1311.2901. Implementation: ``captum.attr.Occlusion``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs_captum.baselines import check_baselines
from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores

#: the window's side without one given: the built-in occlusion's and PAIR saliency's
DEFAULT_WINDOW = 15


class CaptumOcclusion(CaptumMethod):
    """``captum.attr.Occlusion`` on the adapter's model, in pixel space.

    Each pixel's attribution is the mean, over the windows that cover it, of
    ``F(x) - F(x with the window set to the baseline)``.

    Parameters
    ----------
    sliding_window_shapes:
        The window, in Captum's channels-first order ``(C, h, w)``, or ``(h, w)`` for a
        window through all channels. Captum has no default; ours, ``None``, is 15 x 15
        through all channels (cut to the image if it is smaller), the default of the
        built-in ``occlusion`` and of PAIR saliency.
    strides:
        Steps between windows: an int for every axis, ``(h, w)``, or Captum's
        ``(c, h, w)``. ``None`` is Captum's default, 1 along every axis, which takes
        ``(H - h + 1) * (W - w + 1)`` model evaluations per image: pass e.g. the window's
        half for a quicker map.
    baselines:
        What the window is filled with: ``None`` (zero, Captum's default), a number, or an
        array in the images' layout, ``(H, W, C)`` or one per image ``(N, H, W, C)``.

    ``batch_size`` becomes Captum's ``perturbations_per_eval``: a chunk of ``k <=
    batch_size`` images is evaluated ``batch_size // k`` windows at a time.
    """

    name = "captum-occlusion"
    citation = "Zeiler & Fergus, ECCV 2014, arXiv:1311.2901 (Captum)"
    builtin = "occlusion"
    gradient = False

    def __init__(
        self,
        *,
        sliding_window_shapes: tuple[int, ...] | None = None,
        strides: int | tuple[int, ...] | None = None,
        baselines: Any = None,
    ):
        if sliding_window_shapes is not None:
            _check_shape(sliding_window_shapes, "sliding_window_shapes")
        if strides is not None and not isinstance(strides, int | np.integer):
            _check_shape(strides, "strides")
        elif strides is not None and (isinstance(strides, bool) or strides < 1):
            raise InvalidInputError(f"expected strides to be an int >= 1; got {strides!r}")
        check_baselines(baselines)
        self.sliding_window_shapes = sliding_window_shapes
        self.strides = strides
        self.baselines = baselines

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import Occlusion

        return Occlusion(forward)

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        _, height, width, channels = call.images.shape
        window = self.sliding_window_shapes
        if window is None:
            window = (min(DEFAULT_WINDOW, height), min(DEFAULT_WINDOW, width))
        window = _channels_first(window, channels)  # (h, w): through all channels
        if window[1] > height or window[2] > width or window[0] > channels:
            raise InvalidInputError(
                f"expected a sliding window no larger than the image (C, H, W) = "
                f"{(channels, height, width)}; got {window}"
            )
        strides = self.strides
        if strides is not None and not isinstance(strides, int | np.integer):
            strides = _channels_first(strides, 1)  # (h, w): every channel offset
        return {
            "sliding_window_shapes": window,
            "strides": strides if strides is None or isinstance(strides, tuple) else int(strides),
            "baselines": call.baselines(self.baselines),
            # chunks hold at most batch_size images
            "perturbations_per_eval": max(1, call.batch_size // len(call.images)),
        }


def _check_shape(value: Any, name: str) -> None:
    if (
        not isinstance(value, tuple | list)
        or len(value) not in (2, 3)
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
        or min(value) < 1
    ):
        raise InvalidInputError(
            f"expected {name} to be a tuple of positive ints, (h, w) or Captum's "
            f"channels-first (C, h, w); got {value!r}"
        )


def _channels_first(shape: Any, channels: int) -> tuple[int, int, int]:
    values = tuple(int(v) for v in shape)
    if len(values) == 2:
        return (channels, values[0], values[1])
    return (values[0], values[1], values[2])
