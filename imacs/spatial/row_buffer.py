"""Rows of numbers gathered image by image and read back a block at a time.

The dataset-wide analyses keep a few numbers per image (a positional map's binned grid
is ``grid²`` values per model) and need all of them at the end, for resampling. Held in
memory that is the one part of a comparison whose memory grows with the dataset (8 KB
per image at the default grid). :class:`RowBuffer` keeps them in memory up to a limit
and past it in an unnamed temporary file, read back with plain reads a block at a time,
so the process holds one block, whatever the number of images.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

#: bytes of rows held in memory before they move to a temporary file
SPILL_BYTES = 16 * 2**20
#: the last appended parts are merged into one array once there are this many, so rows
#: appended one at a time do not each cost an array's header
MERGE_PARTS = 64


class RowBuffer:
    """Rows of ``width`` values of ``dtype``, appended in order, read back in blocks.

    Parameters
    ----------
    width:
        Values per row.
    dtype:
        What the rows are kept as.
    directory:
        Where the temporary file goes once the rows pass ``spill_bytes`` (default: the
        system's temporary folder). The file has no name in the folder where the system
        allows it, and is gone when the buffer is closed or the process ends.
    spill_bytes:
        The most bytes kept in memory; ``None`` keeps everything in memory.
    """

    def __init__(
        self,
        width: int,
        *,
        dtype: Any = np.float32,
        directory: str | os.PathLike[str] | None = None,
        spill_bytes: int | None = SPILL_BYTES,
    ):
        self.width = int(width)
        self.dtype = np.dtype(dtype)
        self.directory = None if directory is None else str(directory)
        self.spill_bytes = spill_bytes
        self._parts: list[np.ndarray] = []  # merged parts, in order
        self._recent: list[np.ndarray] = []  # appended since the last merge
        self._in_memory = 0
        self._file: io.BufferedRandom | None = None
        self._on_file = 0

    def __len__(self) -> int:
        return self._on_file + self._in_memory

    @property
    def spilled(self) -> bool:
        """Whether some rows are in the temporary file."""
        return self._file is not None

    def append(self, rows: np.ndarray) -> None:
        """Add ``rows`` (``(k, width)``, or one row of ``width`` values) after the others."""
        rows = np.asarray(rows, dtype=self.dtype).reshape(-1, self.width)
        if not len(rows):
            return
        self._recent.append(np.array(rows, copy=True))
        self._in_memory += len(rows)
        if len(self._recent) >= MERGE_PARTS:
            self._merge_recent()
        if self.spill_bytes is not None and self._in_memory * self.width * self.dtype.itemsize > (
            self.spill_bytes
        ):
            self._spill()

    def extend(self, other: RowBuffer) -> None:
        """Add all of ``other``'s rows after these."""
        if other.width != self.width:
            raise ValueError(f"expected rows of width {self.width}; got {other.width}")
        for block in other.blocks():
            self.append(block)

    def _merge_recent(self) -> None:
        if len(self._recent) > 1:
            self._parts.append(np.concatenate(self._recent))
        else:
            self._parts.extend(self._recent)
        self._recent = []

    def _spill(self) -> None:
        self._merge_recent()
        if self._file is None:
            # kept open for the buffer's life, closed by close() (or when the process ends)
            self._file = tempfile.TemporaryFile(  # noqa: SIM115
                dir=self.directory, prefix="imacs-rows-"
            )
        self._file.seek(0, os.SEEK_END)
        for part in self._parts:
            self._file.write(np.ascontiguousarray(part).data.cast("B"))
        self._on_file += self._in_memory
        self._parts, self._in_memory = [], 0

    def blocks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """The rows in order, ``rows`` at a time (default: about 8 MB a block).

        Blocks may be views of the buffer's own arrays: read them, do not change them. The
        buffer must not grow while one iteration is under way.
        """
        if rows is None:
            rows = max(1, 2**23 // max(1, self.width * self.dtype.itemsize))
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
            done = 0
            while done < self._on_file:
                block = np.empty((min(rows, self._on_file - done), self.width), self.dtype)
                view = block.data.cast("B")
                read = 0
                while read < len(view):
                    got = self._file.readinto(view[read:])
                    if not got:
                        raise OSError(
                            f"the temporary file of rows ended after {done} of {self._on_file} "
                            "rows; was it truncated?"
                        )
                    read += got
                yield block
                done += len(block)
        self._merge_recent()
        for part in self._parts:
            for start in range(0, len(part), rows):
                yield part[start : start + rows]

    def to_array(self) -> np.ndarray:
        """Every row in one ``(len(self), width)`` array (for buffers known to be small)."""
        blocks = list(self.blocks())
        if not blocks:
            return np.empty((0, self.width), self.dtype)
        return np.concatenate(blocks)

    def close(self) -> None:
        """Drop the rows and the temporary file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._parts, self._recent, self._in_memory, self._on_file = [], [], 0, 0

    def __getstate__(self) -> dict[str, Any]:
        if self._file is not None:
            raise TypeError(
                f"this RowBuffer holds {self._on_file} rows in a temporary file, which cannot "
                "travel to another process; send buffers below spill_bytes"
            )
        return self.__dict__.copy()

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            self.close()
