"""Every built-in attribution method passes the imacs.testing conformance suite.

The table below is the one place a new method joins: a test fails when a registered
built-in method is missing from it, so no method ships unchecked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import imacs
from imacs.plugins import PluginHost
from imacs.testing import check_attribution_method, softplus_model

#: method name -> (constructor parameters small enough for a test, check path completeness)
CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "gradient": ({}, False),
    "gradient-times-input": ({}, False),
    "integrated-gradients": ({"n_steps": 16}, True),
    "smoothgrad": ({"n_samples": 3}, False),
    "vargrad": ({"n_samples": 3}, False),
    "split-ig": ({"n_steps": 16}, False),
    "xrai": ({"steps": 8}, False),
    "guided-ig": ({"x_steps": 100}, True),
    "blur-ig": ({"max_sigma": 2, "steps": 20}, False),
    "occlusion": ({"window": 3}, False),
    "pami": (
        {"shifts": (), "segmentations": [("slic", {"n_segments": 8, "compactness": 20})]},
        False,
    ),
}

#: methods that need an adapter capability the analytic model lacks (layers, layer
#: injection); the kit runs on them in tests/attribution/test_grad_cam.py and
#: tests/attribution/test_dix_iia.py
NEEDS_LAYERS = {"grad-cam", "dix", "iia2", "iia3"}


def _builtin_methods() -> list[str]:
    host = PluginHost(environ={"IMACS_LOAD_PLUGINS": ""})  # built-ins only
    return host.registry.names("attribution_method")


def test_every_builtin_method_is_in_the_table() -> None:
    missing = set(_builtin_methods()) - set(CASES) - NEEDS_LAYERS
    assert not missing, f"add these built-in methods to CASES: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_builtin_method_conforms(name: str) -> None:
    params, completeness = CASES[name]
    method = imacs.get_method(name, **params)
    images = np.random.default_rng(3).random((3, 8, 8, 3), dtype=np.float32)
    check_attribution_method(method, softplus_model(), images, [0, 2, 3], completeness=completeness)
