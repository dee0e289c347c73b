"""What every Captum wrapper shares: the adapter check, the batching, the layout changes.

A wrapper says which Captum object to build and which arguments to pass it; the base
class turns imacs's call (an adapter, channel-last NumPy images, int64 targets, one
``batch_size``) into Captum calls on chunks of images, and Captum's NCHW tensors back into
channel-last float32 maps.

``batch_size`` is imacs's: the most inputs sent to the model in one call. Each wrapper
says how many model inputs one image needs in the smallest call Captum can make
(:meth:`CaptumMethod.inputs_per_image`), and maps the rest of the budget onto Captum's own
knob (``internal_batch_size``, ``perturbations_per_eval``). Methods that draw random
numbers attribute one image per Captum call, with generators seeded from ``(seed, index)``,
so an image's map does not depend on the batch it came in.

Nothing here imports torch or Captum at import time: the registry imports these classes
whenever it lists attribution methods, and only attributing needs the frameworks.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.errors import InvalidInputError
from imacs_captum.baselines import pixel_baselines

if TYPE_CHECKING:
    import torch
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores


@dataclass
class CaptumCall:
    """One Captum call: a chunk of images and what the wrapper may need to build arguments.

    ``images`` are the chunk's channel-last pixels, ``index`` their place in
    ``all_images``, the batch given to ``attribute``; ``batch_size`` is the most model
    inputs the call may send.
    """

    adapter: TorchAdapter
    images: np.ndarray
    index: slice
    batch_size: int
    all_images: np.ndarray

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        """A channel-last array of this chunk as an NCHW tensor on the model's device."""
        from imacs_captum.torch_bridge import to_tensor

        return to_tensor(array, self.adapter)

    def baselines(self, baselines: Any) -> torch.Tensor:
        """Captum's ``baselines`` for this chunk: one NCHW baseline image per input."""
        return self.tensor(pixel_baselines(baselines, self.all_images, self.index))


class CaptumMethod(AttributionMethod):
    """Base class of the Captum wrappers. Subclasses build the Captum object and arguments."""

    #: The imacs built-in that computes the same thing on any adapter (for errors).
    builtin: ClassVar[str] = ""
    #: Captum draws random numbers: one image per call, generators seeded per image.
    random: ClassVar[bool] = False
    #: Captum differentiates the inputs (perturbation methods only run the model).
    gradient: bool = True
    #: Seeds the random draws; a constructor parameter of the methods with ``random``.
    seed: int = 0

    def inputs_per_image(self) -> int:
        """Model inputs one image needs in the smallest call Captum can make."""
        return 1

    @abc.abstractmethod
    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        """The Captum attribution object, built on the pixel-space ``forward``."""

    @abc.abstractmethod
    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        """Keyword arguments of ``attribute`` for one call (not inputs, targets or delta)."""

    def finish(self, attributions: torch.Tensor, call: CaptumCall) -> torch.Tensor:
        """Turn Captum's output for a chunk into NCHW maps of the inputs' shape."""
        return attributions

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        adapter = require_torch_adapter(model, self)
        from imacs_captum import torch_bridge

        forward = torch_bridge.PixelScores(adapter)
        attribution = self.captum_attribution(forward, adapter, images)
        per_call = 1 if self.random else max(1, batch_size // self.inputs_per_image())
        maps: list[np.ndarray] = []
        deltas: list[np.ndarray] = []
        for start in range(0, len(images), per_call):
            index = slice(start, min(start + per_call, len(images)))
            call = CaptumCall(adapter, images[index], index, batch_size, images)
            inputs = call.tensor(call.images)
            chunk_targets = torch_bridge.to_targets(targets[index], adapter)
            arguments = self.captum_arguments(call)
            draws = (
                torch_bridge.seeded(self.seed, images[start], adapter)
                if self.random
                else contextlib.nullcontext()
            )
            with draws:
                result, delta = torch_bridge.run(
                    attribution, inputs, chunk_targets, arguments, gradient=self.gradient
                )
            maps.append(torch_bridge.to_maps(self.finish(result, call)))
            chunk_delta = torch_bridge.per_image_delta(delta, len(call.images))
            if chunk_delta is not None:
                deltas.append(chunk_delta)
        return AttributionResult(
            np.concatenate(maps),
            self.name,
            self.get_params(),
            convergence_delta=np.concatenate(deltas) if deltas else None,
        )


def require_torch_adapter(model: ModelAdapter, method: CaptumMethod) -> TorchAdapter:
    """``model`` if it is imacs-torch's adapter, else a clear ``InvalidInputError``.

    Checked by name first, so a TensorFlow user never imports torch to be told this.
    """
    if model.name == "torch":
        from imacs_torch.adapter import TorchAdapter

        if isinstance(model, TorchAdapter):
            return model
    instead = (
        f", or use the built-in {method.builtin!r}, which works with any adapter"
        if method.builtin
        else ""
    )
    raise InvalidInputError(
        f"{method.name} needs a PyTorch model loaded through imacs-torch; got adapter "
        f"{model.name!r} ({type(model).__qualname__}): load the model with "
        f"imacs.load_model(torch_module){instead}"
    )
