"""Recognising PyTorch model files without importing torch.

``imacs.load_model`` asks every plugin whether it wants a path, so this check runs for
every model file anyone loads: it only looks at the file name and, for zip files, at the
archive's table of contents.

``torch.save`` writes a zip whose entries sit in one folder, ``archive/data.pkl`` beside
``archive/data/0``...; ``torch.jit.save`` writes the same layout plus
``archive/constants.pkl`` and ``archive/code/``; ``torch.export.save`` writes
``archive/archive_format`` (older versions: ``serialized_exported_program.json``). Other
zip-based model formats (``.keras`` holds ``config.json`` and ``model.weights.h5``) have
none of these entries.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any, Literal

#: File name endings PyTorch users give their models.
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".ts", ".torchscript", ".jit", ".bin", ".pt2"})

ArchiveKind = Literal["torchscript", "checkpoint", "export"]


def archive_kind(path: str | os.PathLike[str]) -> ArchiveKind | None:
    """``"torchscript"``, ``"checkpoint"`` or ``"export"`` for a torch zip archive, else ``None``.

    ``None`` also covers files written by ``torch.save`` in the legacy (pre-1.6) format,
    which are plain pickles, and files that cannot be read.
    """
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    # torch puts its entries exactly one folder deep; a data.pkl deeper inside some other
    # zip is not ours
    entries = {name.split("/", 1)[1] for name in names if name.count("/") >= 1}
    if "archive_format" in entries or "serialized_exported_program.json" in names:
        return "export"
    if "constants.pkl" in entries:
        return "torchscript"
    if "data.pkl" in entries:
        return "checkpoint"
    return None


def is_torch_file(model: Any) -> bool:
    """Whether ``model`` is a path to a file that looks like a PyTorch model."""
    if not isinstance(model, str | os.PathLike):
        return False
    path = os.fspath(model)
    if not os.path.isfile(path):
        return False
    if os.path.splitext(path)[1].lower() in TORCH_SUFFIXES:
        return True
    return archive_kind(path) is not None
