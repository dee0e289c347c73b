"""The documentation keeps up with the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from imacs import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [
    name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec")
]


def test_there_are_hooks_to_document() -> None:
    assert {"register_model_adapters", "claim_model"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_heading_with_its_signature(hook: str) -> None:
    arguments = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    headings = re.findall(r"^### (.+)$", (ROOT / "docs" / "plugins.md").read_text(), re.M)
    assert f"{hook}({arguments})" in headings, f"docs/plugins.md lacks '### {hook}({arguments})'"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring(hook: str) -> None:
    assert (getattr(hookspecs, hook).__doc__ or "").strip()


def test_readme_gives_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "make test"
