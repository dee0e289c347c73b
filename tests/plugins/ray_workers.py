"""What the Ray workers of tests/plugins/test_ray_executor.py import by name.

Workers unpickle a task's work by importing its classes and functions by name, so these
live in a module of their own on the workers' ``PYTHONPATH``: a method whose worker dies
in the middle of its first task, and the factory of the demo's PyTorch CNN.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionResult
from imacs.attribution.integrated_gradients import IntegratedGradients


class DyingIntegratedGradients(IntegratedGradients):
    """Integrated Gradients, but the process ends mid-task while the file ``flag`` exists.

    The first process to rename the flag away dies after computing its maps and before
    returning them: its whole task is lost, as when a worker is killed.
    """

    name = "dying-integrated-gradients"

    def __init__(self, *, n_steps: int = 8, flag: str = ""):
        super().__init__(n_steps=n_steps)
        self.flag = flag

    def get_params(self) -> dict[str, Any]:
        return {"n_steps": self.n_steps, "flag": self.flag}

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        result = super()._attribute(model, images, targets, batch_size)
        try:
            os.rename(self.flag, self.flag + ".taken")  # one process wins the rename
        except OSError:
            return result
        os._exit(1)


def digits_cnn() -> Any:
    """The untrained network of :func:`imacs.demo.models.train_torch_cnn` for RGB digits."""
    from imacs.demo.models import torch_cnn

    return torch_cnn()
