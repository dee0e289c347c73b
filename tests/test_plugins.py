"""The plugin system, exercised through real entry points rather than mocks of pluggy."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import imacs
from imacs import plugins
from imacs.cli import cli
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


# A plugin at fault in each way imacs checks. Each one also offers a sound attribution
# method, "faulty-method", which must vanish with it: a broken plugin is removed whole.
FAULTY_METHOD = """
    import imacs

    class FaultyMethod(imacs.AttributionMethod):
        name = "faulty-method"

        def _attribute(self, model, images, targets, batch_size):
            return imacs.AttributionResult(model.gradients(images, targets), self.name)

    @imacs.hookimpl
    def register_attribution_methods(register):
        register(FaultyMethod)
"""
FAULTS = {
    "import": (
        "raise ImportError('needs libfoo 9')\n",
        r"failed to import: ImportError: needs libfoo 9",
    ),
    "wrong-arguments": (
        FAULTY_METHOD
        + """
    @imacs.hookimpl
    def register_segmenters(register, colour):
        pass
""",
        r"wrong arguments.*colour",
    ),
    "unknown-hook": (
        FAULTY_METHOD
        + """
    @imacs.hookimpl
    def register_segmenter(register):
        pass
""",
        r"unknown hook 'register_segmenter'.*did you mean 'register_segmenters'",
    ),
    "not-a-component": (
        FAULTY_METHOD
        + """
    class NotASegmenter:
        name = "nope"

    @imacs.hookimpl
    def register_segmenters(register):
        register(NotASegmenter)
""",
        r"registered .*NotASegmenter.* as a segmenter; expected a subclass of imacs.Segmenter",
    ),
    "hook-raises": (
        FAULTY_METHOD
        + """
    @imacs.hookimpl
    def register_metrics(register):
        raise RuntimeError("no licence server")
""",
        r"failed in register_metrics: RuntimeError: no licence server",
    ),
    "two-components-one-name": (
        """
    import imacs

    class FaultyMethod(imacs.AttributionMethod):
        name = "faulty-method"

        def _attribute(self, model, images, targets, batch_size):
            return imacs.AttributionResult(model.gradients(images, targets), self.name)

    class Twin(FaultyMethod):
        pass

    @imacs.hookimpl
    def register_attribution_methods(register):
        register(FaultyMethod)
        register(Twin)
""",
        r"registers two attribution methods named 'faulty-method'",
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_faulty_plugin_is_broken_and_removed_whole_the_rest_loads(install_plugin, fault) -> None:
    source, reason = FAULTS[fault]
    install_plugin("imacs-faulty", source)
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    with pytest.warns(PluginLoadWarning, match=rf"imacs-faulty.*{reason}"):
        infos = {info.name: info for info in imacs.get_plugins()}
    faulty = infos["imacs-faulty"]
    assert faulty.status == "broken" and faulty.components == {}
    assert re.search(reason, faulty.error or "")
    # the host is whole without it: every built-in and the sound plugin are there
    assert infos["imacs-halves"].status == "loaded"
    assert all(infos[name].status == "loaded" for name in plugins.DEFAULT_PLUGINS)
    host = plugins.get_host()
    assert host.pm.get_plugin("imacs-faulty") is None
    assert "halves" in host.registry.names("segmenter")
    assert "faulty-method" not in host.registry.names("attribution_method")
    with pytest.raises(UnknownComponentError, match="no attribution method named 'faulty-method'"):
        imacs.get_method("faulty-method")
    # later calls see the same complete host, not one half-loaded
    assert imacs.get_method("doubled-gradient").name == "doubled-gradient"


def test_a_plugin_broken_late_loses_what_it_registered_before(install_plugin) -> None:
    source, _ = FAULTS["not-a-component"]
    install_plugin("imacs-faulty", source)
    host = plugins.get_host()
    # attribution methods are collected first and the plugin's own is sound ...
    assert "faulty-method" in host.registry.names("attribution_method")
    with pytest.warns(PluginLoadWarning, match="imacs-faulty"):
        host.registry.names("segmenter")  # ... until its segmenter turns out not to be one
    assert "faulty-method" not in host.registry.names("attribution_method")
    assert host.pm.get_plugin("imacs-faulty") is None


@pytest.mark.parametrize("fault", FAULTS)
def test_the_cli_lists_a_faulty_plugin_as_broken(install_plugin, fault) -> None:
    source, reason = FAULTS[fault]
    install_plugin("imacs-faulty", source)
    with pytest.warns(PluginLoadWarning):
        listed = CliRunner().invoke(cli, ["plugins", "--json"])
    assert listed.exit_code == 0, listed.output
    entries = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert entries["imacs-faulty"]["status"] == "broken"
    assert re.search(reason, entries["imacs-faulty"]["error"])
    assert entries["imacs.attribution.gradient"]["components"] == {
        "attribution_method": ["gradient"]
    }
    for arguments in (["plugins"], ["--version"]):
        result = CliRunner().invoke(cli, arguments)  # warned once already, in the same host
        assert result.exit_code == 0, result.output


def test_every_fault_at_once_through_the_real_command(install_plugin) -> None:
    for fault, (source, _) in FAULTS.items():
        site = install_plugin(f"imacs-{fault}", source.replace("faulty-method", f"{fault}-method"))
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    install_plugin("imacs-halves-again", SEGMENTER_PLUGIN.replace("DoubledGradient", "Other"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), *sys.path]), COLUMNS="500")
    run = functools.partial(subprocess.run, env=env, capture_output=True, text=True, timeout=120)
    listing = run([sys.executable, "-m", "imacs.cli", "plugins", "--json"])
    assert listing.returncode == 0, listing.stderr
    status = {entry["name"]: entry["status"] for entry in json.loads(listing.stdout)}
    assert {status[f"imacs-{fault}"] for fault in FAULTS} == {"broken"}
    assert status["imacs-halves"] == status["imacs-halves-again"] == "broken"
    assert status["imacs.attribution.gradient"] == "loaded"
    table = run([sys.executable, "-m", "imacs.cli", "plugins"])
    assert table.returncode == 0, table.stderr
    assert "no licence server" in table.stdout and "gradient" in table.stdout
    version = run([sys.executable, "-m", "imacs.cli", "--version"])
    assert version.returncode == 0, version.stderr
    assert "imacs-unknown-hook 0.1 (broken)" in version.stdout
    assert "imacs-halves 0.1 (broken)" in version.stdout


def test_two_plugins_with_one_component_name_are_both_broken(install_plugin) -> None:
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    install_plugin("imacs-halves-again", SEGMENTER_PLUGIN.replace("DoubledGradient", "Other"))
    with pytest.warns(PluginLoadWarning, match="doubled-gradient"):
        infos = {info.name: info for info in imacs.get_plugins()}
    for name, other in (
        ("imacs-halves", "imacs-halves-again"),
        ("imacs-halves-again", "imacs-halves"),
    ):
        assert infos[name].status == "broken" and infos[name].components == {}
        assert other in (infos[name].error or "")
    registry = plugins.get_host().registry
    assert "doubled-gradient" not in registry.names("attribution_method")
    assert "halves" not in registry.names("segmenter")
    # asking for a clashing name says who clashes and what to do
    with pytest.raises(DuplicateComponentError) as error:
        registry.get("attribution_method", "doubled-gradient")
    message = str(error.value)
    assert "'imacs-halves' (imacs_halves.DoubledGradient)" in message
    assert "'imacs-halves-again' (imacs_halves_again.Other)" in message
    assert "IMACS_DISABLE_PLUGINS" in message
    # the segmenters were never collected from either: the error still points at them
    with pytest.raises(UnknownComponentError, match="'imacs-halves', 'imacs-halves-again'"):
        registry.get("segmenter", "halves")
    with pytest.raises(
        DuplicateComponentError, match="attribution method named 'doubled-gradient'"
    ):
        imacs.get_method("doubled-gradient")
    assert imacs.get_method("gradient").name == "gradient"


def test_disabling_one_of_two_clashing_plugins_loads_the_other(install_plugin, monkeypatch) -> None:
    install_plugin("imacs-halves", SEGMENTER_PLUGIN)
    install_plugin("imacs-halves-again", SEGMENTER_PLUGIN.replace("DoubledGradient", "Other"))
    monkeypatch.setenv("IMACS_DISABLE_PLUGINS", "imacs-halves-again")
    infos = {info.name: info for info in imacs.get_plugins()}
    assert infos["imacs-halves"].status == "loaded"
    assert infos["imacs-halves-again"].status == "blocked"
    assert imacs.get_method("doubled-gradient").name == "doubled-gradient"


def test_two_distributions_with_one_entry_point_name_are_both_broken(
    install_plugin, monkeypatch
) -> None:
    install_plugin("imacs-halves", SEGMENTER_PLUGIN, entry_point="halves")
    install_plugin("imacs-halves-fork", SEGMENTER_PLUGIN, entry_point="halves")
    with pytest.warns(PluginLoadWarning, match="both named 'halves'"):
        infos = imacs.get_plugins()
    named = [info for info in infos if info.name == "halves"]
    assert sorted(info.distribution or "" for info in named) == [
        "imacs-halves",
        "imacs-halves-fork",
    ]
    assert {info.status for info in named} == {"broken"}
    assert "halves" not in plugins.get_host().registry.names("segmenter")

    # blocking one by its distribution name lets the other load
    monkeypatch.setenv("IMACS_DISABLE_PLUGINS", "imacs-halves-fork")
    plugins.reset()
    status = {
        info.distribution: info.status for info in imacs.get_plugins() if info.name == "halves"
    }
    assert status == {"imacs-halves": "loaded", "imacs-halves-fork": "blocked"}
    assert "halves" in plugins.get_host().registry.names("segmenter")


def test_hook_with_unknown_argument_is_an_error(imacs_host) -> None:
    class Wrong:
        @imacs.hookimpl
        def register_segmenters(self, register, colour):
            pass

    with pytest.raises(PluginError, match="wrong arguments"):
        imacs_host.register(Wrong(), name="wrong")
    assert "wrong" not in {info.name for info in imacs_host.plugin_infos()}
    assert imacs_host.pm.get_plugin("wrong") is None


def test_runtime_plugin_with_a_typo_in_a_hook_name_is_refused(imacs_host) -> None:
    class Typo:
        @imacs.hookimpl
        def register_segmenter(self, register):
            pass

    with pytest.raises(PluginError, match=r"'typo'.*did you mean 'register_segmenters'"):
        imacs_host.register(Typo(), name="typo")
    assert imacs_host.pm.get_plugin("typo") is None


def test_registering_something_that_is_not_a_component_is_an_error(imacs_host) -> None:
    class NotASegmenter:
        name = "nope"

    class Constant(imacs.AttributionMethod):
        name = "constant"

        def _attribute(self, model, images, targets, batch_size):
            return imacs.AttributionResult(np.ones_like(images), self.name)

    class Plugin:
        @imacs.hookimpl
        def register_attribution_methods(self, register):
            register(Constant)

        @imacs.hookimpl
        def register_segmenters(self, register):
            register(NotASegmenter)

    with pytest.raises(PluginError, match=r"bad-plugin.*subclass of imacs.Segmenter"):
        imacs_host.register(Plugin(), name="bad-plugin")
    # refused whole: the host is as it was
    assert imacs_host.pm.get_plugin("bad-plugin") is None
    assert "constant" not in imacs_host.registry.names("attribution_method")
    assert "bad-plugin" not in {info.name for info in imacs_host.plugin_infos()}


def test_runtime_plugin_may_not_take_an_installed_name(imacs_host) -> None:
    class Gradient(imacs.AttributionMethod):
        name = "gradient"

        def _attribute(self, model, images, targets, batch_size):
            return imacs.AttributionResult(np.ones_like(images), self.name)

    class Plugin:
        @imacs.hookimpl
        def register_attribution_methods(self, register):
            register(Gradient)

    with pytest.raises(DuplicateComponentError, match=r"'imacs.attribution.gradient'"):
        imacs_host.register(Plugin(), name="shadow")
    assert imacs_host.registry.entry("attribution_method", "gradient").plugin == (
        "imacs.attribution.gradient"
    )
    with pytest.raises(PluginError, match="already known"):
        imacs_host.register(Plugin(), name="imacs.attribution.gradient")


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
