"""One colour for model A and one for model B, everywhere a comparison is drawn.

The pair is from Okabe and Ito's palette for colour-blind readers: blue for A, orange for
B. A difference B - A is drawn towards B's colour when positive and towards A's when
negative, with white (or the page's background) at zero.
"""

from __future__ import annotations

import math

#: model A's colour (Okabe-Ito blue)
COLOR_A = "#0072B2"
#: model B's colour (Okabe-Ito orange)
COLOR_B = "#E69F00"
#: neutral grey for what belongs to neither model
COLOR_NEUTRAL = "#7F7F7F"


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` as three 0..255 integers."""
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def format_q(q: float) -> str:
    """A q-value for people: three decimals, or scientific below 0.001."""
    if not math.isfinite(q):
        return "n/a"
    return f"{q:.1e}" if q < 0.001 else f"{q:.3f}"
