"""The documentation keeps up with the code: every Python block in docs/ and the README runs.

Code blocks are read from the Markdown itself. Blocks of one page run in order in one
namespace, in a scratch folder shared by all pages, with these names set up beforehand
for examples that need a model or data of their own:

``torch_module``
    a small PyTorch CNN (4 classes, any image size, channels first);
``model``
    an imacs adapter of 16x16x3 images and 4 classes (``imacs.testing.softplus_model``);
``model_a``, ``model_b``
    two such CNNs loaded with ``imacs.load_model``;
``images``, ``targets``
    four random 16x16x3 float32 images in [0, 1] and the classes 0 to 3;
``image``, ``labels``
    the first of them and a 4x4 grid of regions on it.

The scratch folder holds ``images/val`` and ``images/validation`` (8 PNGs of 16x16, two
class sub-folders) and, for the pages that mention it, ``model-2024.keras``. A block whose
first line is a comment naming a file (``# conftest.py``, ``# imacs_halves.py``) is
also written to that file; pytest runs the ``test_*.py`` files a page writes. A block
right after ``<!-- skip: reason -->`` is not run; keep those rare.

docs/plugin-tutorial.md is run by its own test, which builds, installs and uses the
plugin distribution the page writes.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imacs import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [
    name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec")
]
TUTORIAL = ROOT / "docs" / "plugin-tutorial.md"
PAGES = [p for p in sorted((ROOT / "docs").glob("*.md")) if p != TUTORIAL] + [ROOT / "README.md"]
BIN = Path(sys.executable).parent


# -- reading the blocks ------------------------------------------------------------------


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence
    language: str
    code: str
    skip: str | None  # the reason given in <!-- skip: ... -->
    file: str | None  # the file named on the first line, if any

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^(\s*)```\s*([\w-]*)\s*$")
SKIP = re.compile(r"^<!--\s*skip:\s*(.+?)\s*-->$")
FILE_COMMENT = re.compile(r"^#\s*([\w./-]+\.(?:py|toml))\s*$")


def code_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    lines = page.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        start, indent = i, len(opening.group(1))
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        i += 1
        before = [line.strip() for line in lines[:start] if line.strip()]
        skip = SKIP.match(before[-1]) if before else None
        named = FILE_COMMENT.match(body[0]) if body else None
        blocks.append(
            Block(
                page,
                start + 1,
                opening.group(2),
                "\n".join(body) + "\n",
                skip.group(1) if skip else None,
                named.group(1) if named else None,
            )
        )
    return blocks


def python_blocks(page: Path) -> list[Block]:
    return [block for block in code_blocks(page) if block.language == "python"]


def test_blocks_are_read_from_the_markdown() -> None:
    blocks = python_blocks(ROOT / "docs" / "plugins.md")
    assert blocks and all(block.code.strip() for block in blocks)
    assert any(block.file == "imacs_halves.py" for block in blocks)


# -- the names and files the examples rely on ---------------------------------------------


def _torch_module(seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 4),
    )


def _image_folders(folder: Path, names: tuple[str, ...]) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in names:
        for label in ("cats", "dogs"):
            target = folder / "images" / name / label if name else folder / "images" / label
            target.mkdir(parents=True, exist_ok=True)
            for i in range(4):
                pixels = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
                Image.fromarray(pixels).save(target / f"{label}-{i}.png")


def _keras_file(path: Path) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="softplus"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4),
        ]
    )
    model.save(path)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    _image_folders(folder, ("val", "validation"))
    return folder


def harness_names() -> dict[str, Any]:
    import imacs
    from imacs.segmentation.grid import Grid
    from imacs.testing import softplus_model

    images = np.random.default_rng(1).random((4, 16, 16, 3), dtype=np.float32)
    return {
        "torch_module": _torch_module(0),
        "model": softplus_model((16, 16, 3)),
        "model_a": imacs.load_model(_torch_module(0)),
        "model_b": imacs.load_model(_torch_module(1)),
        "images": images,
        "targets": np.arange(4),
        "image": images[0],
        "labels": Grid().segment(images[0]),
    }


@pytest.fixture
def in_scratch(scratch: Path, monkeypatch: pytest.MonkeyPatch, imacs_host: Any) -> Iterator[Path]:
    monkeypatch.chdir(scratch)
    monkeypatch.syspath_prepend(str(scratch))
    monkeypatch.setenv("IMACS_STORE", str(scratch / "store"))
    yield scratch
    # modules the pages wrote and imported (imacs_halves.py, ...) must not outlive the page
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(scratch)):
            del sys.modules[name]


def run_pytest(folder: Path, *paths: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        [str(BIN / "pytest"), "-q", "-p", "no:cacheprovider", *paths],
        cwd=folder,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(page: Path, in_scratch: Path) -> None:
    blocks = python_blocks(page)
    if "model-2024.keras" in page.read_text() and not (in_scratch / "model-2024.keras").exists():
        _keras_file(in_scratch / "model-2024.keras")
    namespace: dict[str, Any] = {"__name__": f"docs_{page.stem}", **harness_names()}
    test_files: list[str] = []
    for block in blocks:
        if block.skip:
            continue
        if block.file:
            (in_scratch / block.file).parent.mkdir(parents=True, exist_ok=True)
            (in_scratch / block.file).write_text(block.code)
            if Path(block.file).name.startswith("test_"):
                test_files.append(block.file)
        try:
            exec(compile(block.code, block.where, "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"the block at {block.where} fails: {exc!r}") from exc
    if test_files:
        run_pytest(in_scratch, *test_files)


def test_skipped_blocks_are_rare_and_say_why() -> None:
    skipped = [block for page in PAGES for block in python_blocks(page) if block.skip]
    assert len(skipped) <= 2, [block.where for block in skipped]


# -- the plugin tutorial --------------------------------------------------------------------


def _console_commands(page: Path, program: str) -> list[list[str]]:
    commands = []
    for block in code_blocks(page):
        if block.language != "console":
            continue
        for line in block.code.splitlines():
            if line.startswith(f"$ {program} "):
                commands.append(shlex.split(line[2:]))
    return commands


def _tutorial_models(folder: Path) -> None:
    import torch

    (folder / "my_models.py").write_text(
        "import torch\n\n\ndef build():\n"
        "    return torch.nn.Sequential(\n"
        "        torch.nn.Conv2d(3, 4, 3, padding=1),\n"
        "        torch.nn.Softplus(),\n"
        "        torch.nn.AdaptiveAvgPool2d(1),\n"
        "        torch.nn.Flatten(),\n"
        "        torch.nn.Linear(4, 2),\n"
        "    )\n"
    )
    sys.path.insert(0, str(folder))
    try:
        from my_models import build  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("my_models", None)
    for seed, name in ((0, "model-a.pt"), (1, "model-b.pt")):
        torch.manual_seed(seed)
        torch.save(build().state_dict(), folder / name)


def test_the_tutorial_builds_a_plugin_that_compare_uses_by_name(tmp_path: Path) -> None:
    blocks = code_blocks(TUTORIAL)
    files = [block for block in blocks if block.file]
    assert {"imacs-stripes/pyproject.toml", "imacs-stripes/imacs_stripes.py"} <= {
        block.file for block in files
    }
    for block in files:
        (tmp_path / str(block.file)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / str(block.file)).write_text(block.code)
    usage = [b for b in blocks if b.language == "python" and not b.file and not b.skip]
    assert usage, "the tutorial shows the plugin used from Python"
    _image_folders(tmp_path, ("",))
    _tutorial_models(tmp_path)

    # pip install, from the page's own files, through a real entry point
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run(
        [*pip, "--no-build-isolation", "--target", str(site), str(tmp_path / "imacs-stripes")],
        check=True,
        capture_output=True,
    )
    assert not (site / "imacs_stripes.py").samefile(tmp_path / "imacs-stripes/imacs_stripes.py")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(site), str(tmp_path), *sys.path[1:]]),
        IMACS_STORE=str(tmp_path / "store"),
    )

    listed = subprocess.run(
        [str(BIN / "imacs"), "plugins", "--json"], env=env, capture_output=True, text=True
    )
    stripes = {entry["name"]: entry for entry in json.loads(listed.stdout)}["stripes"]
    assert stripes["status"] == "loaded" and stripes["source"] == "entry-point"
    assert stripes["distribution"] == "imacs-stripes"
    assert stripes["components"] == {
        "attribution_method": ["stripe-occlusion"],
        "metric": ["sign-agreement"],
        "segmenter": ["rings"],
    }

    # the conformance kit, on the installed module (the tests folder has no copy of it)
    run_pytest(tmp_path / "imacs-stripes", "tests", env=env)

    # imacs compare, as the page writes it
    (compare,) = [c for c in _console_commands(TUTORIAL, "imacs") if c[1] == "compare"]
    assert "--method" in compare
    result = subprocess.run(
        [str(BIN / "imacs"), *compare[1:]], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = compare[compare.index("--out") + 1]
    recorded = (tmp_path / out / "comparison.json").read_text()
    for name in ("stripe-occlusion", "rings", "sign-agreement"):
        assert f'"{name}"' in recorded, f"{name} is not in {out}/comparison.json"

    # and from Python
    for block in usage:
        ran = subprocess.run(
            [sys.executable, "-c", block.code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert ran.returncode == 0, f"{block.where}: {ran.stderr[-3000:]}"
        assert "Comparison of 8 images" in ran.stdout


# -- hooks and commands ---------------------------------------------------------------------


def _documented_json_fields() -> dict[str, str]:
    text = (ROOT / "docs" / "plugins.md").read_text()
    section = text.split("### `imacs plugins --json`", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| .+ \|$", section, re.M)
    return {field: kind.replace("\\|", "|").strip() for field, kind in rows}


def _matches(value: Any, documented: str) -> bool:
    """Whether ``value`` has the documented type (the spellings the table uses)."""
    if documented == "array of strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if documented.startswith("object: kind → array of strings"):
        from imacs.registry import KINDS

        return isinstance(value, dict) and all(
            kind in KINDS and _matches(names, "array of strings") for kind, names in value.items()
        )
    choices = [choice.strip() for choice in documented.split("|")]
    for choice in choices:
        if choice == "string" and isinstance(value, str):
            return True
        if choice == "null" and value is None:
            return True
        if choice.startswith('`"') and value == choice.strip('`"'):
            return True
    return False


def test_plugins_json_has_the_documented_fields_and_types() -> None:
    documented = _documented_json_fields()
    assert set(documented) >= {"name", "status", "components"}, documented
    out = subprocess.run(
        [str(BIN / "imacs"), "plugins", "--json"], capture_output=True, text=True, check=True
    ).stdout
    listed = json.loads(out)
    assert isinstance(listed, list) and listed
    for entry in listed:
        assert set(entry) == set(documented), (entry["name"], set(entry) ^ set(documented))
        for field, kind in documented.items():
            assert _matches(entry[field], kind), f"{entry['name']}: {field}={entry[field]!r}"
    assert {e["source"] for e in listed} >= {"builtin"}
    assert any("clusterer" in e["components"] for e in listed)


def test_the_json_type_spellings_are_understood() -> None:
    assert _matches(None, "string | null")
    assert not _matches(3, "string | null")
    assert _matches("builtin", '`"builtin"` | `"entry-point"`')
    assert not _matches("other", '`"builtin"` | `"entry-point"`')
    assert not _matches({"segmenters": ["x"]}, "object: kind → array of strings")


def test_there_are_hooks_to_document() -> None:
    assert {"register_model_adapters", "register_clusterers", "claim_model"} <= set(HOOKS)


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
