"""Module types of the simulated ``wei``: only ``SimpleModule`` (what a workflow's deprecated ``modules:`` holds).

The module/about/interface models of ``wei.types.module_types`` are for module and server authors and are not
provided by the simulated lab.
"""

from __future__ import annotations

from .base_types import BaseModel


class SimpleModule(BaseModel):
    """A ``{name: ...}`` entry of a workflow's deprecated ``modules`` list."""

    name: str
    """Module name."""
