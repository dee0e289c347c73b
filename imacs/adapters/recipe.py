"""How a model is built again in another process: what loaded it, never the model itself.

An executor that runs tasks in other processes or on other machines (``imacs-ray``) must
give each worker the models. Pickling a live framework model would ship closures, graph
state and device handles that need not survive the trip; instead a model travels as its
:class:`ModelRecipe`: what :func:`imacs.load_model` was given (a model file's path, or a
state dict) and the load options (``factory="package.module:build"``, ``trust``,
``preprocessing``...). A worker loads the model from the recipe once and checks that the
rebuilt adapter has the fingerprint of the original, so it computes the same function and
its results go under the same store keys.

``imacs.load_model`` records the recipe whenever it loads a model from a path or from a
state dict; an adapter built around an in-memory model object has none, and
:class:`PortableModel` then refuses to travel with an error that says what to pass
instead. An adapter may override :meth:`imacs.ModelAdapter.recipe` to describe itself.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imacs.errors import ModelLoadError

if TYPE_CHECKING:
    from imacs.adapters.base import ModelAdapter


class ModelNotPortableError(ModelLoadError):
    """A model must run in another process, and nothing says how to load it there."""


@dataclass(frozen=True)
class ModelRecipe:
    """What :func:`imacs.load_model` needs to build an adapter again, in any process.

    ``source`` is a model file or folder (a path every worker can read) or a state dict;
    ``adapter`` the registered adapter name; ``options`` the load options, plain data
    (a factory as ``"package.module:function"`` text, not a function object); ``name``
    the model's name in reports.
    """

    adapter: str
    source: Any
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None

    def build(self) -> ModelAdapter:
        """The adapter, loaded from the recipe in this process."""
        from imacs.api import load_model

        return load_model(self.source, adapter=self.adapter, name=self.name, **self.options)

    def describe(self) -> str:
        """The recipe in words, for error messages."""
        if isinstance(self.source, str | os.PathLike):
            what = f"the file {os.fspath(self.source)!r}"
        else:
            what = f"an in-memory {type(self.source).__name__}"
        return f"adapter {self.adapter!r} loading {what}"


def is_recipe_source(model: Any) -> bool:
    """Whether ``model`` is data a recipe can carry: a path, or a mapping (a state dict)."""
    return isinstance(model, str | os.PathLike | Mapping)


class PortableModel:
    """An adapter that crosses process boundaries as its recipe and its fingerprint.

    In the process that made it, :meth:`get` returns the adapter itself. Pickled, it
    becomes the recipe; unpickled in a worker, the first :meth:`get` loads the model
    (once per process that holds the handle) and checks its fingerprint. Pickling an
    adapter without a recipe raises :class:`ModelNotPortableError` saying what to pass
    instead.
    """

    def __init__(self, adapter: ModelAdapter, *, side: str = ""):
        self._adapter: ModelAdapter | None = adapter
        self.side = side
        self.recipe = adapter.recipe()
        self.fingerprint = adapter.fingerprint()

    def get(self) -> ModelAdapter:
        """The adapter: the original here, loaded from the recipe once in a worker."""
        if self._adapter is None:
            assert self.recipe is not None
            adapter = self.recipe.build()
            if adapter.fingerprint() != self.fingerprint:
                raise ModelLoadError(
                    f"model {self.side.upper()} loaded on a worker ({self.recipe.describe()}) "
                    "computes another function than the model the comparison started with "
                    "(their fingerprints differ): the file changed, or the worker reads "
                    "another file at that path. Give every worker the same model file"
                )
            self._adapter = adapter
        return self._adapter

    def __getstate__(self) -> dict[str, Any]:
        if self.recipe is None:
            raise self.not_portable()
        return {"recipe": self.recipe, "fingerprint": self.fingerprint, "side": self.side}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._adapter = None
        self.recipe = state["recipe"]
        self.fingerprint = state["fingerprint"]
        self.side = state["side"]

    def not_portable(self) -> ModelNotPortableError:
        """The error for an adapter that cannot be built again in a worker."""
        assert self._adapter is not None
        which = f"model {self.side.upper()}" if self.side else "the model"
        kind = type(self._adapter).__name__
        if self.recipe is None:
            return ModelNotPortableError(
                f"{which} ({kind}) was given as an in-memory object, which cannot be loaded "
                "again on a worker of another process or machine. Pass what loads it "
                "instead: a model file every worker can read (imacs.load_model('model.keras'), "
                "or a state dict saved with torch.save(model.state_dict(), 'weights.pt') and "
                "loaded with imacs.load_model('weights.pt', factory='package.module:build')), "
                "or a state dict and its factory: imacs.load_model(model.state_dict(), "
                "adapter='torch', factory='package.module:build')"
            )
        return ModelNotPortableError(
            f"{which} was loaded by {self.recipe.describe()} with options that cannot be "
            f"sent to a worker ({sorted(self.recipe.options)}): give functions by name as "
            "'package.module:function' text (factory='package.module:build'), not as "
            "function objects, lambdas or closures"
        )

    def check(self) -> None:
        """Raise :class:`ModelNotPortableError` now if the model cannot travel."""
        try:
            pickle.dumps(self)
        except ModelNotPortableError:
            raise
        except Exception as exc:  # an option a plain pickle refuses: a lambda, a closure
            raise self.not_portable() from exc
