"""What a store at a URL costs when each request takes milliseconds, batched and not.

A request to an object store (S3, GCS, Azure) takes milliseconds where a local read takes
microseconds, and a comparison makes about 15 store requests per image. The comparison
asks for its per-image results a batch at a time (``Store.load_many``, ``has_many``,
``save_many``), which an asynchronous file system (s3fs, gcsfs, adlfs) serves with
overlapping requests. This machine reaches no object store, so the benchmark simulates
one: an in-memory file system that waits ``--latency-ms`` before answering each request,
in two forms:

- ``async``: an fsspec ``AsyncFileSystem``, as s3fs, gcsfs and adlfs are: the requests of
  one batch wait together;
- ``sync``: the same waits one request after another, what a comparison that asked for
  each result on its own would pay on any file system.

Each compares the demo's planted-shortcut pair of PyTorch CNNs on ``--images`` digits
(Integrated Gradients, 16 steps, one torch thread, in this process) into a fresh store,
then again into the same store (a resumed run: everything is found there), beside a local
store folder. Prints the wall seconds and the requests made, and writes
``benchmarks/results/remote_store.json``.

    .venv/bin/python benchmarks/remote_store.py                  # about 4 minutes
    .venv/bin/python benchmarks/remote_store.py --images 200 --latency-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import posixpath
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def slow_file_systems(latency: float) -> tuple[Any, Any]:
    """An asynchronous and a synchronous in-memory file system, ``latency`` s per request."""
    from fsspec import AbstractFileSystem
    from fsspec.asyn import AsyncFileSystem

    class Files:
        """The files and folders the file systems hold, and the requests they answered."""

        def __init__(self) -> None:
            self.files: dict[str, bytes] = {}
            self.folders: set[str] = set()
            self.requests = 0

        def put(self, path: str, data: bytes) -> None:
            self.files[path] = bytes(data)
            parent = posixpath.dirname(path)
            while parent and parent not in self.folders:
                self.folders.add(parent)
                parent = posixpath.dirname(parent)

        def get(self, path: str) -> bytes:
            try:
                return self.files[path]
            except KeyError:
                raise FileNotFoundError(path) from None

        def listing(self, path: str) -> list[dict[str, Any]]:
            path = path.rstrip("/")
            if path not in self.folders:
                raise FileNotFoundError(path)
            prefix = path + "/"
            found = {
                name: {"name": name, "size": len(data), "type": "file"}
                for name, data in self.files.items()
                if posixpath.dirname(name) == path
            }
            for folder in self.folders:
                if folder.startswith(prefix) and "/" not in folder[len(prefix) :]:
                    found[folder] = {"name": folder, "size": 0, "type": "directory"}
            return sorted(found.values(), key=lambda entry: entry["name"])

        def info(self, path: str) -> dict[str, Any]:
            path = path.rstrip("/")
            if path in self.files:
                return {"name": path, "size": len(self.files[path]), "type": "file"}
            if path in self.folders:
                return {"name": path, "size": 0, "type": "directory"}
            raise FileNotFoundError(path)

    class SlowAsync(AsyncFileSystem):  # type: ignore[misc]
        protocol = "slowasync"
        cachable = False

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.held = Files()

        async def _wait(self) -> None:
            self.held.requests += 1
            await asyncio.sleep(latency)

        async def _cat_file(self, path: str, start: Any = None, end: Any = None, **_: Any) -> bytes:
            await self._wait()
            return self.held.get(path)

        async def _pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
            await self._wait()
            self.held.put(path, value)

        async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
            await self._wait()
            return self.held.info(path)

        async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
            await self._wait()
            entries = self.held.listing(path)
            return entries if detail else [entry["name"] for entry in entries]

        async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
            pass

    class SlowSync(AbstractFileSystem):  # type: ignore[misc]
        protocol = "slowsync"
        cachable = False

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.held = Files()

        def _wait(self) -> None:
            self.held.requests += 1
            time.sleep(latency)

        def cat_file(self, path: str, start: Any = None, end: Any = None, **kw: Any) -> bytes:
            self._wait()
            return self.held.get(path)

        def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
            self._wait()
            self.held.put(path, value)

        def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
            self._wait()
            return self.held.info(path)

        def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
            self._wait()
            entries = self.held.listing(path)
            return entries if detail else [entry["name"] for entry in entries]

        def makedirs(self, path: str, exist_ok: bool = False) -> None:
            pass

    return SlowAsync(), SlowSync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np
    import torch

    import imacs
    from imacs.demo.data import shortcut_digits
    from imacs.remote_store import FsspecStore
    from imacs.testing.planted import planted_models

    torch.set_num_threads(1)
    models = planted_models()
    parts, seed = [], 0
    while sum(len(part.images) for part in parts) < args.images:
        parts.append(shortcut_digits(shortcut=False, seed=100 + seed))
        seed += 1
    images = np.concatenate([part.images for part in parts])[: args.images]
    labels = np.concatenate([part.labels for part in parts])[: args.images]
    settings: dict[str, Any] = {"method_params": {"n_steps": 16}, "progress": False}

    asynchronous, synchronous = slow_file_systems(args.latency_ms / 1000)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = {
            "local folder": lambda: Path(tmp) / "store",
            "async, simulated latency": lambda: FsspecStore("store", filesystem=asynchronous),
            "sync, simulated latency": lambda: FsspecStore("store", filesystem=synchronous),
        }
        for name, make in stores.items():
            tables = []
            for attempt in ("fresh", "resumed"):
                store = make()
                held = getattr(getattr(store, "fs", None), "held", None)
                before = held.requests if held is not None else 0
                start = time.perf_counter()
                comparison = imacs.compare(*models, images, labels, store=store, **settings)
                seconds = time.perf_counter() - start
                requests = held.requests - before if held is not None else None
                tables.append(comparison.regions)
                runs.append(
                    {"store": name, "run": attempt, "seconds": seconds, "requests": requests}
                )
                print(
                    f"{name:>26} {attempt:>8}: {seconds:7.1f} s"
                    + ("" if requests is None else f", {requests} requests")
                )
            assert tables[0].equals(tables[1]), "a resumed run must give the same tables"

    by = {(run["store"], run["run"]): run for run in runs}
    for attempt in ("fresh", "resumed"):
        local = by[("local folder", attempt)]["seconds"]
        fast = by[("async, simulated latency", attempt)]["seconds"]
        slow = by[("sync, simulated latency", attempt)]["seconds"]
        print(
            f"{attempt}: async {fast / local:.2f}x the local folder's time, "
            f"sync {slow / local:.2f}x; batching saves {slow / fast:.1f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "remote_store.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "args": vars(args),
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
