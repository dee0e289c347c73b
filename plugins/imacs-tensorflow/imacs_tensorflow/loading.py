"""Opening Keras and TensorFlow model files, with errors that say what went wrong.

Keras archives are read in Keras's safe mode unless the user trusts the file: a
``Lambda`` layer stores Python bytecode that would run on load. Only ``trust is True``
turns safe mode off; any other value, a truthy string among them, keeps it on.

A SavedModel holds graphs, not Python, but ``tf.saved_model.load`` runs some of them while
it loads: the initialisers of the resources it restores (lookup tables and the like) and
the restore functions of saved objects, any of which may hold operations such as
``WriteFile``. So a SavedModel needs ``trust=True``. Like any model, a graph can also
hold such operations in the function that is run, so only run models you trust.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from imacs.errors import ModelLoadError, UntrustedModelError
from imacs_tensorflow.claims import (
    KERAS_SUFFIXES,
    SAVED_MODEL_FILE,
    keras_archive,
    keras_directory,
    saved_model_dir,
)


def is_path(model: Any) -> bool:
    return isinstance(model, str | os.PathLike)


def load_file(
    model: str | os.PathLike[str], *, trust: bool = False, custom_objects: dict[str, Any] | None
) -> Any:
    """The Keras model or SavedModel object stored at ``model``."""
    path = Path(os.fspath(model))
    if not path.exists():
        raise ModelLoadError(
            f"model path {str(path)!r} does not exist (working directory: {os.getcwd()}); "
            "check the path, or pass the model object itself"
        )
    if saved_model_dir(path):
        if trust is not True:
            raise UntrustedModelError(
                f"{str(path)!r} is a TensorFlow SavedModel: loading it runs operations stored "
                "in it (the initialisers and restore functions of the objects it restores), "
                "which can read and write files. Pass trust=True only for a model from a "
                "source you trust, or save the model as a .keras file, which loads in "
                "Keras's safe mode"
            )
        return load_saved_model(path)
    if path.suffix.lower() in KERAS_SUFFIXES or keras_directory(path) or keras_archive(path):
        return load_keras(path, trust=trust, custom_objects=custom_objects)
    raise ModelLoadError(
        f"{str(path)!r} is not a model the tensorflow adapter reads: expected a .keras "
        "archive (model.save('name.keras')), a legacy .h5 file, or a SavedModel directory "
        "containing saved_model.pb (model.export(dir) or tf.saved_model.save)"
    )


def load_keras(path: Path, *, trust: bool, custom_objects: dict[str, Any] | None) -> Any:
    """A Keras model from a ``.keras``/``.h5`` file or an unzipped Keras archive directory."""
    import keras

    with tempfile.TemporaryDirectory(prefix="imacs-keras-") as scratch:
        readable = path
        if path.is_file() and path.suffix.lower() not in KERAS_SUFFIXES:
            # Keras picks the reader by file name; give a renamed archive its real one.
            readable = _with_keras_name(path, Path(scratch))
        try:
            return keras.saving.load_model(
                readable,
                custom_objects=custom_objects,
                compile=False,
                safe_mode=trust is not True,
            )
        except ValueError as exc:
            if "safe_mode" in str(exc):
                raise UntrustedModelError(
                    f"{str(path)!r} contains Python code (a Lambda layer or a lambda in a "
                    "layer's configuration) that Keras would run while loading it, so it can "
                    "do anything your user account can. If the file comes from a source you "
                    "trust, load it with trust=True; otherwise rebuild the model in code "
                    "without the lambda and load its weights."
                ) from exc
            raise _keras_error(path, exc) from exc
        except Exception as exc:  # h5py, zip and deserialization errors of every kind
            raise _keras_error(path, exc) from exc


def _with_keras_name(path: Path, scratch: Path) -> Path:
    link = scratch / "model.keras"
    try:
        link.symlink_to(path.resolve())
    except OSError:  # no symlinks here (Windows without the privilege): copy instead
        shutil.copyfile(path, link)
    return link


def _keras_error(path: Path, exc: Exception) -> ModelLoadError:
    name = str(path)
    if name.endswith(".weights.h5"):
        expected = (
            "a whole model saved with model.save(); this looks like a weights-only file "
            "(model.save_weights): build the model in code, call model.load_weights(path) "
            "and pass the model object instead"
        )
    elif path.suffix.lower() == ".keras" and path.is_file() and not zipfile.is_zipfile(path):
        expected = (
            "a .keras zip archive written by model.save(); this file is not a zip "
            "archive (truncated, or not a Keras model)"
        )
    else:
        expected = (
            "a Keras 3 model saved with model.save() (.keras) or a legacy .h5 model; if it "
            "uses your own layers or functions, pass custom_objects={'Name': object}"
        )
    return ModelLoadError(
        f"could not load {name!r} as a Keras model: expected {expected}. Keras said: "
        f"{type(exc).__name__}: {exc}"
    )


def saved_graph_digest(model: str | os.PathLike[str]) -> str | None:
    """SHA-256 of a SavedModel directory's graph file, or None for anything else."""
    path = Path(os.fspath(model))
    if not saved_model_dir(path):
        return None
    return hashlib.sha256((path / SAVED_MODEL_FILE).read_bytes()).hexdigest()


def load_saved_model(path: Path) -> Any:
    """The root object of a SavedModel directory (``tf.saved_model.load``)."""
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(path))
    except Exception as exc:  # protobuf, checkpoint and op-registration errors
        raise ModelLoadError(
            f"could not load the SavedModel directory {str(path)!r}: expected a SavedModel "
            "written by model.export(dir) or tf.saved_model.save; TensorFlow said: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
