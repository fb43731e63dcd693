"""CLI command ``wei-gen eval``: generation quality over a gold set (registered on ``wei_gen.cli.app``)."""

from __future__ import annotations

from wei_gen.cli import app  # noqa: F401
