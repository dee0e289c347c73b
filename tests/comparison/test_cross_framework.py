"""A PyTorch model against a Keras model, end to end through ``imacs compare``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from imacs.cli import cli
from imacs.demo.data import PATCH, shortcut_digits, split_indices

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]
torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

CONFIG = """
[model_a]
path = "clean.pt"
preprocessing = {{ scale = {scale} }}
options = {{ trust = true }}  # TorchScript runs code while it loads; this file is ours

[model_b]
path = "shortcut.keras"
preprocessing = {{ scale = {scale} }}

[data]
path = "images"

[compare]
method_params = {{ n_steps = 16 }}
n_permutations = 200
seed = 0
"""


def write_images(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i:04d}.png")


def test_a_torch_model_against_a_keras_model_from_files(tmp_path: Path) -> None:
    from imacs.demo.models import train_keras_cnn, train_torch_cnn

    train, test = split_indices()
    clean = shortcut_digits(train, shortcut=False, seed=0)
    shortcut = shortcut_digits(train, shortcut=True, seed=0)
    model_a = train_torch_cnn(clean.images, clean.labels, seed=0, epochs=6)
    torch.jit.script(model_a).save(str(tmp_path / "clean.pt"))
    train_keras_cnn(shortcut.images, shortcut.labels, seed=0, epochs=6).save(
        tmp_path / "shortcut.keras"
    )
    held_out = shortcut_digits(test[:120], shortcut=False, seed=1)
    write_images(tmp_path / "images", held_out.images, held_out.labels)
    (tmp_path / "imacs.toml").write_text(CONFIG.format(scale=1 / 255))

    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--config",
            str(tmp_path / "imacs.toml"),
            "--out",
            str(tmp_path / "out"),
            "--store",
            str(tmp_path / "store"),
            "--format",
            "json",
            "--format",
            "parquet",
        ],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "tables written to" in result.output
    out = tmp_path / "out"
    assert f"report: {out / 'report.html'}" in result.output
    for name in ("report.html", "summary.png", "summary.svg", "clusters.parquet"):
        assert (out / name).is_file(), name
    assert not (out / "clusters.csv").exists()  # only the formats asked for
    meta = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert meta["models"]["a"]["framework"] != meta["models"]["b"]["framework"]
    assert meta["dataset"]["class_names"] == [str(k) for k in range(10)]
    clusters = json.loads((tmp_path / "out" / "clusters.json").read_text())
    regions = json.loads((tmp_path / "out" / "regions.json").read_text())
    top = clusters[0]
    in_top = [r for r in regions if r["cluster"] == top["cluster"]]
    # the top cluster's regions sit in the corner patch, and B (Keras, shortcut) leans on it
    assert np.mean([r["y1"] <= PATCH + 1 and r["x1"] <= PATCH + 1 for r in in_top]) > 0.8
    assert top["difference"] > 0 and top["significant"]


def test_compare_without_data_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.pt").write_bytes(b"")
    result = CliRunner().invoke(
        cli, ["compare", "--model-a", "x", "--model-b", "y", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--data" in result.output
