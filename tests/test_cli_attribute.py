"""`imacs attribute` on a folder of images, with the shipped TorchScript example model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits

import imacs
from imacs.cli import cli

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

MODEL = Path(__file__).resolve().parents[1] / "examples" / "models" / "digits-cnn.pt"
PREPROCESSING = ["--scale", "0.0625", "--mean", "0.5", "--std", "0.5"]
# the example is TorchScript, which runs code from the file while it loads; it is ours
TRUSTED = ["--model-option", "trust=yes"]


@pytest.fixture
def digit_folder(tmp_path) -> Path:
    data = load_digits()
    for i in range(6):
        path = tmp_path / "digits" / str(data.target[1500 + i]) / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[1500 + i].astype(np.uint8)).save(path)
    return tmp_path / "digits"


def test_attribute_writes_maps_overlays_and_manifest(digit_folder, tmp_path) -> None:
    out = tmp_path / "out"
    args = ["attribute", "--model", str(MODEL), "--data", str(digit_folder), "--out", str(out)]
    args += ["--method", "gradient", "--batch-size", "4", *PREPROCESSING, *TRUSTED]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "6 images attributed, 0 reused" in result.output

    manifest = json.loads((out / "attributions.json").read_text())
    assert manifest["settings"]["method"] == "gradient"
    assert len(manifest["images"]) == 6
    assert len(list((out / "overlays").glob("*.png"))) == 6

    folder = imacs.data.read_image_folder(digit_folder)
    model = imacs.load_model(
        MODEL, preprocessing=imacs.Preprocessing(scale=0.0625, mean=(0.5,), std=(0.5,)), trust=True
    )
    predicted = model.predict(folder.images).argmax(axis=1)
    expected = imacs.attribute(model, folder.images, predicted, method="gradient").maps
    for k, record in enumerate(manifest["images"]):
        assert record["target"] == predicted[k]
        stem = record["image"].removesuffix(".png").replace("/", "__")
        assert record["map"] == f"maps/{stem}.npy"
        saved = np.load(out / record["map"])
        np.testing.assert_allclose(saved, expected[k], rtol=1e-5, atol=1e-7)

    rerun = CliRunner().invoke(cli, args)
    assert "0 images attributed, 6 reused" in rerun.output


def test_label_target_needs_class_folders(tmp_path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(flat / "a.png")
    args = ["attribute", "--model", str(MODEL), "--data", str(flat), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(cli, [*args, *TRUSTED, "--targets", "label"])
    assert result.exit_code != 0
    assert "one sub-folder per class" in str(result.exception)
