"""The imacs-ltx plugin: LTX learns masks that explain, through the adapter contract alone.

The shortcut model is :mod:`imacs.testing.planted`'s model B written as a PyTorch module
(the same logits: one template per class plus a term that reads the class off the shade
of the demo digits' corner patch), so the place LTX should find is known exactly and no
training is needed. The Keras model is model A (templates only) as a Keras dense layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from cli_runs import run  # noqa: E402
from imacs_ltx import ltx as ltx_module  # noqa: E402
from imacs_ltx.ltx import LTX, STAGE  # noqa: E402
from PIL import Image  # noqa: E402

import imacs  # noqa: E402
from imacs import plugins  # noqa: E402
from imacs.attribution import DatasetView  # noqa: E402
from imacs.attribution.smoothgrad import SmoothGrad  # noqa: E402
from imacs.comparison import runner  # noqa: E402
from imacs.comparison.executor import Executor  # noqa: E402
from imacs.demo.data import N_CLASSES, PATCH, SIZE, shortcut_digits, split_indices  # noqa: E402
from imacs.errors import MissingCapabilityError  # noqa: E402
from imacs.quality.perturbation_tests import PositivePerturbation  # noqa: E402
from imacs.store import Store  # noqa: E402
from imacs.testing import check_attribution_method, planted  # noqa: E402

pytestmark = pytest.mark.torch

#: CPU-sized settings for the tests: few epochs, small data
FAST = {"pretrain_epochs": 40, "finetune_epochs": 10, "pretrain_batch": 8}
N_PRETRAIN, N_EXPLAIN = 32, 6


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class PlantedShortcut(nn.Module):
    """Planted model B (``shortcut=True``) or A in PyTorch: channel-first images in [0, 1]."""

    def __init__(self, shortcut: bool = True):
        super().__init__()
        self.shortcut = shortcut
        self.register_buffer("templates", torch.from_numpy(planted._templates(0)).float())
        shades = 0.3 + 0.7 * np.arange(N_CLASSES) / (N_CLASSES - 1)
        self.register_buffer("shades", torch.from_numpy(shades).float())

    def forward(self, x: Any) -> Any:
        logits = torch.einsum("nchw,khwc->nk", x, self.templates)
        if not self.shortcut:
            return logits
        shade = x[:, :, :PATCH, :PATCH].mean(dim=(1, 2, 3))
        bump = -(((shade[:, None] - self.shades[None]) / planted.SHADE_WIDTH) ** 2)
        return logits + planted.SHORTCUT_WEIGHT * bump


@pytest.fixture(scope="module")
def digits() -> Any:
    _, test = split_indices()
    return shortcut_digits(test[: N_PRETRAIN + N_EXPLAIN], shortcut=True, seed=1)


@pytest.fixture(scope="module")
def shortcut_model() -> Any:
    return imacs.load_model(PlantedShortcut().eval(), device="cpu", name="planted-b")


@pytest.fixture(scope="module")
def explained(shortcut_model: Any, digits: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """LTX pre-trained on 32 digits, its explanation of 6 others (no early stop)."""
    ltx = LTX(**FAST, stop_auc=0.0)
    ltx.pretrain(shortcut_model, digits.images[:N_PRETRAIN])
    images = digits.images[N_PRETRAIN:]
    targets = shortcut_model.predict(images).argmax(axis=1)
    return ltx.explain(shortcut_model, images, targets), images, targets


def patch_share(masks: np.ndarray) -> np.ndarray:
    return masks[:, :PATCH, :PATCH].sum(axis=(1, 2)) / masks.sum(axis=(1, 2))


def test_the_plugin_registers_ltx_through_its_entry_point() -> None:
    assert isinstance(imacs.get_method("ltx"), LTX)
    plugins.reset()
    info = {p.name: p for p in imacs.get_plugins()}["ltx"]
    assert (info.status, info.distribution) == ("loaded", "imacs-ltx")
    assert info.components == {"attribution_method": ["ltx"]}


def test_fine_tuning_lowers_the_objective(explained: Any) -> None:
    explanation, _, _ = explained
    objective = explanation.objective
    assert np.isfinite(objective).all()
    # the first step has learning rate 0 (the warm-up starts there), so it is the start
    assert (objective[:, -3:].mean(axis=1) < objective[:, 0] - 0.1).all(), objective


def test_masks_beat_random_masks_of_the_same_area(explained: Any, shortcut_model: Any) -> None:
    explanation, images, targets = explained
    masks = explanation.masks
    assert masks.shape == images.shape[:3] and masks.min() >= 0.0 and masks.max() <= 1.0
    measure = PositivePerturbation()
    ltx_auc = measure.evaluate(shortcut_model, images, targets, masks).scores
    rng = np.random.default_rng(0)
    flat = masks.reshape(len(masks), -1)
    random_auc = np.mean(
        [
            measure.evaluate(
                shortcut_model, images, targets, rng.permuted(flat, axis=1).reshape(masks.shape)
            ).scores
            for _ in range(5)
        ],
        axis=0,
    )
    # lower is better: the model loses its class sooner when LTX's pixels are removed
    assert ltx_auc.mean() < random_auc.mean() - 5.0, (ltx_auc, random_auc)
    assert (ltx_auc <= random_auc).all(), (ltx_auc, random_auc)
    np.testing.assert_allclose(
        ltx_auc, explanation.pos_auc[np.arange(len(images)), explanation.best_epoch]
    )


def test_the_mask_lands_on_the_shortcut_patch(explained: Any) -> None:
    share = patch_share(explained[0].masks)
    area = PATCH * PATCH / SIZE**2
    assert (share > 5 * area).all(), (share, area)


def test_on_the_trained_demo_network_the_mask_lands_on_the_patch() -> None:
    from imacs.demo.models import train_torch_cnn

    train, test = split_indices()
    data = shortcut_digits(train, shortcut=True, seed=0)
    model = imacs.load_model(
        train_torch_cnn(data.images, data.labels, seed=0, epochs=8), device="cpu", name="demo"
    )
    digits = shortcut_digits(test[:40], shortcut=True, seed=1)
    ltx = LTX(**FAST).pretrain(model, digits.images[:32])
    images = digits.images[32:]
    targets = model.predict(images).argmax(axis=1)
    masks = imacs.attribute(model, images, targets, method=ltx).maps[..., 0]
    share = patch_share(masks)
    assert (share > 10 * PATCH * PATCH / SIZE**2).all(), share
    measure = PositivePerturbation()
    random_masks = np.random.default_rng(0).permuted(masks.reshape(8, -1), axis=1)
    random_auc = measure.evaluate(model, images, targets, random_masks.reshape(masks.shape))
    assert measure.evaluate(model, images, targets, masks).mean < random_auc.mean


def test_ltx_explains_a_keras_model(digits: Any) -> None:
    keras = pytest.importorskip("keras")
    templates = planted._templates(0).astype(np.float32)
    dense = keras.layers.Dense(N_CLASSES, use_bias=False)
    net = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Flatten(), dense])
    dense.set_weights([templates.reshape(N_CLASSES, -1).T])
    model = imacs.load_model(net, name="planted-a-keras")
    assert "vjp" in model.capabilities
    images = digits.images[N_PRETRAIN : N_PRETRAIN + 3]
    targets = model.predict(images).argmax(axis=1)
    ltx = LTX(**{**FAST, "pretrain_epochs": 10}, stop_auc=0.0)
    ltx.pretrain(model, digits.images[:16])
    explanation = ltx.explain(model, images, targets)
    assert (explanation.objective[:, -3:].mean(axis=1) < explanation.objective[:, 0]).all()
    # model A reads the digit, not the patch: LTX keeps the patch's share low
    area = PATCH * PATCH / SIZE**2
    assert (patch_share(explanation.masks) < 2 * area).all()
    result = imacs.attribute(model, images, targets, method=ltx)
    np.testing.assert_array_equal(result.maps[..., 0], explanation.masks)


def tiny_cnn(channels: int = 3, size: int = 16, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * (size // 2) ** 2, 3),
    ).eval()


def test_the_conformance_kit_passes() -> None:
    model = imacs.load_model(tiny_cnn(), device="cpu")
    images = np.random.default_rng(0).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    method = LTX(pretrain_epochs=2, finetune_epochs=3, pretrain_batch=2, width=4)
    check_attribution_method(method, model, images, [0, 2, 1])


def test_by_name_and_with_a_store(tmp_path: Path) -> None:
    model = imacs.load_model(tiny_cnn(), device="cpu")
    images = np.random.default_rng(1).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    params = {"pretrain_epochs": 2, "finetune_epochs": 2, "width": 4, "store": str(tmp_path)}
    first = imacs.attribute(model, images, [0, 1], method="ltx", **params)
    assert first.method == "ltx" and first.maps.shape == images.shape
    store = Store(tmp_path)
    assert store.count(STAGE) == 1
    # a second instance finds the pre-trained explainer in the store instead of training
    again = LTX(**params).explain(model, images, [0, 1])
    assert again.pretrain_objective.size == 0
    np.testing.assert_array_equal(again.masks, first.maps[..., 0])
    # other pre-training parameters are another explainer
    imacs.attribute(model, images, [0, 1], method="ltx", **{**params, "width": 5})
    assert store.count(STAGE) == 2


def test_an_adapter_without_vjp_is_refused_by_name() -> None:
    model = planted.planted_models()[0]
    images = shortcut_digits(slice(0, 2), shortcut=True).images
    with pytest.raises(MissingCapabilityError, match="'vjp'"):
        imacs.attribute(model, images, [0, 1], method="ltx")
    with pytest.raises(MissingCapabilityError, match="'vjp'"):
        LTX().pretrain(model, images)


def test_imacs_compare_runs_ltx_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "images"
    rng = np.random.default_rng(0)
    for i in range(8):
        path = folder / ("odd" if i % 2 else "even") / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
    real_load_model = imacs.load_model

    def load_model(path: str, *, name: str | None = None, **options: Any) -> Any:
        return real_load_model(tiny_cnn(seed=len(path)), device="cpu", name=name)

    monkeypatch.setattr(imacs, "load_model", load_model)
    argv = ["compare", "--model-a", "a.pt", "--model-b", "bb.pt", "--data", str(folder)]
    argv += ["--out", str(tmp_path / "out"), "--store", str(tmp_path / "store")]
    argv += ["--method", "ltx", "--method-option", "pretrain_epochs=2"]
    argv += ["--method-option", "finetune_epochs=2", "--method-option", "width=4"]
    argv += ["--segmenter", "grid", "--segmenter-option", "rows=2", "--segmenter-option", "cols=2"]
    argv += ["--causal", "none", "--no-report", "--no-figures", "--quiet"]
    status, out, err = run(argv, capsys)
    assert status == 0, err
    result = Path(out.strip())
    assert result.exists() and "ltx" in "".join(
        p.read_text() for p in [result, *result.rglob("*.json")] if p.is_file()
    )


#: the smallest LTX that still trains: for the tests of how a run uses it
TINY = {"pretrain_epochs": 2, "finetune_epochs": 2, "pretrain_batch": 4, "width": 4}


class Interrupted(Exception):
    """Stands for a run killed after its first attribution task."""


class StopsAfterOneTask(Executor):
    """Runs the first task, then stops the run as a kill would."""

    def map(self, function: Any, tasks: Any) -> Any:
        for task in tasks:
            yield task, function(task)
            raise Interrupted


def compare_with_ltx(images: np.ndarray, store: Path, **options: Any) -> Any:
    model_a = imacs.load_model(tiny_cnn(seed=1), device="cpu", name="a")
    model_b = imacs.load_model(tiny_cnn(seed=2), device="cpu", name="b")
    return imacs.compare(
        model_a,
        model_b,
        images,
        np.arange(len(images)) % 3,
        method="ltx",
        method_params=TINY,
        segmenter="grid",
        segmenter_params={"rows": 2, "cols": 2},
        causal=None,
        spatial=False,
        n_permutations=100,
        store=store,
        progress=False,
        **options,
    )


def stored_maps(comparison: Any) -> dict[str, np.ndarray]:
    store = Store(comparison.store)
    table = comparison.images
    return {
        side: np.stack([store.load("attributions", key) for key in table[f"map_key_{side}"]])
        for side in ("a", "b")
    }


@pytest.fixture(scope="module")
def eight_images() -> np.ndarray:
    return np.random.default_rng(5).uniform(0, 1, (8, 16, 16, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def one_task(eight_images: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A comparison with LTX whose eight images fit one attribution task."""
    return compare_with_ltx(eight_images, tmp_path_factory.mktemp("one-task"))


def test_compare_pretrains_ltx_once_whatever_the_tasks(
    one_task: Any, eight_images: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "TASK_SIZE", 3)
    three_tasks = compare_with_ltx(eight_images, tmp_path)
    for side in ("a", "b"):
        assert list(three_tasks.images[f"map_key_{side}"]) == list(
            one_task.images[f"map_key_{side}"]
        )
        np.testing.assert_array_equal(stored_maps(three_tasks)[side], stored_maps(one_task)[side])
    # one explainer per model, pre-trained on all eight images, kept in the run's store
    assert Store(tmp_path).count(STAGE) == 2


def test_a_resumed_comparison_equals_an_uninterrupted_one(
    one_task: Any, eight_images: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "TASK_SIZE", 3)
    with pytest.raises(Interrupted):
        compare_with_ltx(eight_images, tmp_path, executor=StopsAfterOneTask())
    assert Store(tmp_path).count("attributions") == 3
    # as a new process would: the explainers come back from the store, not from memory
    monkeypatch.setattr(ltx_module, "_MEMORY", {})
    resumed = compare_with_ltx(eight_images, tmp_path)
    assert resumed.work == {"attributed_a": 5, "attributed_b": 8}
    for side in ("a", "b"):
        np.testing.assert_array_equal(stored_maps(resumed)[side], stored_maps(one_task)[side])


def test_other_pretraining_data_gives_other_map_keys(
    one_task: Any, eight_images: np.ndarray, tmp_path: Path
) -> None:
    changed = eight_images.copy()
    changed[-1] = 1.0 - changed[-1]
    other = compare_with_ltx(changed, tmp_path)
    for side in ("a", "b"):
        before, after = one_task.images[f"map_key_{side}"], other.images[f"map_key_{side}"]
        # the first seven images are the same, their maps' keys are not
        assert not set(before[:7]) & set(after[:7])


def test_attribute_and_the_folder_run_pretrain_once_on_all_their_images(
    eight_images: np.ndarray, tmp_path: Path
) -> None:
    from imacs.attribute_folder import attribute_folder
    from imacs.data.folder import ImageFolder

    model = imacs.load_model(tiny_cnn(), device="cpu")
    targets = np.arange(8) % 3
    whole = imacs.attribute(model, eight_images, targets, method="ltx", **TINY).maps
    explicit = LTX(**TINY)
    explicit.prepare(model, DatasetView.from_arrays(eight_images, targets))
    np.testing.assert_array_equal(
        explicit.attribute(model, eight_images[5:], targets[5:]).maps, whole[5:]
    )
    # pre-trained on three images only, the explainer (and so the maps) differ
    alone = imacs.attribute(model, eight_images[5:], targets[5:], method="ltx", **TINY).maps
    assert not np.array_equal(alone, whole[5:])
    names = [f"{i}.png" for i in range(8)]
    folder = ImageFolder(eight_images, names, None, None)
    run = attribute_folder(
        model, folder, tmp_path, method="ltx", params=TINY, targets=targets, batch_size=32, chunk=3
    )
    assert run.computed == 8
    written = np.stack([np.load(tmp_path / "maps" / f"{i}.npy") for i in range(8)])
    np.testing.assert_array_equal(written, whole)
    manifest = json.loads((tmp_path / "attributions.json").read_text())
    assert manifest["settings"]["learnt"] == explicit._prepared[model.fingerprint()][0]


def test_prepare_refuses_what_is_not_a_dataset_view(eight_images: np.ndarray) -> None:
    model = imacs.load_model(tiny_cnn(), device="cpu")
    with pytest.raises(imacs.InvalidInputError, match=r"DatasetView\.from_arrays"):
        LTX(**TINY).prepare(model, eight_images)  # type: ignore[arg-type]
    with pytest.raises(imacs.InvalidInputError, match="one target per image"):
        DatasetView.from_arrays(eight_images, [0, 1])
    # a method that learns nothing leaves the keys as they were
    assert (
        imacs.get_method("gradient").prepare(model, DatasetView.from_arrays(eight_images, [0] * 8))
        is None
    )


def test_smoothgrad_of_ltx_pretrains_once_per_model_in_a_comparison(
    eight_images: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretrained = []
    real_pretrain = LTX._pretrain

    def counting(self: LTX, model: Any, data: DatasetView, batch_size: int) -> Any:
        pretrained.append((model.fingerprint(), len(data)))
        return real_pretrain(self, model, data, batch_size)

    monkeypatch.setattr(LTX, "_pretrain", counting)
    monkeypatch.setattr(ltx_module, "_MEMORY", {})
    models = [
        imacs.load_model(tiny_cnn(seed=seed), device="cpu", name=f"m{seed}") for seed in (1, 2)
    ]
    targets = np.arange(8) % 3
    smoothgrad = {"base_method": "ltx", "base_params": TINY, "n_samples": 2}
    comparison = imacs.compare(
        *models,
        eight_images,
        targets,
        method="smoothgrad",
        method_params=smoothgrad,
        segmenter="grid",
        segmenter_params={"rows": 2, "cols": 2},
        causal=None,
        spatial=False,
        n_permutations=100,
        store=tmp_path,
        progress=False,
    )
    # once per model, on all eight clean images, into the run's store; never on noisy copies
    assert pretrained == [(model.fingerprint(), 8) for model in models]
    assert Store(tmp_path).count(STAGE) == 2
    # the maps are those of SmoothGrad around an LTX pre-trained on the dataset
    own = comparison.images["target_a"].to_numpy()  # each model explains its own class
    explainer = LTX(**TINY).pretrain(models[0], eight_images, own)
    again = SmoothGrad(base_method=explainer, n_samples=2).attribute(models[0], eight_images, own)
    np.testing.assert_array_equal(stored_maps(comparison)["a"], again.maps)
