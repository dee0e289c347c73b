"""``imacs demo``: the first command a newcomer runs finds the shortcut it planted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from imacs.cli import cli
from imacs.comparison.result import TABLES, Comparison
from imacs.demo import run
from imacs.testing.planted import patch_share


@pytest.mark.torch
@pytest.mark.tensorflow
def test_the_demo_writes_the_tables_and_says_where_the_report_is(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, process = demo_run
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    for table in TABLES:
        assert (out / f"{table}.csv").is_file() and (out / f"{table}.json").is_file()
    assert (out / "report.html").is_file()
    assert f"report: {out / 'report.html'}" in process.stdout
    assert "Trained A, clean-torch" in process.stderr  # the steps are progress, on stderr
    assert "Trained A" not in process.stdout
    assert f"Comparison of {run.N_TEST} images" in process.stdout  # the summary


@pytest.mark.torch
@pytest.mark.tensorflow
def test_the_demo_finds_the_planted_patch_with_b_above_a(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, process = demo_run
    assert process.returncode == 0, process.stderr[-3000:]
    comparison = Comparison.load(out)
    assert comparison.store == str(out / "store")
    top = comparison.clusters.iloc[0]
    assert patch_share(comparison, int(top["cluster"])) > 0.5
    assert top["difference"] > 0 and bool(top["significant"])
    meta = json.loads((out / "comparison.json").read_text())
    a, b = meta["models"]["a"], meta["models"]["b"]
    assert (a["framework"], a["name"]) == ("pytorch", "clean-torch")
    assert (b["framework"], b["name"]) == ("tensorflow", "shortcut-keras")
    assert meta["dataset"]["class_names"] == [str(k) for k in range(10)]


def test_the_demo_says_which_plugin_to_install_when_one_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        run.FRAMEWORKS,
        "torch",
        (("imacs_demo_absent_framework",), "PyTorch", "pip install imacs-torch"),
    )
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code != 0
    assert isinstance(result.exception, run.MissingFrameworkError)
    message = str(result.exception)
    assert "PyTorch with its imacs plugin is not installed" in message
    assert "pip install imacs-torch" in message
    assert not (tmp_path / "demo").exists()


def test_make_demo_runs_imacs_demo() -> None:
    # the README's first command is `make demo`; the fixture above runs what it runs
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    recipe = makefile.split("\ndemo: setup\n", 1)[1].split("\n\n", 1)[0]
    assert recipe.strip() == "$(BIN)/imacs demo --out $(DEMO_OUT)"
