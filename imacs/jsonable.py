"""Values made ready for ``json.dumps``: what every JSON file imacs writes goes through."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_ready(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars made plain, keys made strings, NaN and
    infinities made ``None`` (standard JSON has neither), recursively."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # a framework's 0-d tensor
        return json_ready(value.item())
    return value
