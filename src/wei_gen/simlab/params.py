r"""WEI 0.7.4's client-side ``$parameter`` substitution and server-side ``payload.x`` injection, quirk for quirk.

Our own implementation of what ``wei.core.workflow.insert_parameter_values`` and ``inject_payload`` do
(wei-formats.md §4), including the quirks a script meets on the real lab:

- a declared parameter with a falsy default (``0``, ``false``, ``""``) counts as having no default;
- a string that is exactly ``$name`` takes the raw value; references inside a longer string take ``str(value)``;
- a string with several *different* references gets the first one's value for all of them (0.7.4 replaces every
  match with the value of the reference it is looking at); we reproduce that and report it;
- ``$name}`` without ``{`` is a ``SyntaxError``; an unknown ``${name}`` is a ``KeyError``; an unknown ``$name`` is a
  ``ValueError``;
- step string fields and ``args`` (keys and values, nested dicts) are substituted, list elements and ``files`` not.

Deliberate difference: names are matched with ``[A-Za-z0-9_-]`` (0.7.4's ``[A-z…]`` also admits ``[\\]^`` and a
backtick) and values are inserted literally (0.7.4 passes them to ``re.sub`` as templates).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

_NAME = r"[A-Za-z0-9_\-]"
_EXACT = re.compile(rf"^\${_NAME}*$")
_BRACED = re.compile(r"((?<!\$)\$(?!\$)[A-Za-z0-9_\-{]*)(\})")
_PLAIN = re.compile(rf"((?<!\$)\$(?!\$){_NAME}*)(?!{_NAME})")
STEP_STRING_FIELDS = ("name", "module", "action", "checks", "comment")
"""Step fields WEI substitutes when they are strings (it also substitutes the runtime ``id``)."""


def _unknown(name: str) -> ValueError:
    return ValueError(
        f"Unknown parameter:{name}, please define it in the parameters section of the Workflow Definition."
    )


def substitute(text: str, values: Mapping[str, Any], notes: list[str] | None = None, where: str = "") -> Any:
    """Substitute ``$name`` / ``${name}`` references in one string as WEI 0.7.4 does."""
    if _EXACT.match(text):
        name = text.strip("$")
        if name not in values:
            raise _unknown(text)
        return values[name]
    result = text
    braced = [m[0] for m in _BRACED.findall(text)]
    if braced:
        for ref in braced:
            if len(ref) < 2 or ref[1] != "{":
                raise SyntaxError(f"forgot opening {{ in parameter insertion: {ref}}}")
            value = values[ref.strip("$").strip("{")]  # KeyError for an unknown name, as in 0.7.4
            result = _BRACED.sub(_literal(value), result)
        _note_mixed(text, [r.strip("$").strip("{") for r in braced], notes, where)
    plain = [m for m in _PLAIN.findall(result)]
    if plain:
        current = result
        for ref in plain:
            name = ref.strip("$")
            if name not in values:
                raise _unknown(name)
            current = _PLAIN.sub(_literal(values[name]), current)
        _note_mixed(text, [r.strip("$") for r in plain], notes, where)
        result = current
    return result


def _literal(value: Any) -> Callable[[re.Match[str]], str]:
    """A replacement function inserting ``str(value)`` literally."""
    return lambda _match: str(value)


def _note_mixed(text: str, names: list[str], notes: list[str] | None, where: str) -> None:
    distinct = list(dict.fromkeys(names))
    if notes is not None and len(distinct) > 1:
        notes.append(
            f"{where or 'a string'}: '{text}' refers to {', '.join('$' + n for n in distinct)}; WEI 0.7.4 replaces "
            f"every reference with the value of ${distinct[0]}, so the module gets a wrong value"
        )


def walk_and_replace(
    args: Mapping[Any, Any], values: Mapping[str, Any], notes: list[str], where: str
) -> dict[Any, Any]:
    """Substitute in arg values and keys, recursing into dicts (not lists), as WEI 0.7.4 does."""
    out = copy.deepcopy(dict(args))
    for key, value in args.items():
        if isinstance(value, str):
            out[key] = substitute(value, values, notes, f"{where}.{key}")
        elif isinstance(value, dict):
            out[key] = walk_and_replace(value, values, notes, f"{where}.{key}")
        if isinstance(key, str):
            new_key = substitute(key, values, notes, f"{where}.{key}")
            if new_key != key:
                out[new_key] = out.pop(key)
    return out


def effective_parameters(declared: list[dict[str, Any]], supplied: Mapping[str, Any] | None) -> dict[str, Any]:
    """Supplied values plus defaults; a declared parameter without a (truthy) default must be supplied.

    ``supplied=None`` fails like 0.7.4 does (``AttributeError``) as soon as the workflow declares a parameter.
    """
    if supplied is None:
        if declared:
            raise AttributeError("'NoneType' object has no attribute 'keys'")
        return {}
    values = dict(supplied)
    for param in declared:
        name = str(param.get("name"))
        if name not in values:
            if param.get("default"):
                values[name] = param["default"]
            else:
                raise ValueError(f"Workflow parameter: {name} not provided, and no default value is defined.")
    return values


def insert_parameters(
    steps: list[dict[str, Any]], values: Mapping[str, Any] | None, notes: list[str]
) -> list[dict[str, Any]]:
    """Return substituted copies of the steps (plain dicts with WEI Step keys)."""
    out = []
    for i, step in enumerate(steps):
        new = copy.deepcopy(step)
        for key in STEP_STRING_FIELDS:
            if isinstance(new.get(key), str):
                new[key] = _subst_or_none(new[key], values, notes, f"flowdef[{i}].{key}")
        if isinstance(new.get("args"), dict):
            new["args"] = _walk_or_none(new["args"], values, notes, f"flowdef[{i}].args")
        out.append(new)
    return out


def _subst_or_none(text: str, values: Mapping[str, Any] | None, notes: list[str], where: str) -> Any:
    if values is None:
        if "$" in text:
            raise AttributeError("'NoneType' object has no attribute 'keys'")
        return text
    return substitute(text, values, notes, where)


def _walk_or_none(args: dict[Any, Any], values: Mapping[str, Any] | None, notes: list[str], where: str) -> Any:
    if values is None:
        if _has_dollar(args):
            raise AttributeError("'NoneType' object has no attribute 'keys'")
        return args
    return walk_and_replace(args, values, notes, where)


def _has_dollar(value: Any) -> bool:
    if isinstance(value, str):
        return "$" in value
    if isinstance(value, dict):
        return any(_has_dollar(k) or _has_dollar(v) for k, v in value.items())
    return False


def inject_payload(args: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """Replace top-level arg values that are exactly ``payload.<key>`` (first matching arg per key), as WEI does."""
    if not args:
        return args
    out = dict(args)
    keys, originals = list(args.keys()), list(args.values())
    for key, value in payload.items():
        ref = key if key.startswith("payload.") else f"payload.{key}"
        if ref in originals:
            out[keys[originals.index(ref)]] = value
    return out
