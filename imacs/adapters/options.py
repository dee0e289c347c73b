"""Adapter options: the type each one declares, and text typed by a user read as that type.

An adapter declares its options by the keyword parameters of its constructor and of its
``load`` classmethod; their annotations are the options' types. Values arrive two ways:

- typed, from Python or from ``imacs.toml`` (TOML has booleans, integers and floats): they
  are checked, not converted, so an option declared ``bool`` that is given the string
  ``"no"`` is an error, never a truthy value;
- as text, from the command line (``--model-option trust=false``), wrapped in
  :class:`OptionText`: read as the declared type, or refused with
  :class:`~imacs.errors.InvalidInputError` naming the option and what it takes.

``trust`` is a ``bool`` in every adapter: it decides whether a file may run code while it
loads, so nothing but ``True`` may switch that on.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from imacs.errors import InvalidInputError

#: Words the command line accepts for a bool option, compared without case.
TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
#: Words that give an option that may be ``None`` the value ``None``.
NONE_WORDS = ("none", "null")


class OptionText(str):
    """An option's value exactly as the user typed it, to be read as its declared type."""


def option_types(*functions: Callable[..., Any]) -> dict[str, Any]:
    """Option name -> declared type, from the keyword parameters of ``functions``.

    ``self``, ``cls`` and ``model`` are not options. An annotation that cannot be
    resolved (a name imported only for type checkers) gives ``Any``: such an option's
    text is read as JSON when it parses, else kept as a string.
    """
    declared: dict[str, Any] = {}
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # builtins and C functions have no signature
            continue
        namespace = getattr(inspect.unwrap(function), "__globals__", {})
        for p in parameters:
            if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                continue
            if p.name in ("self", "cls", "model"):
                continue
            declared[p.name] = _resolve(p.annotation, namespace)
    return declared


def _resolve(annotation: Any, namespace: dict[str, Any]) -> Any:
    if annotation is inspect.Parameter.empty:
        return Any
    if isinstance(annotation, str):
        try:
            # what typing.get_type_hints does, one parameter at a time so that one
            # unresolvable annotation does not hide the others' types
            return eval(annotation, dict(namespace))
        except Exception:  # TYPE_CHECKING-only names, or newer syntax than this Python
            return Any
    return annotation


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a real ``bool``; otherwise an error saying how to write one."""
    if isinstance(value, bool):
        return value
    shown = (
        f"the string {value!r}" if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
    )
    raise InvalidInputError(
        f"expected option {name!r} to be True or False; got {shown}. Pass a boolean: True "
        f"or False in Python, true or false without quotes in imacs.toml, {name}=true or "
        f"{name}=false on the command line"
    )


def read_option_text(name: str, text: str, declared: Any) -> Any:
    """``text`` typed for option ``name`` read as its ``declared`` type.

    ``bool`` takes true/false, yes/no or 1/0 in any case; ``int`` and ``float`` take
    numbers; an optional type takes ``none`` or ``null``; ``dict`` and ``list`` take JSON;
    ``str`` keeps the text. A union tries its members in order, ``str`` last. A type this
    function does not know (``Any``, a class) takes JSON when the text parses as JSON,
    else the text, and the adapter checks the value. Anything else raises
    :class:`~imacs.errors.InvalidInputError`, never another exception.
    """
    members = _members(declared)
    word = text.strip().casefold()
    if type(None) in members and word in NONE_WORDS:
        return None
    members = [m for m in members if m is not type(None)]
    for member in members:
        found, value = _read_as(member, text, word)
        if found:
            return value
    if str in members:
        return str(text)
    if any(_is_open(m) for m in members) or not members:
        return _json_or_text(text)
    expected = " or ".join(_describe(m) for m in members)
    if type(None) in _members(declared):
        expected += " or none"
    raise InvalidInputError(
        f"expected option {name!r} to be {expected}; got {text!r}: write it as "
        f"{name}={_example(members[0])}"
    )


def convert_options(options: Mapping[str, Any], declared: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with :class:`OptionText` values read as their declared types.

    Typed values are kept as they are, except that an option declared ``bool`` must be
    a ``bool``. Options not in ``declared`` are left for the adapter to refuse by name.
    """
    converted: dict[str, Any] = {}
    for name, value in options.items():
        kind = declared.get(name, Any)
        if isinstance(value, OptionText):
            value = read_option_text(name, str(value), kind)
        elif kind is bool:
            value = check_bool(name, value)
        converted[name] = value
    return converted


# -- reading one member of a declared type --------------------------------------------------


def _members(declared: Any) -> list[Any]:
    origin = typing.get_origin(declared)
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(declared) for m in _members(arg)]
    return [declared]


def _read_as(member: Any, text: str, word: str) -> tuple[bool, Any]:
    """(True, value) if ``text`` reads as ``member``, else (False, None)."""
    if member is bool:
        if word in TRUE_WORDS:
            return True, True
        if word in FALSE_WORDS:
            return True, False
        return False, None
    if member is int:
        try:
            return True, int(word)
        except ValueError:  # not digits, or more digits than Python converts
            return False, None
    if member is float:
        try:
            return True, float(word)
        except ValueError:
            return False, None
    container = typing.get_origin(member) or member
    if container in (dict, list):
        value = _json(text)
        return (True, value) if isinstance(value, container) else (False, None)
    return False, None


def _is_open(member: Any) -> bool:
    """Whether ``member`` is a type this module cannot read text as, left to the adapter."""
    container = typing.get_origin(member) or member
    return member not in (bool, int, float, str) and container not in (dict, list)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return None


def _json_or_text(text: str) -> Any:
    value = _json(text)
    if value is None and text.strip() != "null":
        return str(text)
    return value


def _describe(member: Any) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number"}
    if member in names:
        return names[member]
    return "a JSON object" if (typing.get_origin(member) or member) is dict else "a JSON list"


def _example(member: Any) -> str:
    examples = {bool: "true", int: "8", float: "0.5"}
    if member in examples:
        return examples[member]
    return '{"key": 1}' if (typing.get_origin(member) or member) is dict else "[1, 2]"
