"""Errors and alerts in the command line's own words.

The library's messages name its Python parameters (``size=(height, width)``,
``on_error='skip'``, ``batch_size``), which is right for a Python user and confusing for
someone who typed ``imacs compare``. The CLI passes each message it shows through
:func:`in_cli_terms`, which rewrites those spellings into the options of the command that
ran. Only the spellings listed here are rewritten, so a message with none of them is
shown as the library wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: compare()'s keyword parameters and the options of ``imacs compare`` that set them
COMPARE_OPTIONS = {
    "batch_size": "--batch-size",
    "n_clusters": "--n-clusters",
    "top_k": "--top-k",
    "area_fraction": "--area-fraction",
    "map_sign": "--map-sign",
    "n_permutations": "--n-permutations",
    "min_effect": "--min-effect",
    "causal_clusters": "--causal-clusters",
    "causal_max_images": "--causal-max-images",
    "embedding_model": "--embedding-model",
    "ignore_alerts": "--ignore-alert",
    "method_params": "--method-option",
    "segmenter_params": "--segmenter-option",
    "featurizer_params": "--featurizer-option",
    "metric_params": "--metric-option",
    "clusterer_params": "--clusterer-option",
    "quality_params": "--quality-option",
    "quality_images": "--quality-images",
}
#: words that are options only where the message names them as a parameter
_PLAIN_WORDS = ("alpha", "seed", "causal", "targets", "clusterer", "segmenter", "method")

Rewrite = tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]


def _json_value(match: re.Match[str]) -> str:
    """``method_params={'n_steps': 64}`` -> ``--method-option n_steps=64``."""
    value = match.group("value").strip()
    if value.startswith("(") and value.endswith(")"):
        value = "[" + value[1:-1] + "]"  # a tuple is a JSON list on the command line
    return f"{match.group('option')} {match.group('key')}={value.replace(' ', '')}"


def _rewrites(command: str) -> list[Rewrite]:
    preprocessing = "--{0}" if command != "compare" else "--{0} (or --{0}-a, --{0}-b)"
    rules: list[Rewrite] = [
        (re.compile(r"size=\(height, width\)"), "--size HEIGHTxWIDTH"),
        (re.compile(r"on_error='skip'"), "--skip-unreadable"),
        (re.compile(r"pass labels=,"), "pass --labels,"),
        (re.compile(r"\blabels= was passed"), "--labels was given"),
        (re.compile(r"\btargets='(\w+)'"), r"--targets \1"),
        (re.compile(r"convert_grayscale=True"), "--convert-grayscale"),
        (
            re.compile(r"convert the images \(e\.g\. grey to RGB with np\.repeat\([^)]*\)\)"),
            "pass --convert-grayscale to give grey images three channels",
        ),
        (
            re.compile(r"an adapter's preprocessing, e\.g\. preprocessing=\{'scale': 1/255\}"),
            "--scale 1/255" if command != "compare" else "--scale 1/255 (or --scale-a, --scale-b)",
        ),
        (
            re.compile(r"ignore_alerts=\['([\w-]+)'\]"),
            r"--ignore-alert \1",
        ),
        (
            re.compile(r"give its adapter preprocessing=\{'scale': ([^}]+)\}"),
            r"pass --scale \1"
            if command != "compare"
            else r"pass --scale-a \1 (model A) or --scale-b \1 (model B)",
        ),
        (
            re.compile(r"pass class_mapping=\{class of A: class of B\}"),
            "set class_mapping (class of A = class of B) in the [compare] section of imacs.toml",
        ),
        (
            re.compile(r"\(class_mapping= for the other model\)"),
            "(class_mapping in the [compare] section of imacs.toml, for the other model)",
        ),
        (
            re.compile(r"\bpreprocessing (mean|std)\b"),
            lambda m: preprocessing.format(m.group(1)),
        ),
        (
            re.compile(r"(?P<option>method_params)=\{'(?P<key>\w+)': (?P<value>\([^)]*\)|[^}]*)\}"),
            lambda m: _json_value(m).replace("method_params", "--method-option"),
        ),
    ]
    for name, option in COMPARE_OPTIONS.items():
        rules.append((re.compile(rf"\b{name}\b=?"), option))
    for word in _PLAIN_WORDS:
        # "expected alpha in (0, 1)", "unknown causal 'x'", "expected seed to be ..."
        rules.append((re.compile(rf"\b(expected|unknown) {word}\b"), rf"\1 --{word}"))
    return rules


def in_cli_terms(message: str, command: str) -> str:
    """``message`` with the library's parameter spellings replaced by ``command``'s options."""
    for pattern, replacement in _rewrites(command):
        message = pattern.sub(replacement, message)
    return message
