"""Every imacs error and OSError ends the CLI in one line on stderr and exit status 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imacs
from imacs.cli import main
from imacs.errors import InvalidInputError, StoreError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.png")
    return images


def attribute_args(folder: Path, tmp_path: Path) -> list[str]:
    model = tmp_path / "model.pt"
    model.write_bytes(b"not read: load_model is replaced in these tests")
    return ["attribute", "--model", str(model), "--data", str(folder), "--out", str(tmp_path)]


def load_fails_with(error: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_load(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(imacs, "load_model", failing_load)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    return int(stop.value.code or 0), out, err


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            PermissionError(13, "Permission denied", "/data/model.pt"),
            "error: Permission denied: '/data/model.pt'",
        ),
        (OSError(28, "No space left on device"), "error: No space left on device"),
        (
            InvalidInputError("expected images of shape (N, H, W, C);\n   got (3, 8)"),
            "error: expected images of shape (N, H, W, C); got (3, 8)",
        ),
        (StoreError("the store '/s' is read-only"), "error: the store '/s' is read-only"),
    ],
)
def test_errors_end_in_one_line_and_status_1(
    error: Exception,
    expected: str,
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load_fails_with(error, monkeypatch)
    monkeypatch.delenv("IMACS_DEBUG", raising=False)
    status, out, err = run(attribute_args(folder, tmp_path), capsys)
    assert status == 1
    assert err.strip() == expected
    assert "Traceback" not in out + err


def test_debug_flag_and_variable_show_the_traceback(
    folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    load_fails_with(OSError(28, "No space left on device"), monkeypatch)
    monkeypatch.delenv("IMACS_DEBUG", raising=False)
    with pytest.raises(OSError, match="No space left"):
        main(["--debug", *attribute_args(folder, tmp_path)])
    monkeypatch.setenv("IMACS_DEBUG", "1")
    with pytest.raises(OSError, match="No space left"):
        main(attribute_args(folder, tmp_path))
    monkeypatch.setenv("IMACS_DEBUG", "0")
    status, _, err = run(attribute_args(folder, tmp_path), capsys)
    assert status == 1 and err.startswith("error: No space left")


def test_usage_errors_keep_clicks_message(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["attribute", "--no-such-flag"], capsys)
    assert status == 2
    assert "No such option '--no-such-flag'" in err


@pytest.mark.torch
def test_an_untrusted_model_file_says_which_option_trusts_it(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    scripted = tmp_path / "scripted.pt"
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))).save(
        str(scripted)
    )
    out = tmp_path / "out"
    status, _, err = run(
        ["attribute", "--model", str(scripted), "--data", str(folder), "--out", str(out)], capsys
    )
    assert status == 1
    assert "TorchScript archive" in err and "--model-option trust=true" in err
    assert "--model-a-option" not in err

    compare = ["compare", "--model-a", str(scripted), "--model-b", str(scripted)]
    status, _, err = run([*compare, "--data", str(folder), "--out", str(out)], capsys)
    assert status == 1
    assert "--model-a-option trust=true" in err and "[model_a]" in err
    assert not out.exists()  # refused before anything was written
