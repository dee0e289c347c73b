"""The plugin system, exercised through real entry points rather than mocks of pluggy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import imacs
from imacs import plugins
from imacs.errors import (
    DuplicateComponentError,
    InvalidInputError,
    PluginError,
    PluginLoadWarning,
    UnknownComponentError,
)
from imacs.plugins import PluginHost
from imacs.testing import softplus_model

SEGMENTER_PLUGIN = """
    import numpy as np
    import imacs

    class Halves(imacs.Segmenter):
        name = "halves"

        def __init__(self, *, axis=1):
            self.axis = axis

        def _segment(self, image):
            labels = np.zeros(image.shape[:2], dtype=int)
            index = [slice(None), slice(None)]
            index[self.axis] = slice(image.shape[self.axis] // 2, None)
            labels[tuple(index)] = 1
            return labels

    class DoubledGradient(imacs.AttributionMethod):
        name = "doubled-gradient"

        def _attribute(self, model, images, targets, batch_size):
            grads = model.gradients(images, targets, batch_size=batch_size)
            return imacs.AttributionResult(2 * grads, self.name)

    @imacs.hookimpl
    def register_segmenters(register):
        register(Halves)

    @imacs.hookimpl
    def register_attribution_methods(register):
        register(DoubledGradient)
"""


def test_builtins_register_through_the_public_hooks() -> None:
    host = PluginHost(environ={"IMACS_LOAD_PLUGINS": ""})
    registry = host.registry
    assert "gradient" in registry.names("attribution_method")
    assert registry.entry("attribution_method", "gradient").plugin == "imacs.attribution.gradient"
    assert "function" in registry.names("model_adapter")


def test_throwaway_plugin_is_found_listed_and_usable_by_name(install_plugin) -> None:
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    infos = {info.name: info for info in imacs.get_plugins()}
    info = infos["imacs-halves"]
    assert info.status == "loaded"
    assert info.distribution == "imacs-halves" and info.version == "0.1"
    assert info.components == {
        "attribution_method": ["doubled-gradient"],
        "segmenter": ["halves"],
    }
    segmenter = plugins.get_host().registry.create("segmenter", "halves", axis=0)
    labels = segmenter.segment(np.zeros((4, 6, 3), dtype=np.float32))
    assert labels.tolist() == [[0] * 6, [0] * 6, [1] * 6, [1] * 6]

    model = softplus_model()
    images = np.random.default_rng(1).random((2, 8, 8, 3), dtype=np.float32)
    doubled = imacs.attribute(model, images, [0, 1], method="doubled-gradient").maps
    plain = imacs.attribute(model, images, [0, 1], method="gradient").maps
    np.testing.assert_allclose(doubled, 2 * plain, rtol=1e-6)


def test_plugin_shows_up_in_the_cli_json(install_plugin) -> None:
    site = install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *sys.path]))
    out = subprocess.run(
        [sys.executable, "-m", "imacs.cli", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {entry["name"]: entry for entry in json.loads(out)}
    assert listed["imacs-halves"]["components"]["segmenter"] == ["halves"]
    assert listed["imacs-halves"]["status"] == "loaded"
    assert listed["imacs.attribution.gradient"]["components"] == {
        "attribution_method": ["gradient"]
    }


def test_plugin_that_fails_to_import_is_listed_as_broken(install_plugin) -> None:
    install_plugin("imacs-broken", "raise ImportError('needs libfoo 9')\n")
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    with pytest.warns(PluginLoadWarning, match=r"imacs-broken.*needs libfoo 9"):
        infos = {info.name: info for info in imacs.get_plugins()}
    assert infos["imacs-broken"].status == "broken"
    assert "needs libfoo 9" in (infos["imacs-broken"].error or "")
    # everything else keeps working
    assert infos["imacs-halves"].status == "loaded"
    assert "halves" in plugins.get_host().registry.names("segmenter")


def test_broken_plugin_in_the_cli_table(install_plugin) -> None:
    site = install_plugin("imacs-broken", "raise ImportError('needs libfoo 9')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *sys.path]), COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "imacs.cli", "plugins"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "broken" in result.stdout and "needs libfoo 9" in result.stdout
    assert "gradient" in result.stdout  # the built-ins are still listed


def test_duplicate_component_names_raise_naming_both_plugins(install_plugin) -> None:
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    install_plugin("imacs-halves-again", SEGMENTER_PLUGIN.replace("DoubledGradient", "Other"))
    with pytest.raises(DuplicateComponentError) as error:
        plugins.get_host().registry.names("attribution_method")
    assert "imacs-halves" in str(error.value) and "imacs-halves-again" in str(error.value)
    assert "attribution method named 'doubled-gradient'" in str(error.value)


def test_unknown_hook_fails_loudly_with_a_suggestion(install_plugin) -> None:
    install_plugin(
        "imacs-typo",
        """
        import imacs

        @imacs.hookimpl
        def register_segmenter(register):
            pass
        """,
    )
    with pytest.raises(
        PluginError,
        match=r"imacs-typo.*unknown hook 'register_segmenter'.*"
        r"did you mean 'register_segmenters'",
    ):
        plugins.get_host()


def test_hook_with_unknown_argument_is_an_error(imacs_host) -> None:
    class Wrong:
        @imacs.hookimpl
        def register_segmenters(self, register, colour):
            pass

    with pytest.raises(PluginError, match="wrong arguments"):
        imacs_host.register(Wrong(), name="wrong")


def test_registering_something_that_is_not_a_component_is_an_error(imacs_host) -> None:
    class NotASegmenter:
        name = "nope"

    class Plugin:
        @imacs.hookimpl
        def register_segmenters(self, register):
            register(NotASegmenter)

    imacs_host.register(Plugin(), name="bad-plugin")
    with pytest.raises(PluginError, match=r"bad-plugin.*subclass of imacs.Segmenter"):
        imacs_host.registry.names("segmenter")


def test_runtime_plugin_can_be_registered_and_removed(imacs_host) -> None:
    class Constant(imacs.AttributionMethod):
        name = "constant"

        def _attribute(self, model, images, targets, batch_size):
            return imacs.AttributionResult(np.ones_like(images), self.name)

    class Plugin:
        @imacs.hookimpl
        def register_attribution_methods(self, register):
            register(Constant)

    imacs_host.register(Plugin(), name="undo-constant")
    assert "constant" in imacs_host.registry.names("attribution_method")
    imacs_host.unregister("undo-constant")
    assert "constant" not in imacs_host.registry.names("attribution_method")


@pytest.mark.parametrize(
    ("variable", "value", "expected_status"),
    [
        ("IMACS_LOAD_PLUGINS", "", "blocked"),
        ("IMACS_LOAD_PLUGINS", "imacs-halves", "loaded"),
        ("IMACS_LOAD_PLUGINS", "some-other-plugin", "blocked"),
        ("IMACS_DISABLE_PLUGINS", "imacs-halves", "blocked"),
        ("IMACS_DISABLE_PLUGINS", "some-other-plugin", "loaded"),
    ],
)
def test_environment_variables_allow_and_block_plugins(
    install_plugin, monkeypatch, variable, value, expected_status
) -> None:
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    monkeypatch.setenv(variable, value)
    infos = {info.name: info for info in imacs.get_plugins()}
    assert infos["imacs-halves"].status == expected_status
    has_halves = "halves" in plugins.get_host().registry.names("segmenter")
    assert has_halves == (expected_status == "loaded")


def test_builtin_can_be_blocked(imacs_host, monkeypatch) -> None:
    monkeypatch.setenv("IMACS_DISABLE_PLUGINS", "imacs.attribution.gradient")
    plugins.reset()
    with pytest.raises(UnknownComponentError, match="no attribution method named 'gradient'"):
        plugins.get_host().registry.get("attribution_method", "gradient")


def test_unknown_component_error_lists_what_is_available() -> None:
    with pytest.raises(UnknownComponentError) as error:
        imacs.get_method("gradiant")
    message = str(error.value)
    assert "available: " in message and "gradient" in message
    assert "Did you mean 'gradient'?" in message


def test_unknown_parameter_lists_accepted_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"does not take parameter\(s\) n_steps.*absolute"):
        imacs.get_method("gradient", n_steps=5)


def test_finding_a_method_imports_no_framework() -> None:
    # registering adapter classes imports torch or tensorflow; a user who attributes with an
    # adapter in hand must not pay for that
    code = (
        "import sys, numpy as np, imacs\n"
        "from imacs.testing import softplus_model\n"
        "imacs.attribute(softplus_model(), np.zeros((1, 8, 8, 3), np.float32), [0])\n"
        "print(sorted({'torch', 'tensorflow', 'keras'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_version_lists_plugin_distributions() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "imacs.cli", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith(f"imacs {imacs.__version__}")
