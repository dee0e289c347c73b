"""The ``imacs.toml`` configuration file of ``imacs compare``.

Example::

    [model_a]
    path = "models/resnet-2023.pt"
    name = "resnet-2023"
    options = { factory = "models:build_resnet" }  # models.py beside this file
    preprocessing = { scale = 0.00392156862745098, mean = [0.485, 0.456, 0.406] }

    [model_b]
    path = "models/resnet-2024.keras"
    options = { trust = false }

    [data]
    path = "images/validation"
    labels = "images/validation/labels.csv"   # or sub-folders per class
    size = [64, 64]
    on_error = "skip"

    [compare]
    method = "integrated-gradients"
    method_params = { n_steps = 64 }
    segmenter = "felzenszwalb"
    featurizer = ["color", "texture", "shape"]
    n_clusters = 12
    targets = "label"
    causal = "mean"
    quality = ["deletion", "model-randomisation"]   # off unless named
    quality_params = { deletion = { n_steps = 16 } }
    seed = 0

Relative paths are read relative to the file, and a factory module beside the file
imports without ``PYTHONPATH``. Options given on the command line win.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from imacs.errors import InvalidInputError
from imacs.store import is_remote

SECTIONS: dict[str, frozenset[str]] = {
    "model_a": frozenset({"path", "name", "adapter", "options", "preprocessing"}),
    "model_b": frozenset({"path", "name", "adapter", "options", "preprocessing"}),
    "data": frozenset({"path", "labels", "size", "on_error", "class_names", "convert_grayscale"}),
    "compare": frozenset(
        {
            "method",
            "method_params",
            "segmenter",
            "segmenter_params",
            "featurizer",
            "featurizer_params",
            "n_clusters",
            "clusterer",
            "clusterer_params",
            "targets",
            "map_sign",
            "top_k",
            "area_fraction",
            "metrics",
            "metric_params",
            "causal",
            "causal_clusters",
            "causal_max_images",
            "seed",
            "n_permutations",
            "alpha",
            "min_effect",
            "batch_size",
            "class_mapping",
            "embedding_model",
            "ignore_alerts",
            "quality",
            "quality_params",
            "quality_images",
            "store",
            "executor",
            "executor_params",
        }
    ),
}
PATH_KEYS = {("model_a", "path"), ("model_b", "path"), ("data", "path"), ("data", "labels")}
PATH_KEYS |= {("compare", "store")}


def load_config(path: str | Path) -> dict[str, dict[str, Any]]:
    """The file's sections, checked for unknown names, with paths made absolute."""
    file = Path(path)
    try:
        config = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"the configuration file {str(file)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{str(file)!r} is not valid TOML: {exc}") from exc
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise InvalidInputError(
            f"{str(file)!r} has unknown section(s) {', '.join(unknown)}; the sections are "
            f"{', '.join(SECTIONS)}"
        )
    for section, values in config.items():
        if not isinstance(values, dict):
            raise InvalidInputError(f"expected [{section}] in {str(file)!r} to be a table")
        bad = sorted(set(values) - SECTIONS[section])
        if bad:
            raise InvalidInputError(
                f"[{section}] in {str(file)!r} has unknown key(s) {', '.join(bad)}; it takes "
                f"{', '.join(sorted(SECTIONS[section]))}"
            )
        for key in values:
            if (
                (section, key) in PATH_KEYS
                and isinstance(values[key], str)
                and not is_remote(values[key])  # a URL (s3://...) is no relative path
            ):
                values[key] = str((file.parent / values[key]).resolve())
        if "options" in values and section in ("model_a", "model_b"):
            _check_model_options(values["options"], section, file)
    if "class_mapping" in config.get("compare", {}):
        mapping = config["compare"]["class_mapping"]
        config["compare"]["class_mapping"] = {int(k): int(v) for k, v in mapping.items()}
    return {section: dict(config.get(section, {})) for section in SECTIONS}


def _check_model_options(options: Any, section: str, file: Path) -> None:
    # TOML has booleans, so a quoted "no" or "False" is a mistake, and a string is truthy:
    # trust is refused here, before any model is opened, and the adapter checks the rest
    # against the types it declares.
    where = f"[{section}] options in {str(file)!r}"
    if not isinstance(options, dict):
        raise InvalidInputError(
            f"expected {where} to be a table such as options = {{ trust = false }}; got {options!r}"
        )
    trust = options.get("trust", False)
    if not isinstance(trust, bool):
        shown = f"the string {trust!r}" if isinstance(trust, str) else repr(trust)
        raise InvalidInputError(
            f"expected trust in {where} to be true or false, a TOML boolean without quotes; "
            f"got {shown}. Write trust = true only for a model file from a source you trust"
        )
