"""The PyTorch model adapter (plugin imacs-torch) against hand-written torch computations."""

from __future__ import annotations

import copy
import importlib
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")
nn = torch.nn

import imacs_torch  # noqa: E402
from imacs_torch import TorchAdapter  # noqa: E402

import imacs  # noqa: E402
from imacs.adapters.options import OptionText  # noqa: E402
from imacs.cli import cli  # noqa: E402
from imacs.errors import InvalidInputError, ModelLoadError, UntrustedModelError  # noqa: E402

#: every capability a model of layers offers through this adapter
ALL_CAPABILITIES = {"embedding", "geometry", "gradients", "injection", "layers", "randomise", "vjp"}

pytestmark = pytest.mark.torch

N_CLASSES = 5
PREPROCESSING = {"scale": 1 / 255, "mean": (0.4, 0.5, 0.6), "std": (0.2, 0.3, 0.25)}


# -- tiny models --------------------------------------------------------------------------


class SmoothCNN(nn.Module):
    """Softplus and tanh only, so finite differences are derivatives everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.Softplus(),
            nn.Conv2d(4, 6, 3, stride=2, padding=1),
            nn.Tanh(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)  # a 4-D output with one position
        self.head = nn.Linear(6, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)).flatten(1))


class InPlaceReluCNN(nn.Module):
    """Conv -> BatchNorm -> ReLU(inplace=True), the torchvision ResNet pattern."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Linear(4, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.bn(self.conv(x))).mean((2, 3)))


class Unsqueezed(nn.Module):
    """Returns (N, K, 1): not the (N, K) the contract needs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[..., None]


class TupleOutput(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out, out


class ChannelLastInput(nn.Module):
    """Takes (N, H, W, C) and reorders itself, for channels_first=False."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.permute(0, 3, 1, 2))


def smooth_cnn(seed: int = 0) -> SmoothCNN:
    torch.manual_seed(seed)
    return SmoothCNN().eval()


def sequential_cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, N_CLASSES)
    ).eval()


def scaled_margin(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A user target function: twice the target logit minus the mean logit."""
    return 2 * outputs.gather(1, targets[:, None]).squeeze(1) - outputs.mean(1)


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, size=(4, 8, 8, 3)).astype(np.float32)


@pytest.fixture
def targets() -> np.ndarray:
    return np.array([0, 3, 1, 4])


# -- hand-written references ----------------------------------------------------------------


def assert_close(actual, expected, rtol=1e-5):
    """Equal up to float32 rounding, measured against the largest value.

    Convolutions on batches of different sizes may sum in a different order, so only the
    last bits of the smallest values may differ.
    """
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


def preprocess(x: torch.Tensor, scale=1.0, mean=None, std=None, channel_order="rgb"):
    """Preprocessing written independently of the adapter (indexing instead of flip)."""
    x = x * scale
    if mean is not None:
        x = x - torch.tensor(mean)
    if std is not None:
        x = x / torch.tensor(std)
    if channel_order == "bgr":
        x = x[..., [2, 1, 0]]
    return x.permute(0, 3, 1, 2)


def select(outputs: torch.Tensor, targets: torch.Tensor, target) -> torch.Tensor:
    if callable(target):
        return target(outputs, targets)
    rows = torch.arange(len(targets))
    if target == "probability":
        outputs = outputs.softmax(1)
    elif target == "log_probability":
        outputs = outputs.log_softmax(1)
    return outputs[rows, targets]


def reference_gradients(model, images, targets, target="logit", **preprocessing):
    """Each image's gradient on its own, with plain torch.autograd."""
    grads = []
    for image, t in zip(images, targets, strict=True):
        x = torch.tensor(image[None], requires_grad=True)
        score = select(model(preprocess(x, **preprocessing)), torch.tensor([t]), target)
        grads.append(torch.autograd.grad(score.sum(), x)[0][0].numpy())
    return np.stack(grads)


def reference_layer(model, module, images, targets, **preprocessing):
    """A layer's output and its gradient, captured with a hook written here."""
    captured = []
    handle = module.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        x = torch.tensor(images, requires_grad=True)
        outputs = model(preprocess(x, **preprocessing))
        score = outputs[torch.arange(len(targets)), torch.tensor(targets)].sum()
        (grads,) = torch.autograd.grad(score, captured[0])
    finally:
        handle.remove()
    return captured[0].detach().numpy(), grads.numpy()


# -- the plugin, through imacs's own entry point --------------------------------------------


def test_load_model_finds_the_plugin_and_answers_in_float32(images, targets):
    model = smooth_cnn()
    adapter = imacs.load_model(model, preprocessing=PREPROCESSING)
    assert isinstance(adapter, TorchAdapter)

    outputs = adapter.predict(images)
    values, grads = adapter.value_and_gradients(images, targets)
    assert outputs.shape == (4, N_CLASSES) and outputs.dtype == np.float32
    assert values.shape == (4,) and values.dtype == np.float32
    assert grads.shape == images.shape and grads.dtype == np.float32
    assert adapter.num_classes == N_CLASSES

    description = adapter.describe()
    assert description["adapter"] == "torch"
    assert description["framework"] == "pytorch"
    assert description["device"] == "cpu"
    assert description["module"].endswith("SmoothCNN")
    assert description["parameters"] == sum(p.numel() for p in model.parameters())
    assert description["preprocessing"]["mean"] == [0.4, 0.5, 0.6]
    assert description["capabilities"] == sorted(ALL_CAPABILITIES)


def test_importing_the_plugin_does_not_import_torch():
    code = (
        "import sys, imacs, imacs_torch\n"
        "from imacs.plugins import get_host\n"
        "get_host()\n"
        "assert imacs_torch.claim_model(object(), {}) is None\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_predict_applies_preprocessing_like_the_numpy_reference(images):
    model = smooth_cnn()
    adapter = TorchAdapter(model, preprocessing=imacs.Preprocessing(**PREPROCESSING))
    x = imacs.Preprocessing(**PREPROCESSING).apply(images)
    with torch.no_grad():
        expected = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    assert_close(adapter.predict(images), expected)


@pytest.mark.parametrize(
    "preprocessing",
    [{}, PREPROCESSING, {**PREPROCESSING, "channel_order": "bgr"}, {"scale": 2.0, "std": 0.5}],
    ids=["identity", "scale-mean-std", "bgr", "scalar-std"],
)
def test_gradients_are_taken_through_the_preprocessing(images, targets, preprocessing):
    model = smooth_cnn()
    adapter = TorchAdapter(model, preprocessing=preprocessing)
    expected = reference_gradients(model, images, targets, **preprocessing)
    assert_close(adapter.gradients(images, targets), expected)


@pytest.mark.parametrize("target", ["probability", "log_probability", scaled_margin])
def test_gradients_of_each_target(images, targets, target):
    model = smooth_cnn()
    adapter = TorchAdapter(model, preprocessing=PREPROCESSING, target=target)
    values, grads = adapter.value_and_gradients(images, targets)

    expected = reference_gradients(model, images, targets, target=target, **PREPROCESSING)
    assert_close(grads, expected)
    x = preprocess(torch.from_numpy(images), **PREPROCESSING)
    with torch.no_grad():
        expected_values = select(model(x), torch.from_numpy(targets), target).numpy()
    assert_close(values, expected_values)
    assert_close(adapter.scores(images, targets), values)


def test_gradients_match_central_finite_differences(targets):
    # The differences are taken in float64 on a float64 copy of the module: float32 scores
    # differenced over a small step keep only a few significant bits, and which few depends
    # on the CPU's kernels (AVX2 and AVX-512 round differently), so a float32 check could
    # pass on one machine and fail on another. In float64 the rounding error is ~1e-12,
    # far below the tolerance, and the truncation error of the central difference is O(h^2).
    images = np.random.default_rng(1).random((4, 8, 8, 3), dtype=np.float32)
    model = smooth_cnn()
    adapter = TorchAdapter(model, target="log_probability")
    grads = adapter.gradients(images, targets).astype(np.float64)
    reference = copy.deepcopy(model).double()

    def log_probability(x: np.ndarray, target: int) -> np.ndarray:
        with torch.no_grad():
            logits = reference(torch.from_numpy(x).permute(0, 3, 1, 2))
        return torch.log_softmax(logits, dim=1)[:, target].numpy()

    h = 1e-4
    rng = np.random.default_rng(2)
    for i in range(len(images)):
        g = grads[i]
        directions = [g / np.linalg.norm(g)] + [rng.normal(size=g.shape) for _ in range(3)]
        directions = [v / np.linalg.norm(v) for v in directions]
        x = images[i].astype(np.float64)
        probes = np.stack([x + sign * h * v for v in directions for sign in (1, -1)])
        s = log_probability(probes, int(targets[i]))
        for k, v in enumerate(directions):
            numeric = (s[2 * k] - s[2 * k + 1]) / (2 * h)
            analytic = float(np.sum(g * v))
            assert numeric == pytest.approx(analytic, rel=1e-4, abs=1e-5 * np.linalg.norm(g))


def test_results_do_not_depend_on_batching_and_repeat_exactly(images, targets):
    model = smooth_cnn()
    whole = TorchAdapter(model, preprocessing=PREPROCESSING)
    single = TorchAdapter(model, preprocessing=PREPROCESSING, batch_size=1)

    assert_close(single.predict(images), whole.predict(images))
    v1, g1 = whole.value_and_gradients(images, targets)
    v2, g2 = single.value_and_gradients(images, targets)
    assert_close(v2, v1)
    assert_close(g2, g1)
    assert_close(whole.gradients(images, targets, batch_size=3), g1)

    np.testing.assert_array_equal(whole.gradients(images, targets), g1)
    np.testing.assert_array_equal(whole.predict(images), whole.predict(images))


def test_gradients_leave_the_module_and_the_images_untouched(images, targets):
    model = smooth_cnn()
    before = copy.deepcopy(model.state_dict())
    pixels = images.copy()
    images.setflags(write=False)  # read-only input (an np.load mmap) must work, unwarned
    TorchAdapter(model).gradients(images, targets)
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    np.testing.assert_array_equal(images, pixels)


def test_module_that_edits_its_input_in_place(images, targets):
    model = ChannelLastInput(nn.Sequential(nn.ReLU(inplace=True), smooth_cnn()))
    adapter = TorchAdapter(model, channels_first=False)  # the module gets the pixels as is
    centred = images - 128
    pixels = centred.copy()
    grads = adapter.gradients(centred, targets)
    np.testing.assert_array_equal(centred, pixels)
    assert np.all(grads[centred < 0] == 0) and np.any(grads[centred > 0] != 0)


def test_channels_last_module(images, targets):
    model = smooth_cnn()
    nchw = TorchAdapter(model, preprocessing=PREPROCESSING)
    nhwc = TorchAdapter(ChannelLastInput(model), preprocessing=PREPROCESSING, channels_first=False)
    assert_close(nhwc.predict(images), nchw.predict(images))
    assert_close(nhwc.gradients(images, targets), nchw.gradients(images, targets))


def test_double_precision_module(images, targets):
    model = smooth_cnn()
    single = TorchAdapter(model, preprocessing=PREPROCESSING)
    double = TorchAdapter(copy.deepcopy(model).double(), preprocessing=PREPROCESSING)
    assert double.predict(images).dtype == double.gradients(images, targets).dtype == np.float32
    assert_close(double.gradients(images, targets), single.gradients(images, targets), rtol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("scripted", [False, True], ids=["module", "torchscript"])
def test_conformance_suite(images, targets, scripted):
    from imacs.testing import check_model_adapter

    model = torch.jit.script(smooth_cnn()) if scripted else smooth_cnn()
    check_model_adapter(TorchAdapter(model, preprocessing=PREPROCESSING), images, targets)


# -- errors a user can run into --------------------------------------------------------------


@pytest.mark.parametrize("wrapper", [Unsqueezed, TupleOutput], ids=["(N, K, 1)", "tuple"])
def test_outputs_that_are_not_one_n_by_k_tensor_are_refused(images, targets, wrapper):
    adapter = TorchAdapter(wrapper(smooth_cnn()))
    with pytest.raises(InvalidInputError, match=r"\(N, K\)"):
        adapter.predict(images)
    with pytest.raises(InvalidInputError, match=r"\(N, K\)"):
        adapter.gradients(images, targets)


def test_target_out_of_range(images):
    adapter = TorchAdapter(smooth_cnn())
    with pytest.raises(InvalidInputError, match=r"\[0, 4\]"):
        adapter.gradients(images, [0, 1, 2, N_CLASSES])


def test_unknown_option_lists_the_accepted_ones():
    with pytest.raises(InvalidInputError, match="colour") as error:
        imacs.load_model(smooth_cnn(), colour="rgb")
    assert "preprocessing" in str(error.value) and "factory" in str(error.value)


def test_nonexistent_path(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        imacs.load_model(tmp_path / "missing.pt")


# -- files ---------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
def test_torchscript_file(tmp_path, images, targets):
    model = smooth_cnn()
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(model), str(path))

    with warnings.catch_warnings():  # torch's deprecation of TorchScript is not the user's
        warnings.filterwarnings("error", r"`torch\.jit\.load`", DeprecationWarning)
        adapter = imacs.load_model(path, preprocessing=PREPROCESSING, trust=True)
    assert isinstance(adapter, TorchAdapter)
    # hooks do not run inside TorchScript: no layers, only gradients through the outputs
    assert adapter.capabilities == {"gradients", "vjp"}
    assert adapter.describe()["module"] == "SmoothCNN"
    assert_close(
        adapter.gradients(images, targets),
        reference_gradients(model, images, targets, **PREPROCESSING),
    )


class WritesOnLoad(nn.Module):
    """A scripted model whose ``__setstate__`` writes a file while ``torch.jit.load`` runs."""

    def __init__(self, mark: str) -> None:
        super().__init__()
        self.scale = torch.ones(1)
        self.mark = mark

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, :5] * self.scale

    @torch.jit.export
    def __getstate__(self) -> tuple[torch.Tensor, str, bool]:
        return (self.scale, self.mark, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, str, bool]) -> None:
        torch.save(state[0], state[1])  # aten::save: any file the archive's author names
        self.scale = state[0]
        self.mark = state[1]
        self.training = state[2]


@pytest.fixture
def archive_that_writes(tmp_path) -> tuple[Path, Path]:
    """A TorchScript archive, and the file loading it writes."""
    mark, path = tmp_path / "written-while-loading", tmp_path / "scripted.pt"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", DeprecationWarning)
        torch.jit.save(torch.jit.script(WritesOnLoad(str(mark))), str(path))
    assert not mark.exists()
    return path, mark


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("trust", [None, False, OptionText("False"), OptionText("no")])
def test_torchscript_runs_no_code_without_trust(archive_that_writes, trust):
    path, mark = archive_that_writes
    options = {} if trust is None else {"trust": trust}
    with pytest.raises(UntrustedModelError, match=r"TorchScript archive.*trust=True") as error:
        imacs.load_model(path, channels_first=False, **options)
    assert "__setstate__" in str(error.value)
    assert not mark.exists()
    # the archive does what it says once trusted: the refusal above is what kept it out
    imacs.load_model(path, channels_first=False, trust=OptionText("TRUE"))
    assert mark.exists()


@pytest.mark.parametrize("trust", ["False", "no", "", 0, 1, None, [True]])
def test_trust_must_be_a_bool(archive_that_writes, trust):
    path, mark = archive_that_writes
    with pytest.raises(InvalidInputError, match=r"expected option 'trust' to be True or False"):
        imacs.load_model(path, trust=trust)
    with pytest.raises(InvalidInputError, match=r"'trust' to be True or False"):
        TorchAdapter.load(path, trust=trust)
    assert not mark.exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("command", ["attribute", "compare"])
@pytest.mark.parametrize("typed", ["False", "false", "NO", "0"])
def test_cli_trust_false_loads_no_torchscript(archive_that_writes, tmp_path, command, typed):
    path, mark = archive_that_writes
    (tmp_path / "images").mkdir()
    if command == "attribute":
        arguments = ["attribute", "--model", str(path), "--images", str(tmp_path / "images")]
        arguments += ["--model-option", f"trust={typed}"]
    else:
        arguments = ["compare", "--model-a", str(path), "--model-b", str(path)]
        arguments += ["--data", str(tmp_path / "images"), "--model-a-option", f"trust={typed}"]
    result = CliRunner().invoke(cli, [*arguments, "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, UntrustedModelError), result.output
    assert not mark.exists()

    nonsense = CliRunner().invoke(cli, [*arguments[:-1], "trust=maybe", "--out", str(tmp_path)])
    assert isinstance(nonsense.exception, InvalidInputError)
    assert "'trust' to be true or false; got 'maybe'" in str(nonsense.exception)
    assert not mark.exists()


class WritesWhenUnpickled:
    """Unpickling this runs ``Path.write_text``: what a malicious checkpoint would do."""

    def __init__(self, mark: Path) -> None:
        self.mark = mark

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.write_text, (self.mark, "unpickled"))


def test_state_dict_with_a_factory_is_read_as_weights_even_when_trusted(tmp_path):
    mark, path = tmp_path / "written-while-unpickling", tmp_path / "checkpoint.pt"
    model = smooth_cnn()
    torch.save({"model_state_dict": model.state_dict(), "extra": WritesWhenUnpickled(mark)}, path)
    with pytest.raises(ModelLoadError, match=r"not a state dict.*pathlib.*never unpickled"):
        imacs.load_model(path, factory=smooth_cnn, trust=True)
    assert not mark.exists()


def test_torch_export_archives_are_refused_not_read(tmp_path):
    path = tmp_path / "exported.pt2"
    example = torch.zeros(1, 3, 8, 8)
    torch.export.save(torch.export.export(smooth_cnn().eval(), (example,)), str(path))
    for trust in (False, True):
        with pytest.raises(ModelLoadError, match=r"torch\.export archive.*does not load"):
            imacs.load_model(path, trust=trust)


def test_state_dict_with_a_factory_function(tmp_path, images):
    model = smooth_cnn(seed=0)
    path = tmp_path / "weights.pth"
    torch.save({"epoch": 3, "model_state_dict": model.state_dict()}, path)

    adapter = imacs.load_model(path, factory=lambda: smooth_cnn(seed=1))
    np.testing.assert_array_equal(adapter.predict(images), TorchAdapter(model).predict(images))


def test_state_dict_with_a_factory_named_by_string(tmp_path, monkeypatch, images):
    module_name = "imacs_torch_test_factory"
    (tmp_path / f"{module_name}.py").write_text(
        textwrap.dedent(
            """
            import torch

            def build():
                return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 5))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        model = importlib.import_module(module_name).build()
        path = tmp_path / "weights.bin"
        torch.save(model.state_dict(), path)
        adapter = imacs.load_model(path, factory=f"{module_name}:build")
        np.testing.assert_array_equal(adapter.predict(images), TorchAdapter(model).predict(images))

        with pytest.raises(ModelLoadError, match="has no attribute 'nope'"):
            imacs.load_model(path, factory=f"{module_name}:nope")
    finally:
        sys.modules.pop(module_name, None)


def test_state_dict_without_a_factory(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(smooth_cnn().state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"weights only.*factory='package.module:build_model'"):
        imacs.load_model(path)


def test_state_dict_for_another_architecture(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(smooth_cnn().state_dict(), path)
    with pytest.raises(ModelLoadError, match="do not fit"):
        imacs.load_model(path, factory=sequential_cnn)


def test_pickled_module_needs_trust(tmp_path, images):
    model = sequential_cnn()
    path = tmp_path / "model.pt"
    torch.save(model, path)

    with pytest.raises(UntrustedModelError, match=r"run code from the file.*trust=True"):
        imacs.load_model(path)
    adapter = imacs.load_model(path, trust=True)
    np.testing.assert_array_equal(adapter.predict(images), TorchAdapter(model).predict(images))


@pytest.mark.parametrize("content", ["truncated", "text"])
def test_unreadable_file(tmp_path, content):
    path = tmp_path / "model.pt"
    if content == "truncated":
        torch.save(smooth_cnn().state_dict(), path)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_text("not a model")
    with pytest.raises(ModelLoadError, match="could not read") as error:
        imacs.load_model(path)
    assert "model.pt" in str(error.value) and error.value.__cause__ is not None
    assert not isinstance(error.value, UntrustedModelError)


def test_only_torch_files_are_claimed(tmp_path):
    keras_like = tmp_path / "model.keras"
    with zipfile.ZipFile(keras_like, "w") as archive:
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")
    assert imacs_torch.claim_model(keras_like, {}) is None
    assert imacs_torch.claim_model(np.zeros(3), {}) is None

    renamed = tmp_path / "model.weights"  # a torch archive under a name we do not know
    torch.save(smooth_cnn().state_dict(), renamed)
    with pytest.raises(ModelLoadError, match="weights only"):
        imacs_torch.claim_model(renamed, {})


# -- layers, embeddings, fingerprints -----------------------------------------------------------


def test_layer_gradients_match_a_hook_computed_by_hand(images, targets):
    model = smooth_cnn()
    adapter = TorchAdapter(model, preprocessing=PREPROCESSING, batch_size=3)
    assert "features.2" in adapter.layer_names() and "" not in adapter.layer_names()

    activations, grads = adapter.layer_gradients(images, targets, "features.2")
    assert activations.shape == grads.shape == (4, 4, 4, 6)  # channel-last (N, h, w, D)
    expected_a, expected_g = reference_layer(
        model, model.features[2], images, targets, **PREPROCESSING
    )
    assert_close(activations, expected_a.transpose(0, 2, 3, 1))
    assert_close(grads, expected_g.transpose(0, 2, 3, 1))

    # the gradient of a logit w.r.t. the logits is the one-hot target
    logits, one_hot = adapter.layer_gradients(images, targets, "head")
    assert_close(logits, adapter.predict(images))
    np.testing.assert_array_equal(one_hot, np.eye(N_CLASSES, dtype=np.float32)[targets])


def test_layer_activations_survive_a_later_in_place_relu(images, targets):
    model = InPlaceReluCNN().eval()
    adapter = TorchAdapter(model)
    activations, _ = adapter.layer_gradients(images / 255, targets, "bn")
    assert activations.min() < 0  # captured before the ReLU, not overwritten by it


def test_embed_defaults_to_the_last_spatial_feature_map(images):
    adapter = TorchAdapter(smooth_cnn(), preprocessing=PREPROCESSING)
    features = adapter.embed(images)
    assert adapter.default_layer(images) == "features"
    assert features.shape == (4, 4, 4, 6)
    assert_close(features, adapter.embed(images, layer="features.3", batch_size=1))
    assert adapter.embed(images, layer="head").shape == (4, N_CLASSES)


def test_unknown_layer_names_the_available_ones(images, targets):
    adapter = TorchAdapter(smooth_cnn())
    with pytest.raises(InvalidInputError, match=r"'features\.9'.*Did you mean.*features\.0"):
        adapter.layer_gradients(images, targets, "features.9")
    with pytest.raises(InvalidInputError, match="no layer named 'fc'"):
        adapter.embed(images, layer="fc")


def test_fingerprint_follows_the_weights_and_settings():
    model = smooth_cnn()
    twin = copy.deepcopy(model)
    assert TorchAdapter(model).fingerprint() == TorchAdapter(twin).fingerprint()

    with torch.no_grad():
        twin.head.bias[0] += 1e-3
    assert TorchAdapter(model).fingerprint() != TorchAdapter(twin).fingerprint()

    base = TorchAdapter(model).fingerprint()
    assert TorchAdapter(model, preprocessing=PREPROCESSING).fingerprint() != base
    assert TorchAdapter(model, target="probability").fingerprint() != base
    assert TorchAdapter(model, target=scaled_margin).fingerprint() != base


def test_channels_last_memory_format_gives_the_same_numbers() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Softplus(),
        nn.Conv2d(8, 8, 3, stride=2),
        nn.Softplus(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )
    images = np.random.default_rng(0).random((5, 12, 12, 3), dtype=np.float32)
    targets = np.arange(5) % 4
    plain = TorchAdapter(module, device="cpu")
    fast = TorchAdapter(module, device="cpu", channels_last=True)
    assert fast.describe()["channels_last"] is True
    np.testing.assert_allclose(fast.predict(images), plain.predict(images), rtol=1e-5, atol=1e-6)
    g_fast, g_plain = fast.gradients(images, targets), plain.gradients(images, targets)
    assert np.abs(g_fast - g_plain).max() <= 1e-5 * np.abs(g_plain).max()


class ViewsItsFeatureMap(nn.Module):
    """The PyTorch tutorial's ``x.view(n, -1)``, which channels-last strides refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4 * 10 * 10, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.conv(x))
        return self.head(h.view(len(h), -1))


def test_channels_last_none_turns_it_on_for_convolutions_on_the_cpu(images, targets) -> None:
    model = smooth_cnn()
    auto = TorchAdapter(model, preprocessing=PREPROCESSING, device="cpu", channels_last=None)
    plain = TorchAdapter(model, preprocessing=PREPROCESSING, device="cpu")
    assert auto.channels_last is True and plain.channels_last is False
    assert_close(auto.predict(images), plain.predict(images))
    g_auto, g_plain = auto.gradients(images, targets), plain.gradients(images, targets)
    assert np.abs(g_auto - g_plain).max() <= 1e-5 * np.abs(g_plain).max()
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 12 * 12, N_CLASSES))
    assert TorchAdapter(mlp, device="cpu", channels_last=None).channels_last is False
    nhwc = TorchAdapter(
        ChannelLastInput(model), channels_first=False, device="cpu", channels_last=None
    )
    assert nhwc.channels_last is False


def test_a_module_that_views_its_feature_map_falls_back_to_the_contiguous_layout() -> None:
    torch.manual_seed(0)
    model = ViewsItsFeatureMap()
    pixels = np.random.default_rng(1).random((3, 12, 12, 3), dtype=np.float32)
    labels = np.arange(3) % N_CLASSES
    forced = TorchAdapter(model, device="cpu", channels_last=True)
    with pytest.raises(RuntimeError, match="view"):
        forced.gradients(pixels, labels)
    auto = TorchAdapter(model, device="cpu", channels_last=None)
    assert auto.channels_last is True
    plain = TorchAdapter(model, device="cpu", channels_last=False)
    np.testing.assert_array_equal(auto.gradients(pixels, labels), plain.gradients(pixels, labels))
    assert auto.channels_last is False and auto.describe()["channels_last"] is False
    np.testing.assert_array_equal(auto.predict(pixels), plain.predict(pixels))


def test_channels_last_must_be_none_or_a_bool() -> None:
    with pytest.raises(InvalidInputError, match="channels_last"):
        TorchAdapter(smooth_cnn(), channels_last="yes")  # type: ignore[arg-type]


def _counted_calls(adapter: TorchAdapter) -> list[int]:
    """The number of images of each call the adapter makes to its module from now on."""
    adapter.predict(np.zeros((1, 64, 64, 3), np.float32))  # its first call checks the model
    sizes: list[int] = []
    inner = adapter._value_and_gradients
    predict = adapter._predict

    def counted(images, targets):
        sizes.append(len(images))
        return inner(images, targets)

    def counted_predict(images):
        sizes.append(len(images))
        return predict(images)

    adapter._value_and_gradients = counted  # type: ignore[method-assign]
    adapter._predict = counted_predict  # type: ignore[method-assign]
    return sizes


def test_calls_on_the_cpu_carry_at_most_call_pixels_pixels() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4, N_CLASSES),
    )  # fmt: skip
    images = np.random.default_rng(2).random((80, 64, 64, 3), dtype=np.float32)
    labels = np.arange(80) % N_CLASSES
    auto = TorchAdapter(module, device="cpu")
    assert auto.call_pixels == 131_072 and auto.describe()["call_pixels"] == 131_072
    sizes = _counted_calls(auto)
    split = auto.gradients(images, labels, batch_size=64)
    assert sizes == [32, 32, 16]  # 131,072 pixels: 32 images of 64x64
    sizes.clear()
    auto.predict(images[:20], batch_size=8)
    assert sizes == [8, 8, 4]  # the smaller of the two limits
    unlimited = TorchAdapter(module, device="cpu", call_pixels=None)
    sizes = _counted_calls(unlimited)
    whole = unlimited.gradients(images, labels, batch_size=80)
    assert sizes == [80]
    # each image's gradient does not depend on the call it was in, up to float32 rounding
    assert np.abs(split - whole).max() <= 1e-5 * np.abs(whole).max()
    small = TorchAdapter(module, device="cpu", call_pixels=5000)  # under one 64x64 image
    sizes = _counted_calls(small)
    small.predict(images[:3])
    assert sizes == [1, 1, 1]  # never fewer than one image per call
    copy = auto.randomised_copy(auto.parameter_layers()[:1])
    assert copy.call_pixels == auto.call_pixels


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "all"])
def test_call_pixels_must_be_a_positive_int_none_or_auto(value) -> None:
    with pytest.raises(InvalidInputError, match="call_pixels"):
        TorchAdapter(smooth_cnn(), device="cpu", call_pixels=value)


def test_call_pixels_reads_from_command_line_text() -> None:
    from imacs.adapters.options import OptionText

    parsed = TorchAdapter.parse_options(
        {"call_pixels": OptionText("none")}
    ) | TorchAdapter.parse_options({"batch_size": OptionText("8")})
    assert parsed == {"call_pixels": None, "batch_size": 8}
    assert TorchAdapter.parse_options({"call_pixels": OptionText("4096")}) == {"call_pixels": 4096}
    assert TorchAdapter.parse_options({"call_pixels": OptionText("auto")}) == {
        "call_pixels": "auto"
    }
