"""What the commands write where: results on stdout, progress and logs on stderr.

Most tests run the CLI in this process with NumPy models put in place of
``imacs.load_model``; one runs `imacs attribute` on the Keras example model in a fresh
process whose stderr is a pipe, as in CI, to check that TensorFlow's native log lines
stay out of it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runs import Loads, run
from PIL import Image

import imacs

KERAS_MODEL = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits-cnn.keras"
#: a line of TensorFlow's C++ logging: "I0000 00:00:1796537409.350495   24148 port.cc:153] ..."
NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|absl::InitializeLog")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for i in range(12):
        path = folder / ("odd" if i % 2 else "even") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 16, (8, 8), dtype=np.uint8)).save(path)
    return folder


@pytest.fixture
def fake_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Loads:
    loads = Loads()
    monkeypatch.setattr(imacs, "load_model", loads)
    monkeypatch.chdir(tmp_path)
    Path("m.pt").write_bytes(b"not read: load_model is replaced")
    return loads


def compare_argv(images: Path, tmp_path: Path) -> list[str]:
    argv = ["compare", "--model-a", "a.pt", "--model-b", "b.pt", "--data", str(images)]
    argv += ["--out", str(tmp_path / "out"), "--store", str(tmp_path / "store")]
    argv += ["--method", "gradient", "--segmenter", "grid", "--segmenter-option", "rows=2"]
    argv += ["--segmenter-option", "cols=2", "--causal", "none", "--no-report", "--no-figures"]
    return [*argv, "--name-a", "old-net", "--name-b", "new-net"]


def test_compare_quiet_prints_only_the_result_path(
    images: Path, tmp_path: Path, fake_models: Loads, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run([*compare_argv(images, tmp_path), "--quiet"], capsys)
    assert status == 0, err
    assert out == f"{tmp_path / 'out'}\n"
    # no progress, no information: the alerts, warnings, are what stderr holds
    assert all(line.startswith(("warning [", "error [")) for line in err.splitlines())
    saved = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert saved["models"]["a"]["name"] == "old-net"
    assert saved["models"]["b"]["name"] == "new-net"


def test_compare_off_a_terminal_writes_progress_lines_and_says_reused(
    images: Path, tmp_path: Path, fake_models: Loads, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(compare_argv(images, tmp_path), capsys)
    assert status == 0, err
    for stage in ("reading images", "predicting (A)", "attributing (B)", "clustering"):
        assert f"{stage}: started" in err and f"{stage}: done" in err
    assert "\x1b[" not in err  # no terminal control codes in a log
    assert "started" not in out and "warning" not in out
    assert "old-net" in out  # the result: summary and headline name the models

    status, out, err = run(compare_argv(images, tmp_path), capsys)
    assert status == 0, err
    for stage in ("predicting (A)", "predicting (B)", "attributing (A)", "attributing (B)"):
        assert f"{stage}: reused from the store" in err
    assert "0/0" not in err


def test_attribute_quiet_and_plain_progress(
    images: Path, tmp_path: Path, fake_models: Loads, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["attribute", "--model", "m.pt", "--data", str(images), "--method", "gradient"]
    argv += ["--out", str(tmp_path / "maps")]
    status, out, err = run([*argv, "-q"], capsys)
    assert (status, out, err) == (0, f"{tmp_path / 'maps'}\n", "")
    status, out, err = run(argv, capsys)
    assert status == 0
    assert out.startswith("0 images attributed, 12 reused")
    assert "attributing (gradient): reused from the store" in err


def test_manifest_holds_typed_json_and_plain_file_names(
    images: Path, tmp_path: Path, fake_models: Loads, capsys: pytest.CaptureFixture[str]
) -> None:
    (images / "even" / "0.jpg").write_bytes((images / "even" / "0.png").read_bytes())
    out = tmp_path / "maps"
    argv = ["attribute", "--model", "m.pt", "--data", str(images), "--out", str(out)]
    argv += ["--method-option", "n_steps=4", "--size", "8x8", "--name", "old-net"]
    status, _, err = run(argv, capsys)
    assert status == 0, err
    manifest = json.loads((out / "attributions.json").read_text())
    params = manifest["settings"]["params"]
    assert params["n_steps"] == 4 and params["baselines"] == "black"
    assert params["pixel_range"] == [0.0, 1.0] and params["seed"] == 0
    assert manifest["settings"]["model"]["name"] == "old-net"
    records = {record["image"]: record for record in manifest["images"]}
    assert records["odd/1.png"]["map"] == "maps/odd__1.npy"
    assert records["odd/1.png"]["overlay"] == "overlays/odd__1.png"
    # two files that differ only by suffix keep it, so neither overwrites the other
    assert records["even/0.png"]["map"] == "maps/even__0_png.npy"
    assert records["even/0.jpg"]["map"] == "maps/even__0_jpg.npy"
    for record in records.values():
        assert (out / record["map"]).is_file() and (out / record["overlay"]).is_file()
    assert not list(out.rglob("*.png.*"))


def test_convert_grayscale_gives_an_rgb_model_three_channels(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(imacs, "load_model", Loads(channels=3))
    monkeypatch.chdir(tmp_path)
    Path("m.pt").write_bytes(b"not read")
    argv = ["attribute", "--model", "m.pt", "--data", str(images), "--method", "gradient"]
    argv += ["--out", str(tmp_path / "maps")]
    status, _, err = run(argv, capsys)
    assert status == 1 and "pass --convert-grayscale" in err
    status, _, err = run([*argv, "--convert-grayscale"], capsys)
    assert status == 0, err
    assert np.load(tmp_path / "maps" / "maps" / "odd__1.npy").shape == (8, 8, 3)


def test_skipped_files_are_listed(
    images: Path, tmp_path: Path, fake_models: Loads, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(7):
        (images / f"notes{i}.txt").write_text("not an image")
    (images / ".DS_Store").write_bytes(b"")  # hidden files are not worth a warning
    argv = ["attribute", "--model", "m.pt", "--data", str(images), "--method", "gradient"]
    argv += ["--out", str(tmp_path / "maps")]
    status, _, err = run(argv, capsys)
    assert status == 0
    assert "warning: skipped 7 file(s)" in err
    assert "notes0.txt, notes1.txt, notes2.txt, notes3.txt, notes4.txt and 2 more" in err
    assert ".DS_Store" not in err
    status, _, err = run([*argv, "--verbose"], capsys)
    assert "notes6.txt" in err


def test_quiet_and_verbose_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["store", "info", "-q", "-v"], capsys)
    assert status == 2 and "--quiet or --verbose" in err


@pytest.mark.tensorflow
def test_attribute_on_a_keras_model_keeps_tensorflow_quiet(images: Path, tmp_path: Path) -> None:
    pytest.importorskip("keras")
    argv = [sys.executable, "-m", "imacs.cli", "attribute", "--model", str(KERAS_MODEL)]
    argv += ["--data", str(images / "odd"), "--out", str(tmp_path / "maps")]
    argv += ["--method", "gradient", "--scale", "1/16"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    native = [line for line in done.stderr.splitlines() if NATIVE_LOG_LINE.search(line)]
    assert native == []
    assert "tensorflow" not in done.stderr.lower().replace("(tensorflow adapter)", "")
    # no terminal: progress as lines on stderr, and stdout holds the result alone
    assert "attributing (gradient): done, 6/6" in done.stderr
    assert done.stdout.splitlines() == [
        f"6 images attributed, 0 reused from an earlier run; manifest: "
        f"{tmp_path / 'maps' / 'attributions.json'}"
    ]
