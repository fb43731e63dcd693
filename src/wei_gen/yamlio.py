"""YAML and JSON reading with errors a scientist can act on (file, line, column), and YAML writing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# libyaml's parser when PyYAML was built with it (5x faster); same marks, same safe constructor.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputError(Exception):
    """A file could not be read or parsed; the message says where and why."""

    def __init__(self, message: str, *, source: str = "", line: int | None = None, column: int | None = None):
        """Keep the location apart so callers can render it (1-based line and column)."""
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column

    def __str__(self) -> str:
        """Render as ``source:line:column: message``."""
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}" if where else self.message


@dataclass
class LoadedYaml:
    """A parsed YAML document plus the line of each ``flowdef`` step (1-based), for diagnostics."""

    data: Any
    step_lines: list[int] = field(default_factory=list)


def read_text(path: Path) -> str:
    """Read a UTF-8 text file or raise :class:`InputError` saying why not."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None


def parse_yaml(text: str, source: str = "<text>") -> LoadedYaml:
    """Parse YAML text, recording step lines; a syntax error becomes an :class:`InputError` with line and column."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context}" if exc.context else ""
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            context += f" that starts at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        context += ")" if context else ""
        raise InputError(
            f"invalid YAML: {problem}{context}",
            source=source,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", source=source) from None
    finally:
        loader.dispose()
    if _is_cyclic(data):
        raise InputError("invalid YAML: an alias refers to the node that contains it (a cycle)", source=source)
    return LoadedYaml(data=data, step_lines=_flowdef_lines(node))


def _is_cyclic(data: Any) -> bool:
    """Whether a YAML alias made a container contain itself (``&a {x: *a}``); such data cannot be a workflow."""
    on_path: set[int] = set()

    def visit(value: Any) -> bool:
        if not isinstance(value, dict | list):
            return False
        if id(value) in on_path:
            return True
        on_path.add(id(value))
        children = value.values() if isinstance(value, dict) else value
        found = any(visit(child) for child in children)
        on_path.discard(id(value))
        return found

    return visit(data)


def _flowdef_lines(node: yaml.Node | None) -> list[int]:
    """Return the 1-based start line of each item of a top-level ``flowdef`` sequence."""
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "flowdef" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def load_yaml_file(path: Path) -> LoadedYaml:
    """Read and parse a YAML file."""
    return parse_yaml(read_text(path), source=str(path))


def load_json_file(path: Path) -> Any:
    """Read and parse a JSON file; a syntax error names line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", source=str(path), line=exc.lineno, column=exc.colno) from None


def dump_yaml(data: Any) -> str:
    """Write block-style YAML in insertion order, keeping non-ASCII text (e.g. µL) readable."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
