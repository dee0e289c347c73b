"""Checks on component parameters, shared by every component and plugin.

Constructors call these so that a bad parameter fails when the component is made, with a
message that names the parameter, before any model call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError


def check_positive_int(value: Any, name: str) -> None:
    """Raise ``InvalidInputError`` unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInputError(f"expected {name} to be an int >= 1; got {value!r}")


def check_non_negative(value: Any, name: str) -> None:
    """Raise ``InvalidInputError`` unless ``value`` is a real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or value < 0:
        raise InvalidInputError(f"expected {name} to be a number >= 0; got {value!r}")


def check_choice(value: Any, name: str, choices: Iterable[str]) -> None:
    """Raise ``InvalidInputError`` unless ``value`` is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise InvalidInputError(
            f"unknown {name} {value!r}: expected one of {', '.join(map(repr, options))}"
        )


def check_seed(value: Any) -> None:
    """Raise ``InvalidInputError`` unless ``value`` is an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidInputError(f"expected seed to be an int >= 0; got {value!r}")
