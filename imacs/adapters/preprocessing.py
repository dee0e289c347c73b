"""A model's own input preprocessing, declared once and applied inside each adapter.

Attributions are taken with respect to the pixels the user sees, so normalisation and
channel reordering must happen inside the differentiable model call, not before it.
Adapters translate this declaration into their framework's operations; ``apply`` is the
NumPy reference they are tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from imacs.errors import InvalidInputError


@dataclass(frozen=True)
class Preprocessing:
    """``x -> (x * scale - mean) / std``, then channel reordering, inside the model call.

    Parameters
    ----------
    scale:
        Multiplies the pixels first, e.g. ``1 / 255`` for a model trained on [0, 1] input
        when the dataset is stored in [0, 255].
    mean, std:
        Per-channel normalisation after scaling (ImageNet-style), or ``None`` for none.
    channel_order:
        ``"bgr"`` reverses the channel axis before the model (Caffe-style weights).
    """

    scale: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_order: Literal["rgb", "bgr"] = "rgb"

    def __post_init__(self) -> None:
        for field in ("mean", "std"):
            value = getattr(self, field)
            if value is not None:
                if isinstance(value, int | float):
                    value = (value,)
                object.__setattr__(self, field, tuple(float(v) for v in value))
        if self.std is not None and any(s == 0 for s in self.std):
            raise InvalidInputError(f"expected non-zero std values; got {self.std}")
        if self.channel_order not in ("rgb", "bgr"):
            raise InvalidInputError(
                f"expected channel_order 'rgb' or 'bgr'; got {self.channel_order!r}"
            )

    @classmethod
    def coerce(cls, value: Preprocessing | dict | None) -> Preprocessing:
        """Accept a Preprocessing, a dict of its fields, or None (identity)."""
        if value is None:
            return cls()
        if isinstance(value, Preprocessing):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"scale", "mean", "std", "channel_order"}
            if unknown:
                raise InvalidInputError(
                    f"unknown preprocessing keys {sorted(unknown)}; expected scale, mean, "
                    "std, channel_order"
                )
            return cls(**value)
        raise InvalidInputError(
            f"expected preprocessing as imacs.Preprocessing, a dict or None; got {value!r}"
        )

    @property
    def is_identity(self) -> bool:
        return (
            self.scale == 1.0
            and self.mean is None
            and self.std is None
            and self.channel_order == "rgb"
        )

    def check_channels(self, channels: int) -> None:
        """Raise if mean or std cannot broadcast over ``channels`` channels."""
        for field in ("mean", "std"):
            value: Sequence[float] | None = getattr(self, field)
            if value is not None and len(value) not in (1, channels):
                raise InvalidInputError(
                    f"preprocessing {field} has {len(value)} values but the images have "
                    f"{channels} channels: give one value per channel, or a single value"
                )

    def apply(self, images: np.ndarray) -> np.ndarray:
        """The NumPy reference of what adapters do inside the framework."""
        x: np.ndarray = np.asarray(images, dtype=np.float32) * np.float32(self.scale)
        if self.mean is not None:
            x = x - np.asarray(self.mean, dtype=np.float32)
        if self.std is not None:
            x = x / np.asarray(self.std, dtype=np.float32)
        if self.channel_order == "bgr":
            x = x[..., ::-1]
        return x.astype(np.float32, copy=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "scale": self.scale,
            "mean": list(self.mean) if self.mean is not None else None,
            "std": list(self.std) if self.std is not None else None,
            "channel_order": self.channel_order,
        }
