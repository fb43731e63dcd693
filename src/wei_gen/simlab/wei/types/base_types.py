"""Base model, metadata, ids and path types of the simulated ``wei`` (mirrors ``wei.types.base_types`` 0.7.4)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Self, Union

import yaml
from pydantic import AliasChoices, Field, model_validator
from pydantic import BaseModel as _BaseModel

PathLike = Union[str, Path]  # noqa: UP007 - the public alias WEI exports
"""A path given as a string or a ``Path``."""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_factory() -> str:
    """A new ULID string (48-bit millisecond time + 80 random bits, Crockford base32)."""
    number = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))


def _is_ulid(text: str) -> bool:
    upper = text.upper()
    return len(upper) == 26 and upper[0] in "01234567" and all(c in _CROCKFORD for c in upper)


class BaseModel(_BaseModel, use_enum_values=True):
    """WEI's base model: enum values stored as plain values, YAML round trips, ``id``/``*_id`` fields must be ULIDs."""

    def write_yaml(self, path: PathLike) -> None:
        """Write the model as YAML."""
        with open(path, mode="w") as handle:
            yaml.dump(json.loads(self.model_dump_json()), handle, indent=4, sort_keys=False)

    @classmethod
    def from_yaml(cls, path: PathLike) -> Self:
        """Load the model from a YAML file."""
        with open(path) as handle:
            raw_data: Any = yaml.safe_load(handle)
        return cls(**raw_data)

    @model_validator(mode="after")
    def validate_ulids(self) -> Self:
        """Every ``id`` or ``*_id`` field that is set must hold a valid ULID."""
        for field in type(self).model_fields:
            if field == "id" or field.endswith("_id"):
                value = getattr(self, field)
                if value and not _is_ulid(str(value)):
                    raise ValueError(f"Invalid ULID in field {field}")
        return self


class Metadata(BaseModel, extra="allow"):
    """Metadata of a workflow or workcell; ``info`` is accepted for ``description``."""

    author: str | None = None
    """Who wrote this object."""
    description: str | None = Field(default=None, validation_alias=AliasChoices("description", "info"))
    """Description of the object."""
    version: float | str = ""
    """Version of the object."""
