"""The on-disk store: every stage's results, keyed by what they depend on.

A comparison writes each image, each model's predictions, each attribution map and each
segmentation to the store under a key that digests everything the result depends on
(the model's fingerprint, the method and its parameters, the target, the image's
content). A run that is killed resumes by finding what is already there; a second
comparison that shares a model, a method and images reuses the first one's maps.

Layout: ``<root>/imacs-store.json`` names the format; results live in
``<root>/<stage>/<key[:2]>/<key>.npy``, written to a temporary file and renamed, so a
killed writer never leaves a half-written result behind. Arrays are read with
``allow_pickle=False``: a store is data, never code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError, StoreError

#: Bumped whenever keys or array layouts change; a store of another format is refused.
STORE_FORMAT = 1
MARKER = "imacs-store.json"


def default_store_path() -> Path:
    """``$IMACS_STORE``, else ``$XDG_CACHE_HOME/imacs/store``, else ``~/.cache/imacs/store``."""
    explicit = os.environ.get("IMACS_STORE")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(cache) / "imacs" / "store"


def canonical(value: Any) -> Any:
    """A JSON-able, order-independent form of a parameter value, for keys.

    Arrays become their shape, dtype and a digest of their bytes; mappings are sorted;
    tuples become lists. Values without a stable identity across processes (functions,
    arbitrary objects) are refused, because a key built from them would never match again.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, np.ndarray):
        return {"array": array_digest(value)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise InvalidInputError(
        f"cannot key a cached result on a value of type {type(value).__name__} ({value!r}): "
        "it has no identity that lasts across runs. Use a string, number, tuple or array"
    )


def array_digest(array: np.ndarray) -> str:
    """A digest of an array's dtype, shape and bytes."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def make_key(*parts: Any) -> str:
    """The key of a result that depends on ``parts`` (strings, numbers, params, arrays)."""
    text = json.dumps([canonical(p) for p in parts], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Store:
    """A folder of results keyed by content. Creating one on an empty folder initialises it.

    Parameters
    ----------
    root:
        The folder. It is created if missing; an existing non-empty folder that is not a
        store is refused, so a typo cannot scatter results into a user's files.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser()
        marker = self.root / MARKER
        if marker.exists():
            self._check_marker(marker)
        else:
            if self.root.exists() and not self.root.is_dir():
                raise StoreError(f"the store path {str(self.root)!r} is a file, not a folder")
            if self.root.is_dir() and any(self.root.iterdir()):
                raise StoreError(
                    f"{str(self.root)!r} is not empty and is not an imacs store; choose an "
                    "empty or new folder for the store"
                )
            self.root.mkdir(parents=True, exist_ok=True)
            self._write_atomic(marker, json.dumps({"format": STORE_FORMAT}).encode())

    def _check_marker(self, marker: Path) -> None:
        try:
            info = json.loads(marker.read_text())
            found = info["format"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{str(marker)!r} is not a readable imacs store marker ({exc}); point the "
                "comparison at another store folder"
            ) from exc
        if found != STORE_FORMAT:
            raise StoreError(
                f"the store {str(self.root)!r} was written in format {found!r}, but this "
                f"version of imacs reads format {STORE_FORMAT}. Its results cannot be reused: "
                "use a new store folder (store=... or --store), or delete this one"
            )

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def _path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / f"{key}.npy"

    def has(self, stage: str, key: str) -> bool:
        return self._path(stage, key).exists()

    def load(self, stage: str, key: str) -> np.ndarray | None:
        """The array stored under ``key``, or ``None`` when it is missing or unreadable."""
        path = self._path(stage, key)
        try:
            return np.asarray(np.load(path, allow_pickle=False))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"ignoring the unreadable stored result {str(path)!r} ({exc}); it will be "
                "computed again",
                stacklevel=2,
            )
            return None

    def save(self, stage: str, key: str, array: np.ndarray) -> None:
        """Store ``array`` under ``key``, atomically."""
        path = self._path(stage, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, np.asarray(array), allow_pickle=False)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def count(self, stage: str) -> int:
        """How many results ``stage`` holds."""
        folder = self.root / stage
        return sum(1 for _ in folder.glob("*/*.npy")) if folder.is_dir() else 0

    @staticmethod
    def _write_atomic(path: Path, data: bytes) -> None:
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)


def open_store(store: Store | str | os.PathLike[str] | None) -> Store:
    """A store from a path, an existing store, or ``None`` for the default location."""
    if isinstance(store, Store):
        return store
    return Store(default_store_path() if store is None else store)
