"""Between imacs's NumPy arrays and the torch tensors Captum works on.

Captum differentiates (or perturbs) a forward function of its inputs. Here that function
is :class:`PixelScores`: it takes the user's pixels laid out channels-first, as in every
Captum example, ``(N, C, H, W)``, and runs the adapter's own preprocessing, layout change,
module and target function, the very torch operations ``TorchAdapter.gradients``
differentiates. Captum's maps are therefore with respect to the same pixels as imacs's,
and of the same target score.

This module imports torch; the method modules import it only when they run.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from imacs_torch.adapter import TorchAdapter

from imacs.attribution.seeds import image_entropy

#: Captum warnings that say nothing to an imacs user: DeepLift announces on every call
#: that it hooks the activations (and removes the hooks afterwards).
_QUIET = ("Setting forward, backward hooks and attributes on non-linear",)


class PixelScores(torch.nn.Module):
    """The adapter's target score of each image, as a function of its NCHW pixels.

    ``forward(pixels, targets)`` takes pixels ``(N, C, H, W)`` in the dataset's range and
    the target classes ``(N,)``, and returns one score per image ``(N,)``. Captum passes
    ``targets`` through ``additional_forward_args``, which it repeats alongside the inputs
    whenever it multiplies them (steps, samples, perturbations), so any target the adapter
    understands (a named one or the user's function) is what Captum explains.

    The adapter's module is a submodule, so DeepLift and LayerGradCam hook its layers.
    """

    def __init__(self, adapter: TorchAdapter):
        super().__init__()
        self.model = adapter.model
        self._adapter = adapter

    def forward(self, pixels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # The adapter preprocesses channel-last pixels; it reorders to the module's layout.
        outputs = self._adapter.forward_pixels(pixels.permute(0, 2, 3, 1))
        return self._adapter.select_target(outputs, targets)


def to_tensor(images: np.ndarray, adapter: TorchAdapter) -> torch.Tensor:
    """Channel-last float32 images ``(N, H, W, C)`` as an NCHW tensor on the model's device.

    Always a copy: Captum and the module must not write into the caller's array.
    """
    return torch.tensor(images, device=adapter.device).permute(0, 3, 1, 2).contiguous()


def to_targets(targets: np.ndarray, adapter: TorchAdapter) -> torch.Tensor:
    """int64 targets as a tensor on the model's device."""
    return torch.tensor(targets, dtype=torch.int64, device=adapter.device)


def to_maps(attributions: torch.Tensor) -> np.ndarray:
    """Captum's NCHW attributions as channel-last float32 NumPy ``(N, H, W, C)``."""
    return attributions.detach().permute(0, 2, 3, 1).to("cpu", torch.float32).numpy()


def per_image_delta(delta: torch.Tensor | None, n_images: int) -> np.ndarray | None:
    """Captum's convergence deltas as one value per image.

    Methods that sample (GradientShap, NoiseTunnel) report one delta per sample, in
    image-major order; an image's value is the mean over its samples.
    """
    if delta is None:
        return None
    values = delta.detach().to("cpu", torch.float64).reshape(n_images, -1)
    return values.mean(dim=1).numpy()


def run(
    attribution: Any,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    arguments: dict[str, Any],
    *,
    gradient: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Call ``attribution.attribute`` on one chunk; return the maps and any deltas.

    The convergence delta is asked for whenever the Captum method can compute one.
    """
    if gradient:
        # Captum would set this itself, with a warning on every call.
        inputs.requires_grad_(True)
    arguments = dict(arguments)
    if _has_delta(attribution):
        arguments["return_convergence_delta"] = True
    with warnings.catch_warnings(), torch.enable_grad():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        result = attribution.attribute(inputs, additional_forward_args=(targets,), **arguments)
    if arguments.get("return_convergence_delta"):
        maps, delta = result
        return maps, delta
    return result, None


def _has_delta(attribution: Any) -> bool:
    from captum.attr import NoiseTunnel

    if isinstance(attribution, NoiseTunnel):
        return bool(attribution.is_delta_supported)
    return bool(attribution.has_convergence_delta())


@contextlib.contextmanager
def seeded(seed: int, image: np.ndarray, adapter: TorchAdapter) -> Iterator[None]:
    """Seed torch and NumPy's global generators for one image; restore them after.

    Captum draws its noise from torch's global generator and GradientShap its baselines
    and path positions from NumPy's, so both are seeded, from ``seed`` and the image's
    content (:func:`imacs.attribution.seeds.image_entropy`): an image's draws depend
    neither on which other images share its call nor on its place among them, and the
    caller's random state is left as it was.
    """
    entropy = image_entropy(image)
    value = int(np.random.SeedSequence([seed, entropy]).generate_state(1)[0])
    device = adapter.device
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    # Captum draws from NumPy's legacy global generator, so that is the one to seed.
    numpy_state = np.random.get_state()  # noqa: NPY002
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(value)
        np.random.seed(value)  # noqa: NPY002
        try:
            yield
        finally:
            np.random.set_state(numpy_state)  # noqa: NPY002
