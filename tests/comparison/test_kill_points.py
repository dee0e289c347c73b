"""A comparison killed at any stage reruns to exactly the tables of an uninterrupted run.

Each case runs ``killed_comparison.py`` in a child process that kills itself with SIGKILL
at one chosen call, from reading the images to moving the saved files into place, then
reruns the comparison here on the same store and output folder, and checks that

- right after the kill the output folder held one whole output: the previous one, or the
  new one once the save had committed;
- the rerun's tables are, byte for byte, those of one uninterrupted run;
- the rerun attributed exactly the images whose maps the killed run had not stored;
- nothing temporary is left in the output folder, and nothing in the store but, after a
  kill in the middle of a store write, that write's own temporary file, which readers
  ignore (``imacs store prune`` removes such files once they are old enough that no live
  writer can own them).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import killed_comparison as killed
import pytest

import imacs
from imacs.comparison.result import TABLES

SCRIPT = Path(killed.__file__)
TABLE_SUFFIXES = (".csv", ".json")

#: (kill point, at which of its calls, the output the folder holds right after the kill);
#: with 40 images in batches of 16 and 4 integrated-gradients steps, model A's 6th
#: gradient call is in its second task, the 20th stored map is the second task's 4th, the
#: 50th rename of a map is model B's 10th, and the 4th rename into the output folder comes
#: after the commit (the 1st) and two of the files
KILLS = [
    ("ingest: storing an image", 10, "previous"),
    ("ingest: an image half written", 25, "previous"),
    ("predict: model A", 2, "previous"),
    ("predict: storing an output", 2, "previous"),
    ("attribute: model A", 6, "previous"),
    ("attribute: storing a map", 20, "previous"),
    ("attribute: model B", 2, "previous"),
    ("attribute: a map half written", 50, "previous"),
    ("segment", 10, "previous"),
    ("segment: storing a segmentation", 20, "previous"),
    ("score: a map metric", 2, "previous"),
    ("featurize", 2, "previous"),
    ("cluster", 1, "previous"),
    ("statistics: clusters", 1, "previous"),
    ("statistics: classes", 1, "previous"),
    ("causal check", 3, "previous"),
    ("save: writing a table", 3, "previous"),
    ("save: writing the report", 1, "previous"),
    ("save: moving the files in", 4, "new"),
]


def test_the_kill_points_cover_every_stage() -> None:
    stages = {killed.KILL_POINTS[point][0] for point, _, _ in KILLS}
    assert stages == {
        "ingest",
        "predict",
        "attribute",
        "segment",
        "score",
        "featurize",
        "cluster",
        "statistics",
        "causal",
        "save",
    }


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return killed.save_dataset(tmp_path_factory.mktemp("data") / "digits.npz")


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one uninterrupted run."""
    root = tmp_path_factory.mktemp("reference")
    killed.run(root / "store", root / "out", data)
    return root / "out"


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output of another comparison, there before each killed run saves over it."""
    root = tmp_path_factory.mktemp("previous")
    other = killed.save_dataset(root / "digits.npz", n_images=24, seed=5)
    killed.run(root / "store", root / "out", other)
    return root / "out"


def _tables(folder: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.suffix in TABLE_SUFFIXES and path.stem in TABLES
    }


def _temporaries(store: Path) -> list[Path]:
    return sorted(store.rglob("*.tmp"))


def _stored_maps(store: Path) -> int:
    return sum(1 for _ in (store / "attributions").glob("*/*.npy"))


@pytest.mark.parametrize(("point", "n", "held"), KILLS, ids=[f"{p} #{n}" for p, n, _ in KILLS])
def test_a_run_killed_at_any_stage_reruns_to_the_same_tables(
    point: str, n: int, held: str, data: Path, reference: Path, previous: Path, tmp_path: Path
) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    shutil.copytree(previous, out)
    process = subprocess.run(
        [sys.executable, str(SCRIPT), str(data), str(store), str(out), point, str(n)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, (
        f"the run was not killed at {point!r} #{n}: exit {process.returncode}\n"
        + process.stderr[-3000:]
    )

    whole = {"previous": previous, "new": reference}[held]
    imacs.Comparison.load(out)  # checks every file against its digest
    assert _tables(out) == _tables(whole)

    left_behind = _temporaries(store)
    assert len(left_behind) == ("half written" in point)
    maps_stored = _stored_maps(store)

    rerun: Any = killed.run(store, out, data)
    assert _tables(out) == _tables(reference)
    assert sorted(path.name for path in out.iterdir()) == sorted(
        path.name for path in reference.iterdir()
    )
    redone = rerun.work["attributed_a"] + rerun.work["attributed_b"]
    assert redone == 2 * killed.N_IMAGES - maps_stored
    # the rerun writes into the folder of the killed writer's file and removes it
    assert _temporaries(store) == []
