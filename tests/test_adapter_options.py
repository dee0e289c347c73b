"""Adapter options typed on the command line or in imacs.toml, read as their declared types.

``trust`` decides whether a model file may run code while it loads, so no value but a real
``True`` may switch it on: not the string "False" (truthy in Python), not the TOML string
"no". The property tests feed the reader arbitrary text and require a clean value of the
declared type or an ``InvalidInputError``, never another exception.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from imacs.adapters.function import FunctionAdapter
from imacs.adapters.options import (
    FALSE_WORDS,
    TRUE_WORDS,
    OptionText,
    check_bool,
    convert_options,
    option_types,
    read_option_text,
)
from imacs.adapters.preprocessing import Preprocessing
from imacs.cli import _key_values, cli
from imacs.comparison.config import load_config
from imacs.errors import InvalidInputError

# Every shape of declared type the built-in adapters use.
DECLARED: list[Any] = [
    bool,
    int,
    float,
    str,
    int | None,
    str | int | None,
    str | None,
    dict[str, Any] | None,
    Preprocessing | dict[str, Any] | None,
    str | Callable[..., Any],
    tuple[int, int, int] | None,
    Any,
]

# -- what the command line reads ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        ("true", bool, True),
        ("False", bool, False),
        (" YES ", bool, True),
        ("no", bool, False),
        ("1", bool, True),
        ("0", bool, False),
        ("8", int | None, 8),
        ("none", int | None, None),
        ("0.5", float, 0.5),
        ("0", str | int | None, 0),
        ("logits", str | int | None, "logits"),
        ("cuda:1", str | None, "cuda:1"),
        ("1", str | None, "1"),
        ('{"scale": 0.5}', Preprocessing | dict[str, Any] | None, {"scale": 0.5}),
        ("package.module:build", str | Callable[..., Any], "package.module:build"),
        ("[1, 2]", Any, [1, 2]),
        ("not json", Any, "not json"),
        ("null", Any, None),
    ],
)
def test_text_is_read_as_the_declared_type(text, declared, expected) -> None:
    value = read_option_text("option", text, declared)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "declared", "message"),
    [
        ("maybe", bool, r"'trust' to be true or false; got 'maybe': write it as trust=true"),
        ("", bool, r"'trust' to be true or false; got ''"),
        ("2", bool, r"true or false"),
        ("eight", int | None, r"a whole number or none; got 'eight'"),
        ("1.5", int, r"a whole number"),
        ("[1]", dict[str, Any] | None, r"a JSON object or none"),
    ],
)
def test_text_that_is_not_the_declared_type_is_refused(text, declared, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read_option_text("trust", text, declared)


def test_declared_types_come_from_the_signatures() -> None:
    declared = FunctionAdapter.option_types()
    assert declared["batch_size"] == int | None
    assert declared["fingerprint"] == str | None
    assert "self" not in declared and "model" not in declared

    def load(model: object, *, trust: bool = False, hidden: NotImportedHere = None) -> None:  # noqa: F821
        """Annotations are strings in this module; one that cannot be resolved gives Any."""

    assert option_types(load) == {"trust": bool, "hidden": Any}


def test_typed_bool_options_are_checked_not_converted() -> None:
    declared = {"trust": bool, "batch_size": int | None}
    assert convert_options({"trust": False, "batch_size": 4}, declared) == {
        "trust": False,
        "batch_size": 4,
    }
    assert convert_options({"trust": OptionText("no")}, declared) == {"trust": False}
    for value in ("False", "no", 0, 1, None):
        with pytest.raises(InvalidInputError, match="'trust' to be True or False"):
            convert_options({"trust": value}, declared)


def test_the_cli_keeps_adapter_options_as_text() -> None:
    options = _key_values(
        ("trust=False", "batch_size=8", "expr=a=b"), "--model-option", as_text=True
    )
    assert options == {"trust": "False", "batch_size": "8", "expr": "a=b"}
    assert all(isinstance(value, OptionText) for value in options.values())
    # method parameters keep being read as JSON
    assert _key_values(("n_steps=32",), "--param") == {"n_steps": 32}


# -- properties -----------------------------------------------------------------------------


@given(st.text())
def test_any_text_for_a_bool_option_is_a_bool_or_a_clear_error(text: str) -> None:
    try:
        value = read_option_text("trust", text, bool)
    except InvalidInputError as error:
        assert "'trust' to be true or false" in str(error)
        assert text.strip().casefold() not in (*TRUE_WORDS, *FALSE_WORDS)
    else:
        assert value is (text.strip().casefold() in TRUE_WORDS)
        assert value is True or text.strip().casefold() in FALSE_WORDS


@given(st.sampled_from(TRUE_WORDS + FALSE_WORDS), st.data())
def test_every_spelling_of_the_bool_words_is_read(word: str, data: st.DataObject) -> None:
    spelled = "".join(data.draw(st.sampled_from([c.lower(), c.upper()])) for c in word) + data.draw(
        st.sampled_from(["", " ", "\t"])
    )
    assert read_option_text("trust", spelled, bool) is (word in TRUE_WORDS)


@given(st.text(), st.sampled_from(DECLARED))
def test_any_text_for_any_declared_type_is_a_value_or_a_clear_error(
    text: str, declared: Any
) -> None:
    try:
        read_option_text("option", text, declared)
    except InvalidInputError as error:
        assert "'option'" in str(error)


@given(
    st.one_of(
        st.text(),
        st.integers(),
        st.floats(allow_nan=False),
        st.none(),
        st.lists(st.booleans()),
        st.dictionaries(st.text(), st.booleans()),
    )
)
def test_no_typed_value_but_a_bool_passes_for_trust(value: Any) -> None:
    with pytest.raises(InvalidInputError, match="'trust' to be True or False"):
        check_bool("trust", value)


@given(st.text(alphabet=st.characters(blacklist_characters="="), min_size=1), st.text())
def test_the_cli_splits_any_key_and_value(key: str, raw: str) -> None:
    options = _key_values((f"{key}={raw}",), "--model-option", as_text=True)
    assert options == {key: raw}
    try:
        FunctionAdapter.parse_options({"batch_size": options[key]})
    except InvalidInputError as error:
        assert "batch_size" in str(error)


# -- imacs.toml -----------------------------------------------------------------------------


def write_config(tmp_path: Path, options: str) -> Path:
    config = tmp_path / "imacs.toml"
    config.write_text(
        f'[model_a]\npath = "a.keras"\noptions = {options}\n\n'
        '[model_b]\npath = "b.keras"\n\n[data]\npath = "images"\n'
    )
    return config


@pytest.mark.parametrize("written", ['"no"', '"False"', '"false"', '"true"', "0", "1"])
def test_trust_in_toml_must_be_a_boolean(tmp_path, written) -> None:
    config = write_config(tmp_path, f"{{ trust = {written} }}")
    with pytest.raises(InvalidInputError, match=r"trust in \[model_a\] options .*TOML boolean"):
        load_config(config)
    # imacs compare stops before it opens any model
    result = CliRunner().invoke(
        cli, ["compare", "--config", str(config), "--out", str(tmp_path / "out")]
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "without quotes" in str(result.exception)


def test_toml_booleans_and_other_options_pass(tmp_path) -> None:
    config = write_config(tmp_path, '{ trust = false, device = "cpu" }')
    assert load_config(config)["model_a"]["options"] == {"trust": False, "device": "cpu"}
    with pytest.raises(InvalidInputError, match=r"\[model_a\] options .* to be a table"):
        load_config(write_config(tmp_path, '"trust"'))
