"""A store on a file system that fsspec reaches: an object store, or any other.

``Store("s3://bucket/imacs-store")`` (and ``store="s3://..."`` for a comparison,
``--store s3://...`` on the command line) keeps the results in an object store, so that
workers of a cluster without a shared file system share one store. The protocols are
fsspec's: ``s3://`` (with ``s3fs`` installed), ``gs://`` (``gcsfs``), ``az://``
(``adlfs``), ``memory://`` (this process only, for tests), ``sftp://``...

The layout, the keys, the checksums and the rules are the local store's
(:mod:`imacs.store`), so a store copied between a folder and a bucket keeps its results.
What differs:

- Each result is written with one request (``pipe_file``): an object store shows either
  the whole object or none of it, so there are no temporary files. On a file system that
  shows a file while it is written (``sftp://``), a reader may see part of it; the
  checksum then reads it as damaged, so it is computed again, never used.
- A damaged result is deleted without checking that a writer has not just replaced it
  with a good copy (object stores have no inode to compare); at worst that copy is
  computed once more.
- Results whose file system reports no time of writing never count as old for
  ``imacs store prune``.
- A request to an object store takes milliseconds where a local read takes
  microseconds, so a comparison reads, looks up and writes its per-image results a batch
  at a time (:meth:`~imacs.store.Store.load_many`, :meth:`~imacs.store.Store.has_many`,
  :meth:`~imacs.store.Store.save_many`), which an asynchronous file system (s3fs, gcsfs,
  adlfs) serves with overlapping requests: 14 to 18 times faster than one request after
  another at 10 ms per request (``benchmarks/remote_store.py``, docs/scale-out.md).
- Credentials come from the protocol's usual places (``AWS_*`` variables,
  ``~/.aws``, ``GOOGLE_APPLICATION_CREDENTIALS``...); options that a URL cannot carry
  go to ``FsspecStore(url, **storage_options)``, which a comparison takes as its
  ``store=``.
"""

from __future__ import annotations

import datetime
import json
import math
import posixpath
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from imacs.errors import StoreError, StoreWarning
from imacs.store import (
    MARKER,
    STALE_SECONDS,
    STORE_FORMAT,
    Store,
    StoredResult,
    _damage,
    _decode,
    encode,
    problem_with,
)

#: requests a store at a URL keeps in flight at once when it asks whether results exist
_CONCURRENT = 128
#: the keys under which fsspec's file systems report when a file was written
_TIME_FIELDS = ("mtime", "LastModified", "last_modified", "updated", "created", "timeCreated")


class FsspecStore(Store):
    """A store at a URL of any file system fsspec supports.

    Parameters
    ----------
    root:
        The URL (``s3://bucket/path``), or with ``filesystem`` a path on that file system.
    create:
        As for :class:`~imacs.store.Store`: ``False`` only opens an existing store.
    filesystem:
        An fsspec file system instance to use instead of the one the URL names.
    storage_options:
        Passed to the file system (``anon=True``, ``endpoint_url=...``, credentials).
    """

    def __init__(
        self,
        root: str,
        *,
        create: bool = True,
        filesystem: Any = None,
        **storage_options: Any,
    ):
        if filesystem is None:
            filesystem, path = _url_to_fs(root, storage_options)
            self.location = root
        else:
            path = root
            self.location = filesystem.unstrip_protocol(path)
        self.fs = filesystem
        # fsspec's memory:// lives in this process only: no worker of another one sees it
        self.shared = "memory" not in _protocols(filesystem)
        # in the file system's own spelling (memory:// paths start with "/"), as it lists them
        self._root = str(filesystem._strip_protocol(path)).rstrip("/") or "/"
        marker = self._join(MARKER)
        try:
            if not self.fs.exists(marker):
                if not create:
                    raise StoreError(
                        f"there is no imacs store at {self.location!r} (it has no {MARKER}); "
                        "give the location a comparison used as its store (--store)"
                    )
                self._initialise_remote(marker)
            self._check_remote_marker(marker)
        except StoreError:
            raise
        except Exception as exc:  # each fsspec back end raises its own errors
            raise self._write_error(exc, "open the store") from exc

    def __repr__(self) -> str:
        return f"FsspecStore({self.location!r})"

    @property
    def local_folder(self) -> None:
        """``None``: the store is not a folder of this machine."""
        return None

    def _join(self, *parts: str) -> str:
        return posixpath.join(self._root, *parts)

    def _file(self, stage: str, key: str) -> str:
        return posixpath.join(self._root, stage, key[:2], key + ".npy")

    def _initialise_remote(self, marker: str) -> None:
        names = [posixpath.basename(entry["name"].rstrip("/")) for entry in self._list(self._root)]
        if any(name != MARKER for name in names):
            raise StoreError(
                f"{self.location!r} is not empty and is not an imacs store; choose an empty "
                "or new location for the store"
            )
        # an object store has no create-if-absent: processes creating one store at once
        # each write the same marker, and the last write wins whole
        self._put(marker, json.dumps({"format": STORE_FORMAT}).encode())

    def _put(self, path: str, data: bytes) -> None:
        try:
            self.fs.pipe_file(path, data)
        except FileNotFoundError:
            self._make_folders([path])
            self.fs.pipe_file(path, data)

    def _make_folders(self, paths: Sequence[str]) -> None:
        """Make the folders ``paths`` need, after a write found one missing.

        A file system with real folders (sftp, a local disk) needs them; on an object
        store a missing folder is a missing bucket, which ``makedirs`` would create:
        folders are made only inside the store's root once it exists, and the root only
        inside a folder that exists, so a mistyped bucket is an error, not a new bucket.
        """
        if self.fs.exists(self._root):
            needed = {posixpath.dirname(path) for path in paths}
        else:
            parent = posixpath.dirname(self._root)
            if not parent or parent == self._root or not self.fs.exists(parent):
                raise StoreError(
                    f"cannot create the store {self.location!r}: the place it goes in does "
                    f"not exist ({parent or self._root!r}; on an object store, its bucket). "
                    "Create it first, or check the URL"
                )
            needed = {self._root}
        for folder in sorted(needed):
            self.fs.makedirs(folder, exist_ok=True)

    def _check_remote_marker(self, marker: str) -> None:
        try:
            found = json.loads(self.fs.cat_file(marker))["format"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{self.fs.unstrip_protocol(marker)!r} is not a readable imacs store marker "
                f"({exc}); point the comparison at another store location"
            ) from exc
        if found != STORE_FORMAT:
            raise StoreError(
                f"the store {self.location!r} was written in format {found!r}, but this "
                f"version of imacs reads format {STORE_FORMAT}. Its results cannot be reused: "
                "use a new store location (store=... or --store), or delete this one"
            )

    def _list(self, folder: str) -> list[dict[str, Any]]:
        try:
            return list(self.fs.ls(folder, detail=True))
        except FileNotFoundError:
            return []

    def has(self, stage: str, key: str) -> bool:
        """Whether a result exists under ``key``; :meth:`load` checks its content."""
        return bool(self.fs.exists(self._file(stage, key)))

    def has_many(self, stage: str, keys: Sequence[str]) -> list[bool]:
        """:meth:`has` of each key, asked concurrently on an asynchronous file system."""
        paths = [self._file(stage, key) for key in keys]
        if not getattr(self.fs, "async_impl", False) or len(paths) < 2:
            return [bool(self.fs.exists(path)) for path in paths]
        import asyncio

        from fsspec.asyn import sync

        async def ask() -> list[bool]:
            found = []
            for start in range(0, len(paths), _CONCURRENT):  # a bounded number in flight
                chunk = paths[start : start + _CONCURRENT]
                found += await asyncio.gather(*(self.fs._exists(path) for path in chunk))
            return [bool(exists) for exists in found]

        result: list[bool] = sync(self.fs.loop, ask)
        return result

    def load(self, stage: str, key: str) -> np.ndarray | None:
        """The array stored under ``key``, or ``None`` when it is missing or damaged."""
        path = self._file(stage, key)
        try:
            data: bytes | Exception = self.fs.cat_file(path)
        except Exception as exc:
            data = exc
        return self._array(stage, key, path, data)

    def load_many(self, stage: str, keys: Sequence[str]) -> list[np.ndarray | None]:
        """The arrays under ``keys``, as :meth:`load` gives each, read with concurrent
        requests where the file system makes them (s3fs, gcsfs and adlfs do)."""
        paths = [self._file(stage, key) for key in keys]
        found = self.fs.cat(paths, on_error="return") if paths else {}
        return [
            self._array(stage, key, path, found[path]) if path in found else self.load(stage, key)
            for key, path in zip(keys, paths, strict=True)
        ]

    def _array(self, stage: str, key: str, path: str, data: bytes | Exception) -> np.ndarray | None:
        """The array in a result's bytes, or ``None`` when it is missing, unread or damaged."""
        if isinstance(data, FileNotFoundError):
            return None
        if isinstance(data, Exception):  # a network error: compute it again rather than stop
            warnings.warn(
                f"could not read the stored {stage} result {self.fs.unstrip_protocol(path)!r} "
                f"({data}); it will be computed again",
                StoreWarning,
                stacklevel=3,
            )
            return None
        content = bytearray(data)
        problem = _damage(stage, key, content)
        if problem is None:
            array = _decode(content)
            if array is not None:
                return array
            problem = "its content is not a plain array"
        try:
            self.fs.rm_file(path)
            outcome = "it was removed and will be computed again"
        except Exception:  # read-only credentials: the damage stays, but is never used
            outcome = "it will be computed again"
        warnings.warn(
            f"the stored {stage} result {self.fs.unstrip_protocol(path)!r} is damaged "
            f"({problem}); {outcome}",
            StoreWarning,
            stacklevel=3,
        )
        return None

    def save(self, stage: str, key: str, array: np.ndarray) -> None:
        """Store ``array`` under ``key`` with one write, which object stores make atomic."""
        data = b"".join(encode(stage, key, array))
        try:
            self._put(self._file(stage, key), data)
        except StoreError:
            raise
        except Exception as exc:
            raise self._write_error(exc, f"save a {stage} result in the store") from exc

    def save_many(self, stage: str, items: Sequence[tuple[str, np.ndarray]]) -> None:
        """:meth:`save` of each ``(key, array)``, as concurrent requests on an asynchronous
        file system; each result is written whole or not at all, as by :meth:`save`."""
        if len(items) < 2:
            for key, array in items:
                self.save(stage, key, array)
            return
        files = {
            self._file(stage, key): b"".join(encode(stage, key, array)) for key, array in items
        }
        try:
            try:
                self.fs.pipe(files)
            except FileNotFoundError:
                self._make_folders(list(files))
                self.fs.pipe(files)
        except StoreError:
            raise
        except Exception as exc:
            raise self._write_error(exc, f"save {stage} results in the store") from exc

    def _write_error(self, exc: Exception, doing: str) -> StoreError:
        return StoreError(
            f"cannot {doing} {self.location!r}: {type(exc).__name__}: {exc}. Check the URL, "
            "the credentials and the network, or point the comparison at another store "
            "(--store or store=...)"
        )

    def count(self, stage: str) -> int:
        """How many results ``stage`` holds."""
        return sum(1 for _ in self.results(stage))

    def stages(self) -> list[str]:
        """The stages that hold results, sorted."""
        return sorted(
            posixpath.basename(entry["name"].rstrip("/"))
            for entry in self._list(self._root)
            if entry.get("type") == "directory"
            and not posixpath.basename(entry["name"].rstrip("/")).startswith(".")
        )

    def results(self, stage: str | None = None) -> Iterator[StoredResult]:
        """Every result of ``stage`` (of every stage when ``None``), paths as URLs."""
        for name in [stage] if stage is not None else self.stages():
            folder = self._join(name)
            try:
                found = self.fs.find(folder, detail=True)
            except FileNotFoundError:
                continue
            for path, info in sorted(found.items()):
                shard, file = posixpath.split(posixpath.relpath(path, folder))
                if len(shard) != 2 or "/" in shard or not file.endswith(".npy"):
                    continue
                if file.startswith("."):
                    continue
                key = file[: -len(".npy")]
                url = self.fs.unstrip_protocol(path)
                yield StoredResult(name, key, url, int(info.get("size") or 0), _written(info))

    def temporaries(self, *, older_than: float = STALE_SECONDS) -> list[str]:
        """None: each result is written in one request, so no temporary files are left."""
        return []

    def check(self, result: StoredResult) -> str | None:
        """What is wrong with a stored result, or ``None`` if it reads back intact."""
        try:
            data = bytearray(self.fs.cat_file(self._inside(result.path)))
        except FileNotFoundError:
            return None
        except Exception as exc:
            return f"it cannot be read: {exc}"
        return problem_with(result.stage, result.key, data)

    def _inside(self, url: str) -> str:
        path = self.fs._strip_protocol(url)
        if not path.startswith(self._root.rstrip("/") + "/"):
            raise StoreError(f"{url!r} is not a file of the store {self.location!r}")
        return str(path)

    def remove(self, paths: list[str]) -> int:
        """Delete results of this store (URLs as :meth:`results` gives them); bytes freed."""
        freed = 0
        for url in paths:
            path = self._inside(url)
            try:
                freed += int(self.fs.size(path) or 0)
                self.fs.rm_file(path)
            except FileNotFoundError:
                continue
            except Exception as exc:
                raise self._write_error(exc, "remove results from the store") from exc
        return freed

    def clear(self) -> int:
        """Delete every result, keeping the (now empty) store; bytes freed."""
        freed = sum(result.size for result in self.results())
        try:
            for stage in self.stages():
                self.fs.rm(self._join(stage), recursive=True)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._write_error(exc, "remove results from the store") from exc
        return freed


def _protocols(filesystem: Any) -> set[str]:
    """The protocols a file system answers to, with a wrapper's inner one (async_wrapper)."""
    found = set()
    while filesystem is not None:
        protocol = filesystem.protocol
        found |= {protocol} if isinstance(protocol, str) else set(protocol)
        filesystem = getattr(filesystem, "sync_fs", None)
    return found


def _url_to_fs(url: str, storage_options: dict[str, Any]) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise StoreError(
            f"the store {url!r} is a URL, which needs fsspec: pip install 'imacs[remote]' "
            "(and the protocol's own package: s3fs for s3://, gcsfs for gs://, adlfs for "
            "az://), or give a local folder"
        ) from None
    try:
        filesystem, path = fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as exc:
        raise StoreError(
            f"the store {url!r} needs a package that is not installed: {exc}"
        ) from None
    except ValueError as exc:
        raise StoreError(
            f"the store {url!r} names a protocol fsspec does not know ({exc}); give a local "
            "folder or a URL such as s3://bucket/imacs-store"
        ) from None
    return filesystem, str(path)


def _written(info: dict[str, Any]) -> float:
    """When a file was written, as a POSIX time; infinity when its file system won't say."""
    for name in _TIME_FIELDS:
        value = info.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # ISO 8601, as gcsfs gives it
            try:
                value = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.UTC)
            return value.timestamp()
    return math.inf
