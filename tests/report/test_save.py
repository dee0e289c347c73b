"""``Comparison.save``: tables, figures and the report in one folder, and loading it back."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.errors import InvalidInputError, OutputError
from imacs.store import MARKER, Store
from imacs.testing.planted import planted_models

# a fixed k skips the search over k, which the comparison tests cover
FAST = {"method_params": {"n_steps": 8}, "n_permutations": 200, "n_clusters": 8, "progress": False}
TABLES = ("clusters", "regions", "images", "classes")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _, test = split_indices()
    data = shortcut_digits(test[:96], shortcut=False, seed=7)
    store = tmp_path_factory.mktemp("store")
    # the save mechanics list exact files; where in the frame's files are checked in
    # tests/spatial/test_where_in_the_frame.py
    return imacs.compare(
        *planted_models(), data.images, data.labels, store=store, spatial=False, **FAST
    )


@pytest.fixture
def reports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Path]]:
    """Stand in for ``imacs.report.html``: record each report asked for, write a stub."""
    calls: list[tuple[Any, Path]] = []

    def write_report(comparison: Any, path: Path, **options: Any) -> Path:
        calls.append((comparison, Path(path)))
        Path(path).write_text("<!doctype html><title>report</title>")
        return Path(path)

    stub = types.ModuleType("imacs.report.html")
    stub.write_report = write_report  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imacs.report.html", stub)
    return calls


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name != "comparison.json")


def test_save_writes_tables_figures_and_report_and_lists_them(
    comparison: Any, reports: list[tuple[Any, Path]], tmp_path: Path
) -> None:
    assert comparison.save(tmp_path) == tmp_path
    tables = [f"{name}.{fmt}" for name in TABLES for fmt in ("csv", "json")]
    figures = ["exemplars.png", "exemplars.svg", "summary.png", "summary.svg"]
    assert _files(tmp_path) == sorted([*tables, *figures, "report.html"])
    assert [(c, path.name) for c, path in reports] == [(comparison, "report.html")]
    meta = json.loads((tmp_path / "comparison.json").read_text())
    assert sorted(meta["files"]) == _files(tmp_path)
    assert sorted(meta["sha256"]) == _files(tmp_path)
    assert meta["format"] == 1
    loaded = imacs.Comparison.load(tmp_path)
    assert loaded.summary() == comparison.summary()
    pd.testing.assert_frame_equal(
        loaded.clusters, comparison.clusters, check_dtype=False, check_exact=False
    )


def test_report_and_figures_can_be_left_out(comparison: Any, tmp_path: Path) -> None:
    comparison.save(tmp_path, report=False, figures=False, formats=("json",))
    assert _files(tmp_path) == sorted(f"{name}.json" for name in TABLES)
    assert imacs.Comparison.load(tmp_path).summary() == comparison.summary()


def test_without_the_store_the_report_is_skipped_with_a_warning(
    comparison: Any, reports: list[tuple[Any, Path]], tmp_path: Path
) -> None:
    storeless = dataclasses.replace(comparison, store=str(tmp_path / "gone"))
    with pytest.warns(UserWarning, match="no report.html.*store"):
        storeless.save(tmp_path / "out", formats=("csv",))
    assert reports == []
    written = _files(tmp_path / "out")
    assert written == sorted([*(f"{name}.csv" for name in TABLES), "summary.png", "summary.svg"])
    meta = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert sorted(meta["files"]) == written


def test_a_failing_report_leaves_a_folder_that_loads(
    comparison: Any,
    reports: list[tuple[Any, Path]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    comparison.save(tmp_path, figures=False)
    assert (tmp_path / "report.html").is_file()

    def broken(comparison: Any, path: Path, **options: Any) -> Path:
        raise RuntimeError("report failed")

    stub = types.ModuleType("imacs.report.html")
    stub.write_report = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imacs.report.html", stub)
    with pytest.raises(RuntimeError, match="report failed"):
        comparison.save(tmp_path, figures=False)
    assert imacs.Comparison.load(tmp_path).summary() == comparison.summary()
    # the previous report would describe other tables than the ones beside it
    assert _files(tmp_path) == sorted(f"{name}.{fmt}" for name in TABLES for fmt in ("csv", "json"))


def test_unknown_formats_are_refused_before_anything_is_written(
    comparison: Any, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match=r"csv, json, parquet.*'xlsx'"):
        comparison.save(tmp_path / "out", formats=("csv", "xlsx"))
    assert not (tmp_path / "out").exists()


def test_parquet_without_an_engine_says_what_to_install_and_writes_nothing(
    comparison: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec
    engines = ("pyarrow", "fastparquet")
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in engines else find_spec(name)
    )
    with pytest.raises(InvalidInputError, match="pip install pyarrow"):
        comparison.save(tmp_path / "out", formats=("csv", "json", "parquet"))
    assert not (tmp_path / "out").exists()


def test_parquet_tables_are_written_and_load_back(comparison: Any, tmp_path: Path) -> None:
    comparison.save(tmp_path, report=False, figures=False, formats=("parquet",))
    assert _files(tmp_path) == sorted(f"{name}.parquet" for name in TABLES)
    loaded = imacs.Comparison.load(tmp_path)
    pd.testing.assert_frame_equal(loaded.regions, comparison.regions, check_dtype=False)
    assert loaded.summary() == comparison.summary()


# -- a folder that holds one whole output, whatever happens ------------------------------


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Another comparison, whose every table differs from ``comparison``'s."""
    _, test = split_indices()
    data = shortcut_digits(test[:40], shortcut=False, seed=5)
    store = tmp_path_factory.mktemp("other-store")
    settings = {**FAST, "n_clusters": 4}
    return imacs.compare(
        *planted_models(), data.images, data.labels, store=store, spatial=False, **settings
    )


@pytest.fixture(scope="module")
def previous(other: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved output with figures and a report, for the next save to replace."""
    return Path(other.save(tmp_path_factory.mktemp("previous"), progress=False))


@pytest.fixture(scope="module")
def new_source(comparison: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``comparison`` as JSON tables, for a child process to load and save."""
    folder = tmp_path_factory.mktemp("new-source")
    return Path(comparison.save(folder, report=False, figures=False, formats=("json",)))


@pytest.fixture(scope="module")
def new_output(new_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the child's save writes when it is not killed."""
    folder = tmp_path_factory.mktemp("new-output")
    return Path(imacs.Comparison.load(new_source).save(folder, figures=False, progress=False))


def _tables(folder: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name.split(".")[0] in TABLES
    }


def _listed(folder: Path) -> list[str]:
    return sorted(json.loads((folder / "comparison.json").read_text())["files"])


#: the hooks come from the kill suite's script (tests/comparison/killed_comparison.py)
KILL_HOOKS = Path(__file__).parents[1] / "comparison"
KILLED_SAVE = """
import os
import sys
from pathlib import Path

source, out, point, nth, hooks = sys.argv[1:]
out, nth = Path(out), int(nth)
sys.path.insert(0, hooks)
import pandas
from killed_comparison import kill_at

import imacs
import imacs.report.html

if point == "table":
    kill_at(nth, pandas.DataFrame, "to_json")
elif point == "report":
    kill_at(nth, imacs.report.html, "write_report")
else:
    into_out = lambda source, target, *args, **kwargs: Path(target).parent == out
    kill_at(nth, os, "replace", into_out, after=point == "renamed")
imacs.Comparison.load(source).save(out, figures=False, progress=False)
"""

#: (where the child dies, at which call, which output the folder holds afterwards);
#: renames into the folder are the commit (1st), then each file, comparison.json last
SAVE_KILLS = [
    ("table", 3, "previous"),
    ("report", 1, "previous"),
    ("rename", 1, "previous"),
    ("renamed", 1, "new"),
    ("renamed", 5, "new"),
    ("renamed", 10, "new"),
    ("renamed", 11, "new"),
]


@pytest.mark.parametrize(("point", "nth", "expected"), SAVE_KILLS)
def test_a_killed_save_leaves_the_previous_or_the_new_output_whole(
    point: str,
    nth: int,
    expected: str,
    previous: Path,
    new_source: Path,
    new_output: Path,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    script = tmp_path / "save.py"
    script.write_text(KILLED_SAVE)
    process = subprocess.run(
        [sys.executable, str(script), str(new_source), str(out), point, str(nth), str(KILL_HOOKS)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-3000:]

    loaded = imacs.Comparison.load(out)  # finishes a save killed after its commit
    whole = {"previous": previous, "new": new_output}[expected]
    assert _tables(out) == _tables(whole)
    assert _listed(out) == _listed(whole) == _files(out)
    assert loaded.summary() == imacs.Comparison.load(whole).summary()

    imacs.Comparison.load(new_source).save(out, figures=False, progress=False)
    assert _tables(out) == _tables(new_output)
    assert sorted(path.name for path in out.iterdir()) == sorted(
        path.name for path in new_output.iterdir()
    )


def test_a_second_save_replaces_the_first_and_keeps_other_files(
    comparison: Any, reports: list[tuple[Any, Path]], tmp_path: Path
) -> None:
    comparison.save(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    comparison.save(tmp_path, report=False, figures=False, formats=("json",))
    assert _files(tmp_path) == sorted([*(f"{name}.json" for name in TABLES), "notes.txt"])
    assert _listed(tmp_path) == sorted(f"{name}.json" for name in TABLES)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_folder_that_is_not_a_comparison_output_is_refused(
    comparison: Any, tmp_path: Path
) -> None:
    (tmp_path / "clusters.csv").write_text("the user's own table")
    with pytest.raises(InvalidInputError, match=r"'clusters.csv' and no comparison.json"):
        comparison.save(tmp_path, report=False, figures=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clusters.csv"]
    assert (tmp_path / "clusters.csv").read_text() == "the user's own table"


def test_a_file_in_place_of_the_folder_is_refused(comparison: Any, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        comparison.save(tmp_path / "out", report=False, figures=False)


def test_a_store_kept_inside_the_output_folder_is_left_alone(
    comparison: Any, tmp_path: Path
) -> None:
    store = Store(tmp_path / "store")  # where the demo keeps its store
    for _ in range(2):
        comparison.save(tmp_path, report=False, figures=False, formats=("json",))
    assert (tmp_path / "store" / MARKER).is_file()
    assert Store(store.root).root == store.root
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == ["store"]


def test_load_names_a_table_changed_after_the_save(comparison: Any, tmp_path: Path) -> None:
    comparison.save(tmp_path, report=False, figures=False, formats=("json",))
    path = tmp_path / "regions.json"
    data = bytearray(path.read_bytes())
    data[-10] = ord("7") if data[-10] != ord("7") else ord("8")  # same size, other content
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match=r"regions\.json.*does not match the digest"):
        imacs.Comparison.load(tmp_path)


def test_load_refuses_tables_of_one_run_beside_the_record_of_another(
    comparison: Any, other: Any, tmp_path: Path
) -> None:
    """What a save of the old layout left when killed between writing two tables."""
    comparison.save(tmp_path / "old", report=False, figures=False, formats=("json",))
    other.save(tmp_path / "new", report=False, figures=False, formats=("json",))
    shutil.copy(tmp_path / "new" / "clusters.json", tmp_path / "old" / "clusters.json")
    with pytest.raises(InvalidInputError, match=r"clusters\.json.*does not match"):
        imacs.Comparison.load(tmp_path / "old")


def test_an_unfinished_first_save_is_reported_and_cleared(comparison: Any, tmp_path: Path) -> None:
    (tmp_path / ".imacs-save").mkdir()
    (tmp_path / ".imacs-save" / "clusters.csv").write_text("half a table")
    with pytest.raises(InvalidInputError, match="a save into it did not finish"):
        imacs.Comparison.load(tmp_path)
    comparison.save(tmp_path, report=False, figures=False, formats=("json",))
    assert _files(tmp_path) == sorted(f"{name}.json" for name in TABLES)


def test_a_damaged_file_list_cannot_make_a_save_delete_elsewhere(
    comparison: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    comparison.save(out, report=False, figures=False, formats=("json",))
    (tmp_path / "keep.txt").write_text("not the output's")
    meta = json.loads((out / "comparison.json").read_text())
    meta["files"] += ["../keep.txt", str(tmp_path / "keep.txt"), "..", ""]
    (out / "comparison.json").write_text(json.dumps(meta))
    comparison.save(out, report=False, figures=False, formats=("csv",))
    assert (tmp_path / "keep.txt").read_text() == "not the output's"
    assert _files(out) == sorted(f"{name}.csv" for name in TABLES)


def test_a_comparison_json_that_is_not_json_is_named(comparison: Any, tmp_path: Path) -> None:
    comparison.save(tmp_path, report=False, figures=False, formats=("json",))
    (tmp_path / "comparison.json").write_text('{"format": 1, "summ')
    with pytest.raises(InvalidInputError, match=r"comparison\.json.*not readable JSON"):
        imacs.Comparison.load(tmp_path)


def test_a_full_disk_keeps_the_previous_output_and_says_so(
    comparison: Any, other: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other.save(tmp_path, report=False, figures=False, formats=("json",))
    before = _tables(tmp_path)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_json", full)
    with pytest.raises(OutputError, match=r"disk is full.*holds its previous output"):
        comparison.save(tmp_path, report=False, figures=False, formats=("json",))
    monkeypatch.undo()
    assert _tables(tmp_path) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*before, "comparison.json"])
    assert imacs.Comparison.load(tmp_path).summary() == other.summary()


def test_saves_into_one_folder_at_once_take_turns(
    comparison: Any, other: Any, tmp_path: Path
) -> None:
    errors: list[BaseException] = []

    def save(result: Any) -> None:
        try:
            for _ in range(3):
                result.save(tmp_path, report=False, figures=False, formats=("csv", "json"))
        except BaseException as exc:  # reported below, with the thread's own traceback
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(result,)) for result in (comparison, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = imacs.Comparison.load(tmp_path)
    assert loaded.summary() in (comparison.summary(), other.summary())
    assert _listed(tmp_path) == _files(tmp_path)


def test_a_full_or_read_only_disk_leaves_the_previous_output(
    comparison: Any, other: Any, small_disk: Any
) -> None:
    with small_disk("1m") as disk:
        out = disk / "out"
        other.save(out, report=False, figures=False, formats=("json",))
        before = sorted(path.name for path in out.iterdir())
        tables = _tables(out)
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
            while True:
                file.write(b"\0" * 4096)
        with pytest.raises(OutputError, match=r"disk is full.*holds its previous output"):
            comparison.save(out, report=False, figures=False, formats=("csv", "json"))
        assert sorted(path.name for path in out.iterdir()) == before
        assert _tables(out) == tables
        filler.unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        with pytest.raises(OutputError, match="read-only file system"):
            comparison.save(out, report=False, figures=False, formats=("json",))
        assert imacs.Comparison.load(out).summary() == other.summary()
