"""The on-disk store: every stage's results, keyed by what they depend on.

A comparison writes each image, each model's predictions, each attribution map and each
segmentation to the store under a key that digests everything the result depends on
(the model's fingerprint, the method and its parameters, the target, the image's
content). A run that is killed resumes by finding what is already there; a second
comparison that shares a model, a method and images reuses the first one's maps.

Layout: ``<root>/imacs-store.json`` names the format; results live in
``<root>/<stage>/<key[:2]>/<key>.npy``, written to a temporary file and renamed, so a
killed writer never leaves a half-written result behind. Arrays are never unpickled: a
store is data, never code.

Results are standard ``.npy`` files (format 1.0). A comparison reads and writes several
small arrays per image, so the common case has a fast path: the header is written from
the array and parsed with a strict pattern instead of ``numpy.load``'s general parser,
which cost more than reading the file itself. Anything the pattern does not match goes
through ``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
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


#: the header dict of a format 1.0 ``.npy`` file as numpy writes it, for a plain dtype
_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=][a-zA-Z][0-9]*)', 'fortran_order': (True|False), "
    rb"'shape': \(([0-9, ]*)\), \}"
)
_NPY_MAGIC = b"\x93NUMPY\x01\x00"


def parse_npy(data: bytearray) -> np.ndarray | None:
    """The array in the bytes of a format 1.0 ``.npy`` file of a plain dtype, else ``None``.

    ``None`` also for anything unexpected (another format version, a structured or object
    dtype, a truncated file): the caller then lets ``numpy.load`` decide. The array shares
    ``data``'s memory.
    """
    if data[:8] != _NPY_MAGIC or len(data) < 10:
        return None
    header_end = 10 + int.from_bytes(data[8:10], "little")
    match = _NPY_HEADER.fullmatch(bytes(data[10:header_end]).strip())
    if match is None:
        return None
    dtype = np.dtype(match.group(1).decode())
    if dtype.hasobject or dtype.fields is not None:
        return None
    shape = tuple(int(n) for n in match.group(3).split(b",") if n.strip())
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) != header_end + count * dtype.itemsize:
        return None
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_end)
    return array.reshape(shape, order="F" if match.group(2) == b"True" else "C")


def npy_header(array: np.ndarray) -> bytes:
    """The format 1.0 ``.npy`` header of a C-contiguous ``array``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(array))
    return buffer.getvalue()


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
        self._root = str(self.root)
        self._folders: set[str] = set()

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
        return Path(self._file(stage, key))

    def _file(self, stage: str, key: str) -> str:
        # a string join: building Path objects cost more than reading a small result
        return os.path.join(self._root, stage, key[:2], key + ".npy")

    def has(self, stage: str, key: str) -> bool:
        return os.path.exists(self._file(stage, key))

    def load(self, stage: str, key: str) -> np.ndarray | None:
        """The array stored under ``key``, or ``None`` when it is missing or unreadable."""
        path = self._file(stage, key)
        try:
            with open(path, "rb") as file:
                data = bytearray(os.fstat(file.fileno()).st_size)
                size = file.readinto(data)
            array = parse_npy(data) if size == len(data) else None
            if array is not None:
                return array
            return np.asarray(np.load(path, allow_pickle=False))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"ignoring the unreadable stored result {path!r} ({exc}); it will be "
                "computed again",
                stacklevel=2,
            )
            return None

    def save(self, stage: str, key: str, array: np.ndarray) -> None:
        """Store ``array`` under ``key``, atomically."""
        path = self._file(stage, key)
        array = np.ascontiguousarray(array)
        if array.dtype.hasobject:
            raise InvalidInputError(
                f"cannot store an array of dtype {array.dtype}: the store holds plain arrays "
                "(numbers, booleans, strings) only"
            )
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        # a random name: unique across threads, processes and machines sharing the folder
        temporary = os.path.join(folder, f".{key}.{secrets.token_hex(8)}.tmp")
        try:
            with open(temporary, "xb") as file:
                file.write(npy_header(array))
                file.write(array.data if array.size else b"")
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
