"""``Comparison.save``: tables, figures and the report in one folder, and loading it back."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.errors import InvalidInputError
from imacs.testing.planted import planted_models

# a fixed k skips the search over k, which the comparison tests cover
FAST = {"method_params": {"n_steps": 8}, "n_bootstrap": 200, "n_clusters": 8, "progress": False}
TABLES = ("clusters", "regions", "images", "classes")


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Any:
    _, test = split_indices()
    data = shortcut_digits(test[:96], shortcut=False, seed=7)
    store = tmp_path_factory.mktemp("store")
    return imacs.compare(*planted_models(), data.images, data.labels, store=store, **FAST)


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
    assert reports == [(comparison, tmp_path / "report.html")]
    meta = json.loads((tmp_path / "comparison.json").read_text())
    assert sorted(meta["files"]) == _files(tmp_path)
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
    comparison: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(comparison: Any, path: Path, **options: Any) -> Path:
        raise RuntimeError("report failed")

    stub = types.ModuleType("imacs.report.html")
    stub.write_report = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imacs.report.html", stub)
    with pytest.raises(RuntimeError, match="report failed"):
        comparison.save(tmp_path, figures=False)
    assert imacs.Comparison.load(tmp_path).summary() == comparison.summary()


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
