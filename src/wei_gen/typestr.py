"""Lenient parsing of the type strings found in module abouts, and checking values against them.

WEI's RESTModule writes types with ``pretty_type_repr``, which concatenates sub-types with no separator
(``Union[List[float]str]``, ``Optional[floatNoneType]``); hand-written abouts use plain names (``str``) or lists
(``"[str, Path]"``). We tokenise known names out of such runs and treat anything we do not know as "accepts anything",
because a wrong "type mismatch" on a real lab's about is worse than a missed one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

KNOWN_NAMES = (
    "NoneType",
    "None",
    "Optional",
    "Union",
    "Annotated",
    "Literal",
    "List",
    "list",
    "Dict",
    "dict",
    "Tuple",
    "tuple",
    "Set",
    "set",
    "Any",
    "str",
    "int",
    "float",
    "bool",
    "datetime",
    "Path",
    "bytes",
    "object",
)
_ALIASES = {
    "list": "List",
    "dict": "Dict",
    "tuple": "List",
    "Tuple": "List",
    "set": "List",
    "Set": "List",
    "None": "NoneType",
}
_TOKEN = re.compile(r"""[A-Za-z_][\w.]*|\[|\]|,|'[^']*'|"[^"]*"|-?\d+(?:\.\d+)?|\S""")


@dataclass(frozen=True)
class TypeNode:
    """A parsed type: a name with optional type arguments (``literals`` for ``Literal[...]``)."""

    name: str
    args: tuple[TypeNode, ...] = ()
    literals: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        """Render with commas, e.g. ``Union[List[float], str]``."""
        if self.literals:
            return f"Literal[{', '.join(repr(x) for x in self.literals)}]"
        if not self.args:
            return self.name
        return f"{self.name}[{', '.join(str(a) for a in self.args)}]"


ANY = TypeNode("Any")


def _split_run(run: str) -> list[str]:
    """Split an identifier run such as ``floatNoneType`` into known names; unknown runs stay whole."""
    if run in KNOWN_NAMES or "." in run:
        return [run.rsplit(".", 1)[-1]]
    best: list[list[str] | None] = [None] * (len(run) + 1)
    best[0] = []
    for i in range(len(run)):
        prefix = best[i]
        if prefix is None:
            continue
        for name in KNOWN_NAMES:
            if run.startswith(name, i) and best[i + len(name)] is None:
                best[i + len(name)] = [*prefix, name]
    return best[len(run)] or [run]


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    for tok in _TOKEN.findall(text):
        out.extend(_split_run(tok) if re.match(r"[A-Za-z_]", tok) else [tok])
    return out


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def seq(self) -> list[TypeNode | str]:
        """Parse items up to a closing bracket (or the end); commas are optional, as WEI omits them."""
        items: list[TypeNode | str] = []
        while (tok := self.peek()) is not None and tok != "]":
            if tok == ",":
                self.take()
                continue
            items.append(self.item())
        if self.peek() == "]":
            self.take()
        return items

    def item(self) -> TypeNode | str:
        tok = self.take()
        if tok == "[":  # a bare list such as "[str, Path]" in hand-written abouts: any of these
            return _union([i for i in self.seq() if isinstance(i, TypeNode)])
        if tok[0] in "'\"" or re.match(r"-?\d", tok):
            return tok.strip("'\"")
        if not re.match(r"[A-Za-z_]", tok):
            return ANY
        name = _ALIASES.get(tok, tok)
        if self.peek() != "[":
            return TypeNode(name)
        self.take()
        inner = self.seq()
        if name == "Literal":
            return TypeNode("Literal", literals=tuple(str(i) for i in inner))
        nodes = tuple(i for i in inner if isinstance(i, TypeNode))
        if name == "Annotated":  # metadata after the first argument does not change the type
            return nodes[0] if nodes else ANY
        if name == "Optional":
            return _union([*nodes, TypeNode("NoneType")])
        return TypeNode(name, nodes)


def _union(nodes: list[TypeNode]) -> TypeNode:
    """Build a flat union without repeats (``Optional[floatNoneType]`` already names NoneType)."""
    flat: list[TypeNode] = []
    for node in nodes:
        for alt in node.args if node.name == "Union" else (node,):
            if alt not in flat:
                flat.append(alt)
    if not flat:
        return ANY
    return flat[0] if len(flat) == 1 else TypeNode("Union", tuple(flat))


@lru_cache(maxsize=4096)
def _parse_one(text: str) -> TypeNode:
    items = _Parser(_tokens(text)).seq()
    return _union([i for i in items if isinstance(i, TypeNode)])


def parse_type(type_text: str | list[str] | None) -> TypeNode:
    """Parse an about ``type`` (a string, or a list of strings meaning "any of these") leniently."""
    if type_text is None:
        return ANY
    if isinstance(type_text, list):
        return _union([_parse_one(t) for t in type_text])
    return _parse_one(type_text)


def alternatives(node: TypeNode) -> tuple[TypeNode, ...]:
    """Flatten unions: the types a value may have."""
    if node.name == "Union":
        return tuple(alt for arg in node.args for alt in alternatives(arg))
    return (node,)


def is_coordinate_type(node: TypeNode) -> bool:
    """Whether the type takes coordinates (a list), i.e. an arg WEI fills from the workcell location table."""
    return any(alt.name == "List" for alt in alternatives(node))


def accepts_string(node: TypeNode) -> bool:
    """Whether a plain string is a legal value (str, Path, datetime, Any or a type we do not know)."""
    return any(alt.name not in _NON_STRING for alt in alternatives(node))


_NON_STRING = {"int", "float", "bool", "List", "Dict", "NoneType", "bytes"}


class Fit(Enum):
    """How well a value fits a type."""

    OK = "ok"
    COERCIBLE = "coercible"  # e.g. "700" for an int: usually works, worth a warning
    MISMATCH = "mismatch"


def check_value(node: TypeNode, value: Any) -> Fit:
    """Return how ``value`` (as YAML gives it) fits ``node``; the best fit over union alternatives."""
    best = Fit.MISMATCH
    for alt in alternatives(node):
        fit = _check_alt(alt, value)
        if fit is Fit.OK:
            return fit
        if fit is Fit.COERCIBLE:
            best = fit
    return best


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_alt(alt: TypeNode, value: Any) -> Fit:  # noqa: PLR0911 - one branch per base type reads best
    name = alt.name
    if name not in _KNOWN_BASES:
        return Fit.OK  # a type we do not model (UploadFile, a custom class): do not guess
    if name in ("Any", "object"):
        return Fit.OK
    if name == "NoneType":
        return Fit.OK if value is None else Fit.MISMATCH
    if name in ("str", "Path", "datetime"):
        return Fit.OK if isinstance(value, str) else Fit.MISMATCH
    if name == "Literal":
        return Fit.OK if not alt.literals or str(value) in alt.literals else Fit.MISMATCH
    if name == "bool":
        if isinstance(value, bool):
            return Fit.OK
        if value in (0, 1) or (isinstance(value, str) and value.lower() in ("true", "false")):
            return Fit.COERCIBLE
        return Fit.MISMATCH
    if name in ("int", "float"):
        if isinstance(value, bool):
            return Fit.MISMATCH
        if isinstance(value, int) or (name == "float" and isinstance(value, float)):
            return Fit.OK
        if isinstance(value, float) and value.is_integer():
            return Fit.COERCIBLE
        if isinstance(value, str) and _is_number_text(value.strip()):
            return Fit.COERCIBLE
        return Fit.MISMATCH
    if name == "List":
        if not isinstance(value, list):
            return Fit.MISMATCH
        if not alt.args:
            return Fit.OK
        fits = [check_value(alt.args[0], item) for item in value]
        if Fit.MISMATCH in fits:
            return Fit.MISMATCH
        return Fit.COERCIBLE if Fit.COERCIBLE in fits else Fit.OK
    if name == "Dict":
        return Fit.OK if isinstance(value, dict) else Fit.MISMATCH
    if name == "bytes":
        return Fit.OK if isinstance(value, str | bytes) else Fit.MISMATCH
    return Fit.OK


_KNOWN_BASES = {
    "Any",
    "object",
    "NoneType",
    "str",
    "Path",
    "datetime",
    "Literal",
    "bool",
    "int",
    "float",
    "List",
    "Dict",
    "bytes",
}


def describe_value(value: Any) -> str:
    """Name a YAML value's kind for messages (``a list``, ``the string "700"``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
