"""``imacs.compare`` end to end on NumPy models with a planted shortcut (no framework)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import imacs
from imacs.adapters.function import FunctionAdapter
from imacs.comparison.executor import InProcessExecutor
from imacs.comparison.tasks import AttributionWork
from imacs.demo.data import shortcut_digits, split_indices
from imacs.errors import InvalidInputError, StoreError
from imacs.store import MARKER
from imacs.testing.planted import patch_share, planted_models

N_IMAGES = 96
FAST = {"method_params": {"n_steps": 8}, "n_permutations": 200, "progress": False}


@pytest.fixture(scope="module")
def data() -> Any:
    _, test = split_indices()
    return shortcut_digits(test[:N_IMAGES], shortcut=False, seed=7)


@pytest.fixture(scope="module")
def models() -> tuple[FunctionAdapter, FunctionAdapter]:
    return planted_models()


@pytest.fixture(scope="module")
def comparison(data: Any, models: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    store = tmp_path_factory.mktemp("store")
    return imacs.compare(*models, data.images, data.labels, store=store, **FAST)


def test_the_planted_shortcut_is_the_top_cluster(comparison: Any) -> None:
    top = comparison.clusters.iloc[0]
    assert top["rank"] == 1
    assert patch_share(comparison, int(top["cluster"])) > 0.9
    assert top["difference"] > 0 and top["significant"]
    assert top["ci_low"] > 0
    others = comparison.clusters.iloc[1:]
    non_patch = [c for c in others["cluster"] if patch_share(comparison, int(c)) < 0.5]
    assert non_patch, "expected clusters of digit and background regions too"


def test_tables_have_what_the_report_needs(comparison: Any, data: Any) -> None:
    images, regions, clusters = comparison.images, comparison.regions, comparison.clusters
    assert len(images) == N_IMAGES
    assert images["label"].tolist() == data.labels.tolist()
    for column in ("spearman", "top-k-iou", "ssim", "cosine", "agree", "pred_a", "pred_b"):
        assert column in images
    assert set(regions["selected_by"]) <= {"a", "b", "both"}
    assert (regions.groupby("image").size() >= 1).all()
    assert clusters["n_regions"].sum() == len(regions)
    assert clusters["rank"].tolist() == list(range(1, len(clusters) + 1))
    assert not comparison.classes.empty
    np.testing.assert_array_equal(comparison.image(3), data.images[3])
    assert comparison.attribution(3, "b").shape == data.images[3].shape
    accuracy = (images["pred_a"] == images["label"]).mean()
    assert comparison.summary()["accuracy_a"] == pytest.approx(accuracy)
    assert "cluster" in repr(comparison)


def test_save_writes_every_table_as_csv_and_json_and_loads_back(
    comparison: Any, tmp_path: Path
) -> None:
    comparison.save(tmp_path)
    for name in ("clusters", "regions", "images", "classes"):
        assert (tmp_path / f"{name}.csv").is_file()
        records = json.loads((tmp_path / f"{name}.json").read_text())
        assert len(records) == len(getattr(comparison, name))
    meta = json.loads((tmp_path / "comparison.json").read_text())
    assert meta["settings"]["method"]["name"] == "integrated-gradients"
    loaded = imacs.Comparison.load(tmp_path)
    pd.testing.assert_frame_equal(
        loaded.clusters, comparison.clusters, check_dtype=False, check_exact=False
    )
    assert loaded.summary() == comparison.summary()


def test_a_model_compared_with_itself_shows_no_difference(
    data: Any, models: Any, tmp_path: Path
) -> None:
    result = imacs.compare(models[1], models[1], data.images, data.labels, store=tmp_path, **FAST)
    assert (result.regions["difference"] == 0).all()
    assert (result.clusters["difference"] == 0).all()
    assert not result.clusters["significant"].any()
    assert (result.clusters["p_value"] == 1).all()


def test_same_seed_same_tables_and_shared_models_reuse_attributions(
    data: Any, models: Any, comparison: Any, tmp_path: Path
) -> None:
    again = imacs.compare(*models, data.images, data.labels, store=tmp_path, **FAST)
    pd.testing.assert_frame_equal(again.clusters, comparison.clusters)
    pd.testing.assert_frame_equal(again.regions, comparison.regions)
    assert again.work == {"attributed_a": N_IMAGES, "attributed_b": N_IMAGES}
    # a second comparison sharing model A finds A's maps in the store
    model_a, _ = models
    other = imacs.compare(model_a, model_a, data.images, data.labels, store=tmp_path, **FAST)
    assert other.work == {"attributed_a": 0, "attributed_b": 0}


def test_the_causal_check_shows_the_shortcut_model_needs_the_patch(
    data: Any, models: Any, comparison: Any
) -> None:
    result = imacs.compare(
        *models, data.images, data.labels, store=comparison.store, causal="mean", **FAST
    )
    top = result.clusters.iloc[0]
    assert top["causal_images"] > 0
    # hiding the patch moves B's answer (either way: a random shade often misleads it) and
    # leaves A's as it was
    assert top["causal_change_b"] > 0.05
    assert top["causal_change_a"] < 0.01
    assert abs(top["causal_drop_b"]) <= top["causal_change_b"]


def test_absolute_maps_score_regions_by_magnitude(data: Any, models: Any, comparison: Any) -> None:
    signed = comparison.regions
    assert comparison.settings["map_sign"] == "signed"
    assert (signed["mass_a"] < 0).any()  # IG's maps have pixels against the target
    result = imacs.compare(
        *models, data.images, data.labels, map_sign="absolute", store=comparison.store, **FAST
    )
    assert result.settings["map_sign"] == "absolute"
    # the stored raw maps are shared; only how they are read differs
    assert result.work == {"attributed_a": 0, "attributed_b": 0}
    regions = result.regions
    assert (regions["mass_a"] >= 0).all() and (regions["mass_b"] >= 0).all()
    np.testing.assert_allclose(regions["mass_a"], regions["abs_a"])
    with pytest.raises(InvalidInputError, match="map_sign"):
        imacs.compare(*models, data.images, map_sign="positive", store=comparison.store, **FAST)


def test_targets_choose_which_class_each_model_explains(
    data: Any, models: Any, comparison: Any
) -> None:
    result = imacs.compare(*models, data.images, store=comparison.store, **FAST)
    assert result.settings["targets"] == "own"  # no labels
    images = result.images
    assert (images["target_a"] == images["pred_a"]).all()
    assert (images["target_b"] == images["pred_b"]).all()
    assert (images["label"] == -1).all() and images["correct_a"].isna().all()
    result = imacs.compare(
        *models, data.images, data.labels, targets="pred_b", store=comparison.store, **FAST
    )
    assert (result.images["target_a"] == result.images["pred_b"]).all()


def test_the_executor_runs_every_attribution_and_score_task(
    data: Any, models: Any, tmp_path: Path
) -> None:
    class Recording(InProcessExecutor):
        def __init__(self) -> None:
            self.tasks: dict[str, list[Any]] = {"attribute": [], "score": []}

        def map(self, function: Any, tasks: Any) -> Any:
            tasks = list(tasks)
            stage = "attribute" if isinstance(function, AttributionWork) else "score"
            self.tasks[stage].extend(tasks)
            # backwards, as another engine may finish them: the tables must not change
            return reversed(list(super().map(function, tasks)))

    executor = Recording()
    result = imacs.compare(
        *models, data.images, data.labels, store=tmp_path, executor=executor, **FAST
    )
    done = sorted(i for task in executor.tasks["attribute"] for i in task)
    assert done == sorted(list(range(N_IMAGES)) * 2)
    assert [i for task in executor.tasks["score"] for i in task] == list(range(N_IMAGES))
    in_order = imacs.compare(*models, data.images, data.labels, store=tmp_path, **FAST)
    pd.testing.assert_frame_equal(result.regions, in_order.regions)
    pd.testing.assert_frame_equal(result.images, in_order.images)


# -- bad input ---------------------------------------------------------------------------


def test_models_with_different_class_counts_need_a_mapping(
    data: Any, models: Any, tmp_path: Path
) -> None:
    model_a, model_b = models
    five = FunctionAdapter(
        lambda x: model_b.predict(x)[:, :5],
        lambda x, t: model_b.gradients(x, t),
        fingerprint="planted-b-first-five",
    )
    with pytest.raises(InvalidInputError, match="class_mapping"):
        imacs.compare(model_a, five, data.images, data.labels, store=tmp_path, **FAST)
    keep = data.labels < 5
    result = imacs.compare(
        model_a,
        five,
        data.images[keep],
        data.labels[keep],
        class_mapping={k: k for k in range(5)},
        store=tmp_path,
        **FAST,
    )
    assert len(result.images) == keep.sum()


def test_bad_datasets_are_refused_clearly(data: Any, models: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        imacs.compare(*models, data.images[:0], store=tmp_path, **FAST)
    with pytest.raises(InvalidInputError, match="labels"):
        imacs.compare(*models, data.images, data.labels[:-3], store=tmp_path, **FAST)
    with pytest.raises(InvalidInputError, match="not classes of model A"):
        imacs.compare(*models, data.images, data.labels + 10, store=tmp_path, **FAST)
    with pytest.raises(InvalidInputError, match="top_k"):
        imacs.compare(*models, data.images, store=tmp_path, area_fraction=0.2, **FAST)
    with pytest.raises(InvalidInputError, match="targets='own'"):
        imacs.compare(*models, data.images, targets="label", store=tmp_path, **FAST)


def test_too_few_permutations_are_refused_before_any_work(
    data: Any, models: Any, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInputError, match="n_permutations to be an int >= 100; got 50"):
        imacs.compare(*models, data.images, store=tmp_path, **(FAST | {"n_permutations": 50}))
    assert not (tmp_path / "images").exists()


def _write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / f"class-{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")


def test_a_folder_with_a_corrupt_file_fails_or_skips_and_other_sizes_need_size(
    data: Any, tmp_path: Path
) -> None:
    root = tmp_path / "images"
    _write_folder(root, data.images[:30], data.labels[:30] % 2)
    (root / "class-0" / "broken.png").write_bytes(b"not a png")
    template = np.ones((32, 32, 3), dtype=np.float32)

    def scaled(x: np.ndarray) -> np.ndarray:  # a model of [0, 255] images with 2 classes
        return np.stack([(x * template).sum((1, 2, 3)), -(x * template).sum((1, 2, 3))], 1)

    def grad(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.where(t[:, None, None, None] == 0, 1.0, -1.0) * np.ones_like(x)

    a = FunctionAdapter(scaled, grad, fingerprint="sum")
    b = FunctionAdapter(lambda x: -scaled(x), lambda x, t: -grad(x, t), fingerprint="neg")
    with pytest.raises(InvalidInputError, match="on_error='skip'"):
        imacs.compare(a, b, root, store=tmp_path / "s", targets="own", **FAST)
    with pytest.warns(UserWarning, match="broken.png"):
        result = imacs.compare(
            a, b, root, store=tmp_path / "s", targets="own", on_error="skip", **FAST
        )
    assert result.dataset["skipped"] == ["class-0/broken.png"]
    assert len(result.images) == 30
    (root / "class-0" / "broken.png").unlink()
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(root / "class-0" / "small.png")
    with pytest.raises(InvalidInputError, match="size="):
        imacs.compare(a, b, root, store=tmp_path / "s", targets="own", **FAST)
    result = imacs.compare(a, b, root, store=tmp_path / "s", targets="own", size=(32, 32), **FAST)
    assert len(result.images) == 31


def test_a_store_of_an_incompatible_version_is_refused(
    data: Any, models: Any, tmp_path: Path
) -> None:
    imacs.compare(*models, data.images[:20], data.labels[:20], store=tmp_path, **FAST)
    (tmp_path / MARKER).write_text(json.dumps({"format": 0}))
    with pytest.raises(StoreError, match="new store folder"):
        imacs.compare(*models, data.images[:20], data.labels[:20], store=tmp_path, **FAST)
    assert (tmp_path / "attributions").is_dir()  # nothing was deleted
