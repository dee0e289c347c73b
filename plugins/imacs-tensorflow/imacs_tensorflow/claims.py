"""Recognising TensorFlow models and model files cheaply, without importing TensorFlow.

imacs asks every installed plugin whether it recognises a model, so these checks run for
PyTorch users too: they look at ``sys.modules`` and at file names and archive listings,
and import TensorFlow only once a model has been recognised as one of ours.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import Any

#: File suffixes Keras's own ``load_model`` reads.
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
#: The members that make a zip a Keras 3 archive, whatever its file name.
KERAS_ARCHIVE_MEMBERS = frozenset({"config.json", "model.weights.h5"})
SAVED_MODEL_FILE = "saved_model.pb"


def is_tensorflow_object(model: Any) -> bool:
    """True for a ``keras.Model`` or a TensorFlow object with something callable to run.

    A model object can only come from a framework that is already imported, so a
    process that never imported keras or tensorflow answers ``False`` at no cost.
    """
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return True
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    if isinstance(
        model, tf.types.experimental.ConcreteFunction | tf.types.experimental.GenericFunction
    ):
        return True
    # A tf.Module, or the root object tf.saved_model.load returns (a trackable of a class
    # defined inside tensorflow, not a tf.Module), that has something to call.
    from_tensorflow = type(model).__module__.startswith("tensorflow.")
    return (isinstance(model, tf.Module) or from_tensorflow) and default_endpoint(model) is not None


def default_endpoint(model: Any) -> str | None:
    """The endpoint to call on a TensorFlow object, or None if it has none.

    ``serve`` is what Keras 3's ``model.export`` writes; ``serving_default`` the signature
    ``tf.saved_model.save`` writes; an object that is itself callable is called.
    """
    if callable(getattr(model, "serve", None)):
        return "serve"
    signatures = getattr(model, "signatures", None)
    if signatures is not None and "serving_default" in signatures:
        return "serving_default"
    if callable(model):
        return "__call__"
    return None


def saved_model_dir(path: Path) -> bool:
    """True for a directory written by ``tf.saved_model.save`` or Keras's ``model.export``."""
    return path.is_dir() and (path / SAVED_MODEL_FILE).is_file()


def keras_archive(path: Path) -> bool:
    """True for a ``.keras`` file, or any zip laid out like one (a renamed archive).

    PyTorch's zip format (``data.pkl`` inside) is never taken for a Keras archive.
    """
    if path.suffix.lower() == ".keras":
        return True
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    if any(name.rsplit("/", 1)[-1] == "data.pkl" for name in names):
        return False
    return names >= KERAS_ARCHIVE_MEMBERS


def keras_directory(path: Path) -> bool:
    """True for an unzipped Keras 3 archive (``config.json`` beside ``model.weights.h5``)."""
    return path.is_dir() and all((path / name).is_file() for name in KERAS_ARCHIVE_MEMBERS)


def is_tensorflow_path(model: Any) -> bool:
    """True for a path to a Keras file or archive, or a SavedModel directory."""
    if not isinstance(model, str | os.PathLike):
        return False
    path = Path(os.fspath(model))
    return (
        path.suffix.lower() in KERAS_SUFFIXES
        or saved_model_dir(path)
        or keras_directory(path)
        or keras_archive(path)
    )
