"""``imacs store``: info, verify, prune and clear on a store folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from imacs.cli import cli, main
from imacs.store import MARKER, Store

KEYS = [f"{i:02x}" * 32 for i in range(6)]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store with four maps and two segmentations."""
    opened = Store(tmp_path / "store")
    for key in KEYS[:4]:
        opened.save("attributions", key, np.ones((8, 8, 3), np.float32))
    for key in KEYS[4:]:
        opened.save("segments", key, np.zeros((8, 8), np.int32))
    return opened


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["store", *args], input=input)


def damage(store: Store, stage: str, key: str) -> Path:
    path = store._path(stage, key)
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    return path


def test_info_counts_the_results_of_each_stage(store: Store) -> None:
    result = run("info", "--store", str(store.root), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["stages"]["attributions"]["results"] == 4
    assert info["stages"]["segments"]["results"] == 2
    assert info["total"]["results"] == 6
    assert info["total"]["bytes"] == sum(r.size for r in store.results())
    table = run("info", "--store", str(store.root))
    assert table.exit_code == 0 and "attributions" in table.output and "total" in table.output


def test_the_default_store_is_imacs_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMACS_STORE", str(store.root))
    assert json.loads(run("info", "--json").output)["total"]["results"] == 6


def test_a_folder_without_a_store_is_one_clear_line_and_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["store", "info", "--store", str(tmp_path / "nothing")])
    assert exited.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: there is no imacs store at") and "\n" not in error
    assert not (tmp_path / "nothing").exists()


def test_verify_passes_an_intact_store(store: Store) -> None:
    result = run("verify", "--store", str(store.root))
    assert result.exit_code == 0, result.output
    assert "checked 6 results: 0 damaged" in result.output


def test_verify_reports_damage_with_status_1_and_fix_removes_it(store: Store) -> None:
    path = damage(store, "segments", KEYS[5])
    result = run("verify", "--store", str(store.root))
    assert result.exit_code == 1
    assert f"damaged: {path}" in result.output and "1 damaged" in result.output
    assert path.exists(), "verify without --fix changes nothing"
    with pytest.raises(SystemExit) as exited:  # the installed `imacs` command, too
        main(["store", "verify", "--store", str(store.root)])
    assert exited.value.code == 1
    fixed = run("verify", "--store", str(store.root), "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert not path.exists()
    assert run("verify", "--store", str(store.root)).exit_code == 0
    assert store.count("attributions") == 4


def test_verify_fix_removes_temporary_files_of_killed_writers(store: Store) -> None:
    stale = store._path("segments", KEYS[4]).parent / f".{KEYS[4]}.0123456789abcdef.tmp"
    fresh = stale.with_name(f".{KEYS[4]}.fedcba9876543210.tmp")
    stale.write_bytes(b"half a result")
    fresh.write_bytes(b"a writer still at work")
    an_hour_ago = time.time() - 2 * 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    result = run("verify", "--store", str(store.root), "--fix")
    assert result.exit_code == 0 and "1 temporary" in result.output
    assert not stale.exists() and fresh.exists()


def test_prune_removes_results_written_before_a_date(store: Store) -> None:
    old = [store._path("attributions", key) for key in KEYS[:2]]
    long_ago = time.mktime((2020, 1, 1, 0, 0, 0, 0, 0, -1))
    for path in old:
        os.utime(path, (long_ago, long_ago))
    result = run("prune", "--store", str(store.root), "--older-than", "2021-06-01", "--yes")
    assert result.exit_code == 0, result.output
    assert "removed 2 results" in result.output
    assert not any(path.exists() for path in old)
    assert store.count("attributions") == 2 and store.count("segments") == 2
    assert "no results" in run("prune", "--store", str(store.root), "--older-than", "30d").output


def test_prune_asks_first_and_keeps_everything_when_refused(store: Store) -> None:
    result = run("prune", "--store", str(store.root), "--older-than", "0s", input="n\n")
    assert result.exit_code == 1 and "remove 6 results" in result.output
    assert sum(1 for _ in store.results()) == 6


def test_prune_refuses_a_date_it_cannot_read(store: Store) -> None:
    result = run("prune", "--store", str(store.root), "--older-than", "last tuesday")
    assert result.exit_code == 2 and "2024-05-31" in result.output


def test_clear_asks_then_empties_the_store_and_keeps_it_usable(store: Store) -> None:
    refused = run("clear", "--store", str(store.root), input="n\n")
    assert refused.exit_code == 1 and store.count("attributions") == 4
    result = run("clear", "--store", str(store.root), "--yes")
    assert result.exit_code == 0 and "removed 6 results" in result.output
    assert sorted(p.name for p in store.root.iterdir()) == [MARKER]
    store.save("attributions", KEYS[0], np.ones(3))  # a run in flight goes on writing
    np.testing.assert_array_equal(Store(store.root).load("attributions", KEYS[0]), np.ones(3))
