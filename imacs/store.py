"""The on-disk store: every stage's results, keyed by what they depend on.

A comparison writes each image, each model's predictions, each attribution map and each
segmentation to the store under a key that digests everything the result depends on
(the model's fingerprint, the method and its parameters, the target, the image's
content) and the versions of the code that produced it (:func:`producer`). A run that is
killed resumes by finding what is already there; a second comparison that shares a
model, a method and images reuses the first one's maps.

Layout: ``<root>/imacs-store.json`` names the format; results live in
``<root>/<stage>/<key[:2]>/<key>.npy``. Arrays are never unpickled: a store is data,
never code.

Every result is written to a temporary file beside its final name and renamed, so no
reader sees half a result, and a failed write (a full disk, a kill) leaves nothing
behind but, at worst after a kill, a ``.tmp`` file that readers ignore. The marker is
put in place with a hard link, which fails instead of replacing, so processes that
create one store at once agree on it. Many processes may share a store: two writers of
one key write the same bytes, and the rename makes one of them win whole.

Each result is a standard ``.npy`` file (format 1.0) followed by a 12-byte trailer: the
tag ``IMACSCRC`` and the CRC-32 of the stage, the key, the ``.npy`` bytes and the tag.
numpy reads the array and ignores the trailer. The CRC is checked on every read, so a
file that was truncated, zeroed or changed in place (a full disk, a crash before the
data reached the disk, a faulty copy) is removed with a
:class:`~imacs.errors.StoreWarning` and computed again instead of being used; that is
also why writes need no ``fsync``. The CRC finds damage, not tampering: whoever can
write to the store can write results.

A store at a URL (``s3://...``: :class:`imacs.remote_store.FsspecStore`) has the same
layout, keys and checksums, written through fsspec.

A comparison reads several small arrays per image, so reading has a fast path: the
header is written from the array and parsed with a strict pattern instead of
``numpy.load``'s general parser, which cost more than reading the file itself. Anything
the pattern does not match goes through ``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import socket
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, entry_points, packages_distributions, version
from pathlib import Path
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError, StoreError, StoreWarning

#: Bumped whenever keys or the file layout change; a store of another format is refused.
STORE_FORMAT = 2
MARKER = "imacs-store.json"
#: A temporary file this old is left over from a killed writer, not one still writing.
STALE_SECONDS = 3600.0

_TRAILER_TAG = b"IMACSCRC"
_TRAILER_SIZE = len(_TRAILER_TAG) + 4
#: the CRC-32 of any bytes followed by their own CRC-32 (little-endian), whatever the seed
_CRC_RESIDUE = 0x2144DF1C

#: the header dict of a format 1.0 ``.npy`` file as numpy writes it, for a plain dtype
_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|=][a-zA-Z][0-9]*)', 'fortran_order': (True|False), "
    rb"'shape': \(([0-9, ]*)\), \}"
)
_NPY_MAGIC = b"\x93NUMPY\x01\x00"

#: what a failed write's errno means for the user, and what to do about it
_WRITE_FAILURES = {
    errno.ENOSPC: ("its disk is full", "free space (imacs store prune, imacs store clear) or"),
    errno.EDQUOT: ("the disk quota is used up", "free space (imacs store prune) or"),
    errno.EROFS: ("it is on a read-only file system", "make it writable or"),
    errno.EACCES: ("this user may not write there", "fix its permissions or"),
    errno.EPERM: ("this user may not write there", "fix its permissions or"),
}


def parse_npy(data: bytearray | memoryview) -> np.ndarray | None:
    """The array in the bytes of a format 1.0 ``.npy`` file of a plain dtype, else ``None``.

    ``None`` also for anything unexpected (another format version, a structured or object
    dtype, a truncated file): the caller then lets ``numpy.load`` decide. The array shares
    ``data``'s memory.
    """
    if len(data) < 10 or data[:8] != _NPY_MAGIC:
        return None
    header_end = 10 + int.from_bytes(data[8:10], "little")
    match = _NPY_HEADER.fullmatch(bytes(data[10:header_end]).strip())
    if match is None:
        return None
    try:
        dtype = np.dtype(match.group(1).decode())
        shape = tuple(int(n) for n in match.group(3).split(b",") if n.strip())
    except (TypeError, ValueError):  # "<q9", "(1 2)": not what numpy writes
        return None
    if dtype.hasobject or dtype.fields is not None or dtype.itemsize == 0:
        return None
    count = math.prod(shape)  # a Python int: a forged shape cannot overflow into a match
    if len(data) != header_end + count * dtype.itemsize:
        return None
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_end)
    try:
        return array.reshape(shape, order="F" if match.group(2) == b"True" else "C")
    except ValueError:  # an empty array with a dimension numpy cannot index: (0, 2**60)
        return None


def npy_header(array: np.ndarray) -> bytes:
    """The format 1.0 ``.npy`` header of a C-contiguous ``array``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(array))
    return buffer.getvalue()


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z][A-Za-z0-9+.-]*::")


def is_remote(location: str) -> bool:
    """Whether ``location`` is a URL of a store that fsspec reaches (not ``file://``)."""
    return _URL.match(location) is not None and not location.startswith("file://")


def default_store_path() -> Path | str:
    """``$IMACS_STORE`` (a folder or a URL), else ``$XDG_CACHE_HOME/imacs/store``, else
    ``~/.cache/imacs/store``."""
    explicit = os.environ.get("IMACS_STORE")
    if explicit:
        # a URL stays text: a Path would fold its "//"
        return explicit if is_remote(explicit) else Path(explicit)
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


def producer(component: object) -> dict[str, Any]:
    """The versions of the code behind ``component``'s results, for the keys of its results.

    ``distribution`` and ``version`` name the installed distribution that provides the
    component's class (imacs for built-ins, the plugin's distribution for a plugin's);
    ``component_version`` is the class's own ``version`` attribute, which a plugin
    author bumps when a change of the code changes its results. Upgrading either makes
    new keys, so results of the old code are never reused.
    """
    cls = component if isinstance(component, type) else type(component)
    own = getattr(cls, "version", None)
    if own is not None and not isinstance(own, str | int):
        raise InvalidInputError(
            f"{cls.__module__}.{cls.__qualname__}.version is {own!r}; expected a string "
            "such as '2' that changes whenever the component's results change"
        )
    distribution, dist_version = _providing_distribution(cls.__module__)
    return {"distribution": distribution, "version": dist_version, "component_version": own}


def _providing_distribution(module: str) -> tuple[str | None, str | None]:
    package = module.partition(".")[0]
    if package == "imacs":
        from imacs import __version__

        return "imacs", __version__
    # a plugin's distribution is the one whose imacs entry point lives in the same package
    for point in entry_points(group="imacs"):
        dist = getattr(point, "dist", None)
        if dist is not None and point.module.partition(".")[0] == package:
            return dist.metadata["Name"], dist.version
    for name in _packages_distributions().get(package, []):
        try:
            return name, version(name)
        except PackageNotFoundError:  # uninstalled since the mapping was read
            continue
    return None, None


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> Mapping[str, list[str]]:
    # reads every installed distribution's file list: too slow to repeat for each run
    return packages_distributions()


def _seed(stage: str, key: str) -> int:
    # the name goes in too, so a result copied under another key is damage
    return zlib.crc32(f"{stage}/{key}".encode())


def _trailer(stage: str, key: str, *parts: bytes | memoryview) -> bytes:
    checksum = _seed(stage, key)
    for part in (*parts, _TRAILER_TAG):
        checksum = zlib.crc32(part, checksum)
    return _TRAILER_TAG + checksum.to_bytes(4, "little")


def _damage(stage: str, key: str, data: bytearray) -> str | None:
    """What is wrong with the bytes of a stored result, or ``None`` if they are intact."""
    # one pass over the whole file: bytes followed by their own CRC have a fixed CRC
    if len(data) >= _TRAILER_SIZE + 10 and zlib.crc32(data, _seed(stage, key)) == _CRC_RESIDUE:
        return None
    if not data:
        return "the file is empty"
    if data[-_TRAILER_SIZE:-4] != _TRAILER_TAG:
        return (
            "it does not end in its checksum: it was cut short or added to, or imacs did "
            "not write it"
        )
    return "its checksum does not match its content"


def encode(stage: str, key: str, array: np.ndarray) -> tuple[bytes, bytes | memoryview, bytes]:
    """A result file's three parts: the ``.npy`` header, the array's bytes, the trailer."""
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise InvalidInputError(
            f"cannot store an array of dtype {array.dtype}: the store holds plain arrays "
            "(numbers, booleans, strings) only"
        )
    header = npy_header(array)
    body = array.data if array.size else b""
    return header, body, _trailer(stage, key, header, body)


def problem_with(stage: str, key: str, data: bytearray) -> str | None:
    """What is wrong with a result file's bytes, or ``None`` if they hold a plain array."""
    problem = _damage(stage, key, data)
    if problem is None and _decode(data) is None:
        problem = "its content is not a plain array"
    return problem


def _decode(data: bytearray) -> np.ndarray | None:
    payload = memoryview(data)[:-_TRAILER_SIZE]
    array = parse_npy(payload)
    if array is not None:
        return array
    # what the fast path does not read (a structured dtype), numpy does, once the header
    # is known to describe exactly the bytes there: a forged shape must not allocate
    stream = io.BytesIO(payload)
    try:
        npy_version = np.lib.format.read_magic(stream)
        if npy_version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif npy_version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            return None
        if dtype.hasobject or len(payload) - stream.tell() != math.prod(shape) * dtype.itemsize:
            return None
        stream.seek(0)
        return np.asarray(np.load(stream, allow_pickle=False))
    except Exception:  # bytes that pass the checksum but are no array are damage all the same
        return None


@dataclass(frozen=True)
class StoredResult:
    """One result file of a store."""

    stage: str
    key: str
    path: str
    size: int
    mtime: float


class Store:
    """A folder of results keyed by content. Creating one on an empty folder initialises it.

    Parameters
    ----------
    root:
        The folder. It is created if missing; an existing non-empty folder that is not a
        store is refused, so a typo cannot scatter results into a user's files. A URL
        (``s3://bucket/imacs-store``, ``gs://...``, ``memory://...``) makes a
        :class:`FsspecStore` instead; ``file://`` URLs are local folders.
    create:
        ``False`` to only open an existing store (``imacs store`` commands): a folder
        without a store is then an error, never made into one.
    """

    #: where the store is, as the user names it: a folder, or a URL for remote stores
    location: str

    def __new__(cls, root: Any = None, *args: Any, **kwargs: Any) -> Store:
        # a URL is a store on another file system; copies (pickle) pass no root
        if cls is Store and isinstance(root, str) and is_remote(root):
            from imacs.remote_store import FsspecStore

            return super().__new__(FsspecStore)
        return super().__new__(cls)

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True):
        if isinstance(root, str) and root.startswith("file://"):
            root = root[len("file://") :]
        self.root = Path(root).expanduser()
        self._root = str(self.root)
        self.location = self._root
        self._folders: set[str] = set()
        marker = self.root / MARKER
        try:
            if not marker.exists():
                if not create:
                    raise StoreError(
                        f"there is no imacs store at {self._root!r} (it has no {MARKER}); "
                        "give the folder a comparison used as its store (--store)"
                    )
                self._initialise(marker)
        except OSError as exc:
            raise self._write_error(exc, "create the store") from exc
        self._check_marker(marker)

    def _initialise(self, marker: Path) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"the store path {self._root!r} is a file, not a folder")
        names = os.listdir(self.root) if self.root.is_dir() else []
        if MARKER in names:  # another process made it since we looked
            return
        if any(not _is_marker_temporary(name) for name in names):
            if marker.exists():
                return
            raise StoreError(
                f"{self._root!r} is not empty and is not an imacs store; choose an "
                "empty or new folder for the store"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = os.path.join(self._root, f".{MARKER}.{secrets.token_hex(8)}.tmp")
        try:
            with open(temporary, "xb") as file:
                file.write(json.dumps({"format": STORE_FORMAT}).encode())
            try:
                # a link never replaces: of processes creating one store, the first wins
                os.link(temporary, marker)
            except FileExistsError:
                pass
            except OSError:  # a file system without hard links
                os.replace(temporary, marker)
        finally:
            _unlink_quietly(temporary)

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
                f"the store {self._root!r} was written in format {found!r}, but this "
                f"version of imacs reads format {STORE_FORMAT}. Its results cannot be reused: "
                "use a new store folder (store=... or --store), or delete this one"
            )

    def __repr__(self) -> str:
        return f"Store({self._root!r})"

    #: whether other processes of this machine or of a cluster can reach the same store;
    #: a folder can (whether other machines see it is up to the file system)
    shared: bool = True

    @property
    def local_folder(self) -> Path | None:
        """The store's folder on this machine, where temporary files may go beside it."""
        return self.root

    def _path(self, stage: str, key: str) -> Path:
        return Path(self._file(stage, key))

    def _file(self, stage: str, key: str) -> str:
        # a string join: building Path objects cost more than reading a small result
        return os.path.join(self._root, stage, key[:2], key + ".npy")

    def has(self, stage: str, key: str) -> bool:
        """Whether a result file exists under ``key``; :meth:`load` checks its content."""
        return os.path.exists(self._file(stage, key))

    def load(self, stage: str, key: str) -> np.ndarray | None:
        """The array stored under ``key``, or ``None`` when it is missing or damaged.

        A damaged result (cut short, changed, not an array) is removed with a
        :class:`~imacs.errors.StoreWarning` naming the file, so the caller computes and
        saves it again.
        """
        path = self._file(stage, key)
        try:
            with open(path, "rb") as file:
                status = os.fstat(file.fileno())
                data = bytearray(status.st_size)
                size = file.readinto(data)
        except FileNotFoundError:
            return None
        except OSError as exc:
            warnings.warn(
                f"could not read the stored {stage} result {path!r} ({exc}); it will be "
                "computed again",
                StoreWarning,
                stacklevel=2,
            )
            return None
        if size != len(data):
            problem: str | None = "the file shrank while it was read"
        else:
            problem = _damage(stage, key, data)
        if problem is None:
            array = _decode(data)
            if array is not None:
                return array
            problem = "its content is not a plain array"
        self._discard(path, status, problem, stage)
        return None

    def save_many(self, stage: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """:meth:`save` of each ``(key, array)``; a store at a URL writes them concurrently
        where its file system can."""
        for key, array in items:
            self.save(stage, key, array)

    def has_many(self, stage: str, keys: Sequence[str]) -> list[bool]:
        """:meth:`has` of each key; a store at a URL asks concurrently where it can."""
        return [self.has(stage, key) for key in keys]

    def load_many(self, stage: str, keys: Sequence[str]) -> list[np.ndarray | None]:
        """The arrays under ``keys``, as :meth:`load` gives each (``None`` where missing).

        A store at a URL reads them with concurrent requests; a folder one after another.
        """
        return [self.load(stage, key) for key in keys]

    def _discard(self, path: str, status: os.stat_result, problem: str, stage: str) -> None:
        try:
            now = os.stat(path)
            # a writer may have just replaced it with a good copy, which must stay
            if (now.st_ino, now.st_dev) == (status.st_ino, status.st_dev):
                os.unlink(path)
            outcome = "it was removed and will be computed again"
        except OSError:  # a read-only store: the damage stays, but is never used
            outcome = "it will be computed again"
        warnings.warn(
            f"the stored {stage} result {path!r} is damaged ({problem}); {outcome}",
            StoreWarning,
            stacklevel=3,
        )

    def save(self, stage: str, key: str, array: np.ndarray) -> None:
        """Store ``array`` under ``key``, atomically.

        Raises :class:`~imacs.errors.StoreError` when the store cannot be written (a full
        disk, a read-only folder), leaving no partial file behind.
        """
        path = self._file(stage, key)
        parts = encode(stage, key, array)
        try:
            self._write(path, key, parts)
        except OSError as exc:
            raise self._write_error(exc, f"save a {stage} result in the store") from exc

    def _write(self, path: str, key: str, parts: tuple[bytes | memoryview, ...]) -> None:
        folder = os.path.dirname(path)
        for attempt in (1, 2):
            if folder not in self._folders:
                os.makedirs(folder, exist_ok=True)
                _remove_dead_writers_files(folder)
                self._folders.add(folder)
            # unique across threads, processes and machines sharing the folder, and naming
            # its writer, so that a later process can tell a killed writer's leftover
            writer = f"{_HOST}-{os.getpid()}"  # per call: a forked child has its own id
            temporary = os.path.join(folder, f".{key}.{writer}.{secrets.token_hex(8)}.tmp")
            try:
                with open(temporary, "xb") as file:
                    for part in parts:
                        file.write(part)
                os.replace(temporary, path)
                return
            except FileNotFoundError:
                _unlink_quietly(temporary)
                # the folder was removed under us (imacs store clear or prune): make it again
                self._folders.discard(folder)
                if attempt == 2:
                    raise
            except BaseException:
                _unlink_quietly(temporary)
                raise

    def _write_error(self, exc: OSError, doing: str) -> StoreError:
        what, remedy = _WRITE_FAILURES.get(
            exc.errno or 0, (f"of an error ({exc.strerror or exc})", "check the folder, or")
        )
        return StoreError(
            f"cannot {doing} {self._root!r} because {what}: {remedy} point the comparison at "
            "another store folder (--store or store=...)"
        )

    def count(self, stage: str) -> int:
        """How many results ``stage`` holds."""
        folder = self.root / stage
        return sum(1 for _ in folder.glob("*/*.npy")) if folder.is_dir() else 0

    # -- maintenance: imacs store info, verify, prune, clear ---------------------------

    def stages(self) -> list[str]:
        """The stages that hold results, sorted."""
        return sorted(
            entry.name
            for entry in _scan(self._root)
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".")
        )

    def results(self, stage: str | None = None) -> Iterator[StoredResult]:
        """Every result file of ``stage`` (of every stage when ``None``)."""
        for name in [stage] if stage is not None else self.stages():
            for shard in _scan(os.path.join(self._root, name)):
                if not shard.is_dir(follow_symlinks=False):
                    continue
                for entry in _scan(shard.path):
                    if entry.name.endswith(".npy") and not entry.name.startswith("."):
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:  # removed by another process meanwhile
                            continue
                        key = entry.name[: -len(".npy")]
                        yield StoredResult(name, key, entry.path, info.st_size, info.st_mtime)

    def temporaries(self, *, older_than: float = STALE_SECONDS) -> list[str]:
        """Temporary files that killed writers left behind at least ``older_than`` seconds ago."""
        cutoff = time.time() - older_than
        found = []
        candidates = [entry for entry in _scan(self._root) if _is_marker_temporary(entry.name)]
        for stage in self.stages():
            for shard in _scan(os.path.join(self._root, stage)):
                if shard.is_dir(follow_symlinks=False):
                    candidates += [e for e in _scan(shard.path) if e.name.endswith(".tmp")]
        for entry in candidates:
            try:
                if entry.stat(follow_symlinks=False).st_mtime <= cutoff:
                    found.append(entry.path)
            except FileNotFoundError:
                continue
        return sorted(found)

    def check(self, result: StoredResult) -> str | None:
        """What is wrong with a stored result, or ``None`` if it reads back intact."""
        try:
            with open(result.path, "rb") as file:
                data = bytearray(file.read())
        except FileNotFoundError:
            return None  # removed meanwhile: nothing there is damaged
        except OSError as exc:
            return f"it cannot be read: {exc}"
        return problem_with(result.stage, result.key, data)

    def remove(self, paths: list[str]) -> int:
        """Delete result or temporary files of this store; how many bytes that freed."""
        freed = 0
        for path in paths:
            if not os.path.abspath(path).startswith(os.path.abspath(self._root) + os.sep):
                raise StoreError(f"{path!r} is not a file of the store {self._root!r}")
            try:
                freed += os.stat(path).st_size
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise self._write_error(exc, "remove results from the store") from exc
        return freed

    def clear(self) -> int:
        """Delete every result and temporary file, keeping the (now empty) store; bytes freed."""
        freed = sum(result.size for result in self.results())
        try:
            for stage in self.stages():
                shutil.rmtree(os.path.join(self._root, stage))
        except OSError as exc:
            raise self._write_error(exc, "remove results from the store") from exc
        self.remove(self.temporaries(older_than=0.0))
        self._folders.clear()
        return freed


def _scan(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_marker_temporary(name: str) -> bool:
    return name.startswith(f".{MARKER}.") and name.endswith(".tmp")


#: this host, as temporary file names record it (with the writer's process id)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
_TEMPORARY = re.compile(
    r"\.[0-9a-f]{64}\.(?P<host>[A-Za-z0-9-]*)-(?P<pid>[0-9]+)\.[0-9a-f]{16}\.tmp"
)


def _remove_dead_writers_files(folder: str) -> None:
    """Remove the temporary files in ``folder`` of writers on this host that have died.

    A process killed between writing a result and renaming it leaves its temporary file;
    readers ignore it, and this removes it the next time a process writes into that
    folder. Files of live processes, and of other hosts sharing the store, stay.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        _unlink_quietly(os.path.join(folder, name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to another user
        return True
    return True


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def open_store(store: Store | str | os.PathLike[str] | None, *, create: bool = True) -> Store:
    """A store from a path or URL, an existing store, or ``None`` for the default location."""
    if isinstance(store, Store):
        return store
    return Store(default_store_path() if store is None else store, create=create)
