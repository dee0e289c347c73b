"""Every hook an imacs plugin can implement.

A plugin is a module (or any object) with functions marked ``@imacs.hookimpl`` whose names
match the specifications below. Built-in components are registered through these same
hooks, so reading this file tells you everything that can be extended.

Registration hooks receive a ``register`` callback and call it once per component class::

    import imacs

    @imacs.hookimpl
    def register_segmenters(register):
        register(MySegmenter)

``register(component_class)`` reads the component's name from its ``name`` class
attribute. ``register("package.module:ClassName", name="...")`` registers a class by
reference instead: it is imported the first time it is used, so a plugin whose module
imports a framework at the top (torch, tensorflow) does not slow down ``imacs plugins``
or runs that never use it. When two plugins register components of one kind with the same name, both
plugins are listed as broken, and asking for that name is an error that names them. A
plugin may implement any subset of the hooks, and a hook implementation may accept any
subset of the hook's arguments; one that names no hook here, or takes an argument its hook
does not offer, makes its plugin broken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from imacs.adapters.base import ModelAdapter

PROJECT = "imacs"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The ``register`` callback every registration hook receives."""

    def __call__(self, component: type | str, /, *, name: str | None = None) -> None:
        """Register a component class, or ``"module:ClassName"`` with its ``name``."""


@hookspec
def register_model_adapters(register: Register) -> None:
    """Register model-adapter classes (subclasses of ``imacs.ModelAdapter``).

    Called once per plugin when the registry is first built. A registered adapter can be
    chosen explicitly with ``imacs.load_model(model, adapter="name")``; to have models
    picked up automatically, also implement :func:`claim_model`.
    """


@hookspec
def register_attribution_methods(register: Register) -> None:
    """Register attribution-method classes (subclasses of ``imacs.AttributionMethod``).

    Called once per plugin when the registry is first built. Users then pick the method by
    its ``name``: ``imacs.attribute(model, images, targets, method="name", **params)``.
    """


@hookspec
def register_segmenters(register: Register) -> None:
    """Register segmenter classes (subclasses of ``imacs.Segmenter``).

    Called once per plugin when the registry is first built. A segmenter turns one image
    into an integer label map that both compared models are scored on.
    """


@hookspec
def register_featurizers(register: Register) -> None:
    """Register featurizer classes (subclasses of ``imacs.Featurizer``).

    Called once per plugin when the registry is first built. A featurizer turns each
    region of an image into a vector; similar vectors end up in the same cluster.
    """


@hookspec
def register_metrics(register: Register) -> None:
    """Register metric classes (subclasses of ``imacs.MapMetric``).

    Called once per plugin when the registry is first built. A metric compares two
    attribution maps (or a map and a model) and returns a number.
    """


@hookspec
def register_clusterers(register: Register) -> None:
    """Register clusterer classes (subclasses of ``imacs.Clusterer``).

    Called once per plugin when the registry is first built. A clusterer groups the
    feature vectors of all kept regions of a dataset; users pick it by name:
    ``imacs.compare(..., clusterer="name", clusterer_params={...})``.
    """


@hookspec
def register_quality_measures(register: Register) -> None:
    """Register quality-measure classes (subclasses of ``imacs.QualityMeasure``).

    Called once per plugin when the registry is first built. A quality measure scores a
    model's attribution maps against the model itself (insertion, deletion, ROAD,
    infidelity, the randomisation test) and answers one score per image; users pick it
    by name: ``imacs.get_component("measure", "name")``, ``imacs evaluate --measure name``
    or ``imacs.compare(..., quality=["name"])``.
    """


@hookspec
def register_executors(register: Register) -> None:
    """Register executor classes (subclasses of ``imacs.comparison.executor.Executor``).

    Called once per plugin when the registry is first built. An executor runs a
    comparison's per-task stages (attribution, and segment, score and featurize per
    batch of images) somewhere: in this process (``in-process``, the built-in), or on a
    cluster (``ray``, from the ``imacs-ray`` distribution). Users pick it by name:
    ``imacs.compare(..., executor="name", executor_params={...})`` or
    ``imacs compare --executor name``.
    """


@hookspec(firstresult=True)
def claim_model(model: Any, options: dict[str, Any]) -> ModelAdapter | None:
    """Wrap ``model`` in an adapter if this plugin recognises it, else return ``None``.

    Called by ``imacs.load_model(model, **options)``. ``model`` is whatever the user
    passed: a framework model object, or a path (``str`` or ``pathlib.Path``) to a model
    file or directory. ``options`` holds the user's keyword arguments; an implementation
    that claims the model must consume the ones it understands and raise
    ``imacs.errors.InvalidInputError`` for the rest. The first non-``None`` answer wins;
    plugins registered later are asked first, so a third-party plugin can claim models
    before the built-in ones. A plugin that recognises a file but cannot load it should
    raise ``imacs.errors.ModelLoadError`` saying why, rather than return ``None``.
    """
