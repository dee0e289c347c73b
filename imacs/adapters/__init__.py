"""The model-adapter contract and the adapters that need no framework."""

from imacs.adapters.base import TARGET_NAMES, ModelAdapter
from imacs.adapters.preprocessing import Preprocessing

__all__ = ["TARGET_NAMES", "ModelAdapter", "Preprocessing"]
