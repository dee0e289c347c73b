"""``imacs.compare(..., quality=[...])``: both models' maps scored by quality measures.

Two copies of the demo CNN, trained for one epoch on 200 digits, compared on 16 held-out
digits of 32x32. The randomisation test separates the methods on them as on the trained
demo CNN (docs/quality.md): gradient x input keeps a mean absolute Spearman of about
0.5 with the fully randomised network's maps, plain gradients about 0.05, so the
``sanity-check`` alert, at its own bar of 0.3, fires for the first and not the second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import imacs
from imacs.comparison.alerts import SANITY_SPEARMAN, find_alerts
from imacs.comparison.quality import QUALITY_COLUMNS
from imacs.comparison.result import Comparison
from imacs.errors import InvalidInputError, MissingCapabilityError, UnknownComponentError

torch = pytest.importorskip("torch")

N_IMAGES, SAMPLE = 16, 12
QUALITY = {
    "quality": ["deletion", "model-randomisation"],
    "quality_params": {"deletion": {"n_steps": 8}},
    "quality_images": SAMPLE,
}
FAST = {
    "causal": None,
    "spatial": False,
    "n_clusters": 3,
    "n_permutations": 200,
    "progress": False,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    # such small networks run far slower on threads that wait for a busy CPU's cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def models() -> tuple[Any, Any]:
    from imacs.demo.data import shortcut_digits
    from imacs.demo.models import train_torch_cnn

    train = shortcut_digits(slice(0, 200), shortcut=False, seed=0)
    return tuple(  # type: ignore[return-value]
        imacs.load_model(train_torch_cnn(train.images, train.labels, seed=s, epochs=1), name=n)
        for s, n in ((0, "first"), (1, "second"))
    )


@pytest.fixture(scope="module")
def data() -> Any:
    from imacs.demo.data import shortcut_digits

    return shortcut_digits(slice(600, 600 + N_IMAGES), shortcut=False, seed=1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quality-store")


def _compare(models: Any, data: Any, store: Path, method: str, **settings: Any) -> Any:
    return imacs.compare(
        *models, data.images, data.labels, method=method, store=store, **(FAST | QUALITY | settings)
    )


@pytest.fixture(scope="module")
def times_input(models: Any, data: Any, store: Path) -> Any:
    return _compare(models, data, store, "gradient-times-input")


@pytest.fixture(scope="module")
def gradient(models: Any, data: Any, store: Path) -> Any:
    return _compare(models, data, store, "gradient")


def test_the_table_has_a_row_per_model_and_measure_with_intervals(times_input: Any) -> None:
    table = times_input.quality
    assert list(table.columns) == list(QUALITY_COLUMNS)
    assert list(zip(table["side"], table["measure"], strict=True)) == [
        ("a", "deletion"),
        ("a", "model-randomisation"),
        ("b", "deletion"),
        ("b", "model-randomisation"),
    ]
    assert table["model"].tolist() == ["first", "first", "second", "second"]
    assert (table["n_images"] == SAMPLE).all() and np.allclose(table["level"], 0.95)
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    assert not table["higher_is_better"].any()  # both measures read lower as better
    randomisation = table[table["measure"] == "model-randomisation"]
    assert set(randomisation["mode"]) == {"cascading"}
    assert set(randomisation["similarity"]) == {"spearman_abs"}
    assert table.loc[table["measure"] == "deletion", "mode"].isna().all()
    # one sample, drawn under the seed, for both models
    assert len(table.attrs["images"]) == SAMPLE == len(set(table.attrs["images"]))
    assert [m["name"] for m in table.attrs["measures"]] == QUALITY["quality"]
    assert times_input.settings["quality_images"] == SAMPLE
    assert "quality" in times_input.timings


def test_the_same_seed_gives_the_same_table_and_another_seed_another_sample(
    times_input: Any, models: Any, data: Any, store: Path
) -> None:
    again = _compare(models, data, store, "gradient-times-input")
    pd.testing.assert_frame_equal(again.quality, times_input.quality)
    assert again.quality.attrs["images"] == times_input.quality.attrs["images"]
    reseeded = _compare(models, data, store, "gradient-times-input", seed=5)
    assert reseeded.quality.attrs["images"] != times_input.quality.attrs["images"]


def test_the_sanity_check_fires_for_gradient_times_input_and_not_for_gradients(
    times_input: Any, gradient: Any
) -> None:
    def similarity(comparison: Any) -> list[float]:
        table = comparison.quality
        return table.loc[table["measure"] == "model-randomisation", "mean"].tolist()

    assert min(similarity(times_input)) > SANITY_SPEARMAN > max(similarity(gradient))
    found = {alert.code: alert for alert in times_input.alerts}
    assert "sanity-check" in found
    message = found["sanity-check"].message
    assert "the gradient-times-input maps of first" in message and "second" in message
    assert set(found["sanity-check"].details["similarity"]) == {"a", "b"}
    assert "sanity-check" not in {alert.code for alert in gradient.alerts}


def test_quality_is_saved_under_the_digests_and_loaded_back(
    times_input: Any, tmp_path: Path
) -> None:
    out = times_input.save(tmp_path / "out", report=False, figures=False)
    meta = json.loads((out / "comparison.json").read_text())
    for name in ("quality.csv", "quality.json"):
        assert name in meta["files"] and name in meta["sha256"]
    assert (
        pd.read_csv(out / "quality.csv")["measure"].tolist()
        == times_input.quality["measure"].tolist()
    )
    loaded = Comparison.load(out)
    pd.testing.assert_frame_equal(loaded.quality, times_input.quality)
    assert loaded.quality.attrs == times_input.quality.attrs
    assert "sanity-check" in {alert.code for alert in find_alerts(loaded)}

    payload = json.loads((out / "quality.json").read_text())
    payload["rows"][1]["mean"] = 0.01
    (out / "quality.json").write_text(json.dumps(payload))
    with pytest.raises(InvalidInputError, match=r"quality\.json"):
        Comparison.load(out)


def test_a_comparison_without_quality_has_none_and_writes_no_file(
    gradient: Any, models: Any, data: Any, store: Path, tmp_path: Path
) -> None:
    plain = _compare(models, data, store, "gradient", quality=None, quality_params=None)
    assert plain.quality is None and plain.settings["quality"] == []
    out = plain.save(tmp_path / "plain", report=False, figures=False)
    assert not (out / "quality.csv").exists() and Comparison.load(out).quality is None


def test_wrong_quality_settings_fail_before_the_comparison_runs(
    models: Any, data: Any, tmp_path: Path
) -> None:
    from imacs.testing.planted import planted_models

    def run(*pair: Any, **settings: Any) -> Any:
        return imacs.compare(*pair, data.images, data.labels, store=tmp_path, **FAST | settings)

    with pytest.raises(InvalidInputError, match="quality_params has parameters for 'roda-morf'"):
        run(*models, quality=["deletion"], quality_params={"roda-morf": {}})
    with pytest.raises(UnknownComponentError, match="no quality measure named 'delition'"):
        run(*models, quality=["delition"])
    with pytest.raises(InvalidInputError, match="quality_images"):
        run(*models, quality=["deletion"], quality_images=0)
    # NumPy functions cannot be randomised: said before the comparison starts
    with pytest.raises(MissingCapabilityError, match="'model-randomisation' on model A"):
        run(*planted_models(), quality=["model-randomisation"])


def test_the_sample_is_drawn_under_the_seed_among_the_images_that_fit() -> None:
    from imacs.comparison.quality import quality_sample

    sample = quality_sample(100, 10, seed=0, fits=lambda i: i % 2 == 0)
    assert sample == sorted(sample) and len(set(sample)) == 10
    assert all(i % 2 == 0 for i in sample)
    assert sample == quality_sample(100, 10, seed=0, fits=lambda i: i % 2 == 0)
    assert sample != quality_sample(100, 10, seed=1, fits=lambda i: i % 2 == 0)
    assert quality_sample(7, 32, seed=0) == list(range(7))
