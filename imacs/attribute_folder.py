"""Attribute every image of a folder and write maps, overlays and a manifest.

What ``imacs attribute`` runs. Work is written after every chunk of images, and a rerun
with the same model, method and parameters skips the images already done, so an
interrupted run loses at most one chunk.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from imacs.adapters.base import ModelAdapter
from imacs.api import get_method
from imacs.attribution.base import DatasetView
from imacs.data.folder import ImageFolder
from imacs.progress import Progress
from imacs.visualization import overlay

MANIFEST = "attributions.json"

logger = logging.getLogger(__name__)


@dataclass
class FolderRun:
    """The outcome of :func:`attribute_folder`."""

    manifest: Path
    computed: int
    reused: int


def _settings(model: ModelAdapter, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model.describe() | {"fingerprint": model.fingerprint()},
        "method": method,
        "params": {k: _as_json(v) for k, v in sorted(params.items())},
    }


def _as_json(value: Any) -> Any:
    """A parameter as the JSON value it is: ``"full"``, ``null``, ``[0, 1]``, ``64``.

    A value JSON has no type for (a function, an array) is written as its ``repr``, a
    string, so that the manifest still says what it was.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _as_json(v) for k, v in value.items()}
    return repr(value)


def output_stems(names: list[str]) -> dict[str, str]:
    """Each image's file name in maps/ and overlays/, without the image's suffix.

    ``cat/01.png`` becomes ``cat__01`` (``maps/cat__01.npy``, ``overlays/cat__01.png``).
    Two images that differ only by suffix (``01.png``, ``01.jpg``) keep it, as
    ``cat__01_png`` and ``cat__01_jpg``, so that neither overwrites the other.
    """
    bare = {name: str(PurePosixPath(name).with_suffix("")).replace("/", "__") for name in names}
    taken = Counter(bare.values())
    return {
        name: stem if taken[stem] == 1 else name.replace("/", "__").replace(".", "_")
        for name, stem in bare.items()
    }


def attribute_folder(
    model: ModelAdapter,
    folder: ImageFolder,
    out: Path,
    *,
    method: str,
    params: dict[str, Any],
    targets: np.ndarray,
    batch_size: int,
    chunk: int = 16,
    progress: Progress | None = None,
) -> FolderRun:
    """Write ``maps/<image>.npy``, ``overlays/<image>.png`` and ``attributions.json``.

    ``<image>`` is the image's path in the folder without its suffix, ``/`` written
    ``__`` (:func:`output_stems`); each manifest record names its ``map`` and ``overlay``.
    ``progress``, when given, shows a stage that counts the images attributed.
    """
    attribution = get_method(method, **params)
    (out / "maps").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(exist_ok=True)
    manifest_path = out / MANIFEST
    settings = _settings(model, method, attribution.get_params())
    # a method that learns from the data (LTX) learns once from the whole folder, not
    # from each chunk; the manifest names what it learnt, so a rerun after other learning
    # redoes every map. The view digests the images for its key only if prepare reads it.
    data = DatasetView.from_arrays(folder.images, targets)
    learnt = attribution.prepare(model, data, batch_size=batch_size)
    if learnt is not None:
        settings["learnt"] = learnt
    stems = output_stems(folder.names)
    records: dict[str, dict[str, Any]] = {}
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        if previous.get("settings") == settings:
            records = {
                r["image"]: r
                for r in previous["images"]
                if r["image"] in stems and (out / r.get("map", "")).is_file()
            }
    todo = [i for i, name in enumerate(folder.names) if name not in records]
    reused = len(folder.names) - len(todo)
    low, high = float(folder.images.min()), float(folder.images.max())
    stage = (progress or Progress(False)).stage(f"attributing ({method})", len(todo), reused=reused)
    with stage as tick:
        for start in range(0, len(todo), chunk):
            index = np.array(todo[start : start + chunk])
            images, chunk_targets = folder.images[index], targets[index]
            result = attribution.attribute(model, images, chunk_targets, batch_size=batch_size)
            scores = model.scores(images, chunk_targets, batch_size=batch_size)
            for k, i in enumerate(index):
                name = folder.names[i]
                record: dict[str, Any] = {
                    "image": name,
                    "map": f"maps/{stems[name]}.npy",
                    "overlay": f"overlays/{stems[name]}.png",
                    "target": int(chunk_targets[k]),
                    "score": float(scores[k]),
                }
                np.save(out / record["map"], result.maps[k])
                picture = overlay(images[k], result.maps[k], pixel_range=(low, high))
                Image.fromarray(picture).save(out / record["overlay"])
                if folder.labels is not None and folder.class_names is not None:
                    record["label"] = folder.class_names[int(folder.labels[i])]
                if result.convergence_delta is not None:
                    record["convergence_delta"] = float(result.convergence_delta[k])
                records[name] = record
            _write_manifest(manifest_path, settings, folder, records)
            tick(len(index))
    logger.debug("attributed %d images, reused %d, into %s", len(todo), reused, out)
    _write_manifest(manifest_path, settings, folder, records)
    return FolderRun(manifest_path, len(todo), reused)


def _write_manifest(
    path: Path, settings: dict[str, Any], folder: ImageFolder, records: dict[str, dict[str, Any]]
) -> None:
    ordered = [records[name] for name in folder.names if name in records]
    content = {"settings": settings, "skipped": folder.skipped or [], "images": ordered}
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(content, indent=2))
    partial.replace(path)  # atomic: a kill never leaves a half-written manifest
