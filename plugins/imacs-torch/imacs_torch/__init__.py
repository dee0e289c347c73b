"""imacs-torch: PyTorch models for imacs.

Installing this package registers the ``torch`` model adapter and lets
``imacs.load_model`` recognise ``torch.nn.Module`` objects and PyTorch model files
(state dicts with a ``factory``; TorchScript archives and pickled modules, which run code
from the file while they load, with ``trust=True``)::

    import imacs

    model = imacs.load_model(my_module, preprocessing={"mean": ..., "std": ...})
    model = imacs.load_model("weights.pt", factory="my_package.models:build")

imacs imports every installed plugin when it starts, so this module does not import
torch: it is imported only when a torch model is actually loaded.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from imacs.hookspecs import Register, hookimpl
from imacs_torch.formats import is_torch_file

if TYPE_CHECKING:
    from imacs.adapters.base import ModelAdapter
    from imacs_torch.adapter import TorchAdapter

__all__ = ["TorchAdapter", "claim_model", "register_model_adapters"]


def __getattr__(name: str) -> Any:
    # `from imacs_torch import TorchAdapter` works without torch being imported eagerly
    if name == "TorchAdapter":
        from imacs_torch.adapter import TorchAdapter

        return TorchAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_model_adapters(register: Register) -> None:
    """Register :class:`~imacs_torch.adapter.TorchAdapter` as adapter ``"torch"``."""
    # by reference: the adapter module imports torch, which listing plugins does not need
    register("imacs_torch.adapter:TorchAdapter", name="torch")


@hookimpl
def claim_model(model: Any, options: dict[str, Any]) -> ModelAdapter | None:
    """Wrap an ``nn.Module`` or a PyTorch model file; leave anything else to other plugins."""
    if not (_is_torch_module(model) or is_torch_file(model)):
        return None
    from imacs_torch.adapter import TorchAdapter

    return TorchAdapter.load(model, **options)


def _is_torch_module(model: Any) -> bool:
    # if torch was never imported, nobody can have built a module with it
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)
