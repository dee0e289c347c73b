"""Options of `imacs compare` and `imacs attribute`: what reaches the API; errors in CLI terms.

Models are small NumPy functions put in place of ``imacs.load_model``, so these tests
need no framework; the factory test loads a real PyTorch state dict.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_runs import Loads, run
from PIL import Image

import imacs
from imacs.cli import main


class Stop(Exception):
    """Raised by the stand-in of ``imacs.compare`` once it has the arguments."""


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    folder = tmp_path / "digits"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        Image.fromarray(rng.integers(0, 16, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def compare_arguments(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Loads, dict[str, Any], str]:
    """What `imacs compare argv` passes to load_model and compare (which is not run)."""
    loads, seen = Loads(), {}

    def compare(model_a: Any, model_b: Any, data: Any, **settings: Any) -> None:
        seen.update(settings, model_a=model_a, model_b=model_b, data=data)
        raise Stop

    monkeypatch.setattr(imacs, "load_model", loads)
    monkeypatch.setattr(imacs, "compare", compare)
    with pytest.raises(Stop):
        main(["compare", *argv])
    return loads, seen, capsys.readouterr().err


def test_every_compare_option_reaches_the_api(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--model-a", "a.pt", "--model-b", "b.keras", "--data", str(digits), "--out", "o"]
    argv += ["--name-a", "resnet-2023", "--name-b", "resnet-2024"]
    argv += ["--scale", "1/255", "--mean", "0.5", "--std-b", "0.25,0.5,0.5"]
    argv += ["--method", "integrated-gradients", "--method-option", "n_steps=8"]
    argv += ["--segmenter-option", "sigma=2", "--featurizer", "color,shape"]
    argv += ["--featurizer-option", "color.bins=4", "--metric", "spearman,top-k-iou"]
    argv += ["--metric-option", "top-k-iou.fraction=0.2", "--clusterer", "agglomerative"]
    argv += ["--clusterer-option", "linkage=average", "--n-clusters", "3"]
    argv += ["--map-sign", "absolute", "--area-fraction", "0.2", "--causal", "none"]
    argv += ["--ignore-alert", "few-images", "--alpha", "0.1", "--n-permutations", "200"]
    loads, seen, _ = compare_arguments(argv, monkeypatch, capsys)

    a, b = loads.calls
    assert (a["path"], a["name"], b["name"]) == ("a.pt", "resnet-2023", "resnet-2024")
    assert a["preprocessing"] == imacs.Preprocessing(scale=1 / 255, mean=(0.5,))
    assert b["preprocessing"] == imacs.Preprocessing(
        scale=1 / 255, mean=(0.5,), std=(0.25, 0.5, 0.5)
    )
    assert seen["model_a"].describe()["name"] == "resnet-2023"
    assert seen["method_params"] == {"n_steps": 8}
    # an option adjusts the default segmenter's tuned parameters, it does not drop them
    assert seen["segmenter_params"]["sigma"] == 2 and "min_size" in seen["segmenter_params"]
    assert seen["featurizer"] == ["color", "shape"]
    assert seen["featurizer_params"] == {"color": {"bins": 4}}
    assert seen["metrics"] == ["spearman", "top-k-iou"]
    assert seen["metric_params"] == {"top-k-iou": {"fraction": 0.2}}
    assert (seen["clusterer"], seen["clusterer_params"]) == (
        "agglomerative",
        {"linkage": "average"},
    )
    assert seen["n_clusters"] == 3 and seen["map_sign"] == "absolute"
    assert seen["area_fraction"] == 0.2 and seen["top_k"] is None
    assert seen["ignore_alerts"] == ["few-images"] and seen["causal"] == "none"
    assert (seen["alpha"], seen["n_permutations"]) == (0.1, 200)


def test_the_config_file_sets_the_same_and_the_command_line_wins(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    config = tmp_path / "imacs.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [model_a]
            path = "a.pt"
            name = "from-the-file"
            preprocessing = {{ scale = 0.5, mean = [0.1] }}
            [model_b]
            path = "b.pt"
            name = "b-from-the-file"
            [data]
            path = "{digits.name}"
            [compare]
            featurizer_params = {{ color = {{ bins = 8 }}, texture = {{ radius = 2 }} }}
            metric_params = {{ top-k-iou = {{ fraction = 0.3 }} }}
            segmenter = "slic"
            segmenter_params = {{ n_segments = 20 }}
            """
        )
    )
    argv = ["--config", str(config), "--out", "o", "--name-a", "given", "--scale-a", "2"]
    argv += ["--featurizer-option", "color.bins=16"]
    loads, seen, _ = compare_arguments(argv, monkeypatch, capsys)
    a, b = loads.calls
    assert a["path"] == str(tmp_path / "a.pt")  # relative to the file
    assert (a["name"], b["name"]) == ("given", "b-from-the-file")
    assert a["preprocessing"] == imacs.Preprocessing(scale=2.0, mean=(0.1,))
    assert seen["featurizer_params"] == {"color": {"bins": 16}, "texture": {"radius": 2}}
    assert seen["metric_params"] == {"top-k-iou": {"fraction": 0.3}}
    assert seen["segmenter_params"] == {"n_segments": 20}  # not the default segmenter's


def test_quality_options_reach_the_api_and_win_over_the_config_file(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--model-a", "a.pt", "--model-b", "b.pt", "--data", str(digits), "--out", "o"]
    argv += ["--quality", "deletion", "--quality", "model-randomisation"]
    argv += ["--quality-option", "deletion.n_steps=16", "--quality-images", "24"]
    _, seen, _ = compare_arguments(argv, monkeypatch, capsys)
    assert seen["quality"] == ["deletion", "model-randomisation"]
    assert seen["quality_params"] == {"deletion": {"n_steps": 16}}
    assert seen["quality_images"] == 24

    config = tmp_path / "imacs.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [model_a]
            path = "a.pt"
            [model_b]
            path = "b.pt"
            [data]
            path = "{digits.name}"
            [compare]
            quality = ["insertion"]
            quality_params = {{ insertion = {{ n_steps = 4, score = "output" }} }}
            quality_images = 8
            """
        )
    )
    argv = ["--config", str(config), "--out", "o", "--quality-option", "insertion.n_steps=32"]
    _, seen, _ = compare_arguments(argv, monkeypatch, capsys)
    assert seen["quality"] == ["insertion"] and seen["quality_images"] == 8
    assert seen["quality_params"] == {"insertion": {"n_steps": 32, "score": "output"}}
    _, seen, _ = compare_arguments(
        ["--model-a", "a.pt", "--model-b", "b.pt", "--data", str(digits), "--out", "o"],
        monkeypatch,
        capsys,
    )
    assert "quality" not in seen and "quality_images" not in seen


def test_a_factory_beside_the_config_imports_without_pythonpath(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    torch = pytest.importorskip("torch")
    project = tmp_path / "project"
    project.mkdir()
    (project / "imacs_cli_test_net.py").write_text(
        "import torch\n\ndef build():\n    return torch.nn.Sequential(\n"
        "        torch.nn.Flatten(), torch.nn.Linear(64, 3)\n    )\n"
    )
    sys.path.insert(0, str(project))
    try:
        from imacs_cli_test_net import build  # type: ignore[import-not-found]

        torch.save(build().state_dict(), project / "net.pt")
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("imacs_cli_test_net", None)
    (project / "imacs.toml").write_text(
        textwrap.dedent(
            """
            [model_a]
            path = "net.pt"
            options = { factory = "imacs_cli_test_net:build" }
            [model_b]
            path = "net.pt"
            options = { factory = "imacs_cli_test_net:build" }
            """
        )
    )
    monkeypatch.chdir(tmp_path)  # not the project folder: the config's folder is what counts
    seen: dict[str, Any] = {}

    def compare(model_a: Any, model_b: Any, data: Any, **settings: Any) -> None:
        seen.update(model_a=model_a)
        raise Stop

    monkeypatch.setattr(imacs, "compare", compare)
    argv = ["compare", "--config", str(project / "imacs.toml"), "--data", str(digits)]
    with pytest.raises(Stop):
        main([*argv, "--out", "o"])
    assert seen["model_a"].name == "torch"
    assert str(project) not in sys.path  # importable while loading, not afterwards
    sys.modules.pop("imacs_cli_test_net", None)


def test_old_spellings_still_work_with_a_warning(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(imacs, "load_model", Loads())
    monkeypatch.chdir(tmp_path)
    Path("m.pt").write_bytes(b"not read: load_model is replaced")
    argv = ["attribute", "--model", "m.pt", "--images", str(digits), "--out", str(tmp_path / "o")]
    argv += ["--param", "absolute=true", "--method", "gradient", "--target", "1"]
    status, _, err = run(argv, capsys)
    assert status == 0, err
    for old, new in (("--images", "--data"), ("--param", "--method-option")):
        assert f"warning: {old} is deprecated and will be removed: use {new}" in err
    assert "--target is deprecated" in err
    manifest = json.loads((tmp_path / "o" / "attributions.json").read_text())
    assert manifest["settings"]["params"] == {"absolute": True}
    assert {record["target"] for record in manifest["images"]} == {1}


def mixed_sizes(folder: Path) -> list[str]:
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(folder / "small.png")
    return []


def unreadable(folder: Path) -> list[str]:
    (folder / "broken.png").write_bytes(b"not a png")
    return []


def grey_and_colour(folder: Path) -> list[str]:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "colour.png")
    return []


def nothing(folder: Path) -> list[str]:
    return []


@pytest.mark.parametrize(
    ("command", "change", "extra", "says", "not_said"),
    [
        ("attribute", nothing, ["--size", "0x8"], "--size", "size=("),
        ("attribute", nothing, ["--size", "big"], "HEIGHTxWIDTH", "size=("),
        ("attribute", mixed_sizes, [], "pass --size HEIGHTxWIDTH", "size=("),
        ("attribute", unreadable, [], "pass --skip-unreadable", "on_error"),
        ("attribute", grey_and_colour, [], "pass --convert-grayscale", "convert_grayscale"),
        ("attribute", nothing, ["--batch-size", "0"], "--batch-size", "batch_size"),
        ("attribute", nothing, ["--mean", "0.5,x"], "--mean", "ValueError"),
        ("attribute", nothing, ["--std", "0"], "--std", "std="),
        ("attribute", nothing, ["--targets", "label"], "--targets label", "targets="),
        ("compare", nothing, ["--featurizer-option", "bins=4"], "NAME.KEY=VALUE", "Traceback"),
        ("compare", nothing, ["--scale-b", "1/0"], "--scale-b", "ZeroDivision"),
        ("compare", nothing, ["--targets", "label"], "--targets label", "targets="),
    ],
)
def test_errors_name_the_command_line_options(
    command: str,
    change: Any,
    extra: list[str],
    says: str,
    not_said: str,
    digits: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    change(digits)
    monkeypatch.setattr(imacs, "load_model", Loads())
    monkeypatch.setenv("IMACS_STORE", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    Path("m.pt").write_bytes(b"not read: load_model is replaced")
    if command == "attribute":
        argv = ["attribute", "--model", "m.pt", "--method", "gradient"]
    else:
        argv = ["compare", "--model-a", "a.pt", "--model-b", "b.pt", "--causal", "none"]
    argv += ["--data", str(digits), "--out", str(tmp_path / "out"), *extra]
    status, _, err = run(argv, capsys)
    assert status in (1, 2), err
    assert says in err
    assert not_said not in err


def test_load_model_names_a_copy_of_an_adapter() -> None:
    from cli_runs import linear_model

    adapter = linear_model()
    named = imacs.load_model(adapter, name=" old-net ")
    assert named.describe()["name"] == "old-net" and named.model_name == "old-net"
    assert "name" not in adapter.describe()  # the caller's adapter is left as it was
    assert named.fingerprint() == adapter.fingerprint()  # a name does not change results
    with pytest.raises(imacs.errors.InvalidInputError, match="name to be a non-empty string"):
        imacs.load_model(adapter, name="")


@pytest.mark.parametrize(
    ("library", "cli_words", "gone"),
    [
        (
            "give its adapter preprocessing={'scale': 0.003922} (keeping any mean and std)",
            "pass --scale-a 0.003922 (model A) or --scale-b 0.003922 (model B)",
            "preprocessing=",
        ),
        ("ignore this with ignore_alerts=['input-range'].", "--ignore-alert input-range.", "["),
        (
            "raise n_steps (now 2), e.g. method_params={'n_steps': 32}",
            "--method-option n_steps=32",
            "{",
        ),
        (
            "pass class_mapping={class of A: class of B}; the best fit",
            "in the [compare] section of imacs.toml",
            "class_mapping={",
        ),
    ],
)
def test_alert_advice_reads_in_command_line_options(
    library: str, cli_words: str, gone: str
) -> None:
    # comparison.json and the report keep the library's words; stderr gets these
    from imacs.cli_terms import in_cli_terms

    printed = in_cli_terms(library, "compare")
    assert cli_words in printed
    assert gone not in printed
