"""`imacs evaluate`: a model, a folder, a method and measures in; a table and figures out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits

import imacs
from imacs.cli import cli

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

MODEL = Path(__file__).resolve().parents[2] / "examples" / "models" / "digits-cnn.pt"
PREPROCESSING = ["--scale", "0.0625", "--mean", "0.5", "--std", "0.5"]
TRUSTED = ["--model-option", "trust=yes"]  # the example is our own TorchScript file


@pytest.fixture
def digit_folder(tmp_path) -> Path:
    data = load_digits()
    for i in range(8):
        path = tmp_path / "digits" / str(data.target[1500 + i]) / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[1500 + i].astype(np.uint8)).save(path)
    return tmp_path / "digits"


def test_evaluate_writes_the_table_per_image_scores_and_curves(digit_folder, tmp_path) -> None:
    out = tmp_path / "out"
    args = ["evaluate", "--model", str(MODEL), "--data", str(digit_folder), "--out", str(out)]
    args += ["--method", "gradient", "--measure", "deletion", "--measure", "infidelity"]
    args += ["--measure-option", "deletion.n_steps=4", "--batch-size", "16"]
    args += [*PREPROCESSING, *TRUSTED]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "deletion:" in result.output and "infidelity:" in result.output

    table = pd.read_csv(out / "quality.csv")
    assert list(table["measure"]) == ["deletion", "infidelity"]
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    saved = json.loads((out / "quality.json").read_text())
    assert saved["measures"][0]["params"]["n_steps"] == 4
    assert len(pd.read_csv(out / "per_image.csv")) == 8
    assert (out / "curves.png").is_file()

    # the same numbers as the Python API gives
    folder = imacs.data.read_image_folder(digit_folder)
    model = imacs.load_model(
        MODEL, preprocessing=imacs.Preprocessing(scale=0.0625, mean=(0.5,), std=(0.5,)), trust=True
    )
    targets = model.predict(folder.images).argmax(axis=1)
    maps = imacs.attribute(model, folder.images, targets, method="gradient").maps
    deletion = imacs.get_component("measure", "deletion", n_steps=4)
    expected = deletion.evaluate(model, folder.images, targets, maps).mean
    assert table["mean"][0] == pytest.approx(expected, rel=1e-5)


def test_an_unknown_measure_is_named(digit_folder, tmp_path) -> None:
    args = ["evaluate", "--model", str(MODEL), "--data", str(digit_folder)]
    args += ["--out", str(tmp_path / "out"), "--measure", "delition", *PREPROCESSING, *TRUSTED]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "deletion" in str(result.exception)
