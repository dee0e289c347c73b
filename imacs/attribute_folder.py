"""Attribute every image of a folder and write maps, overlays and a manifest.

What ``imacs attribute`` runs. Work is written after every chunk of images, and a rerun
with the same model, method and parameters skips the images already done, so an
interrupted run loses at most one chunk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imacs.adapters.base import ModelAdapter
from imacs.api import get_method
from imacs.data.folder import ImageFolder
from imacs.visualization import overlay

MANIFEST = "attributions.json"


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
        "params": {k: repr(v) for k, v in sorted(params.items())},
    }


def _map_path(out: Path, name: str) -> Path:
    return out / "maps" / (name.replace("/", "__") + ".npy")


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
    progress: Callable[[int], None] | None = None,
) -> FolderRun:
    """Write ``maps/<image>.npy``, ``overlays/<image>.png`` and ``attributions.json``."""
    attribution = get_method(method, **params)
    (out / "maps").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(exist_ok=True)
    manifest_path = out / MANIFEST
    settings = _settings(model, method, attribution.get_params())
    records: dict[str, dict[str, Any]] = {}
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        if previous.get("settings") == settings:
            records = {
                r["image"]: r for r in previous["images"] if _map_path(out, r["image"]).exists()
            }
    todo = [i for i, name in enumerate(folder.names) if name not in records]
    reused = len(folder.names) - len(todo)
    if progress is not None and reused:
        progress(reused)
    low, high = float(folder.images.min()), float(folder.images.max())
    for start in range(0, len(todo), chunk):
        index = np.array(todo[start : start + chunk])
        images, chunk_targets = folder.images[index], targets[index]
        result = attribution.attribute(model, images, chunk_targets, batch_size=batch_size)
        scores = model.scores(images, chunk_targets, batch_size=batch_size)
        for k, i in enumerate(index):
            name = folder.names[i]
            np.save(_map_path(out, name), result.maps[k])
            picture = overlay(images[k], result.maps[k], pixel_range=(low, high))
            Image.fromarray(picture).save(out / "overlays" / (name.replace("/", "__") + ".png"))
            record: dict[str, Any] = {
                "image": name,
                "target": int(chunk_targets[k]),
                "score": float(scores[k]),
            }
            if folder.labels is not None and folder.class_names is not None:
                record["label"] = folder.class_names[int(folder.labels[i])]
            if result.convergence_delta is not None:
                record["convergence_delta"] = float(result.convergence_delta[k])
            records[name] = record
        _write_manifest(manifest_path, settings, folder, records)
        if progress is not None:
            progress(len(index))
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
