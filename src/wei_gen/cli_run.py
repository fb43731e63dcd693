"""CLI commands for running and serving: ``run``, ``sessions``, ``refine``, ``serve`` (registered on ``wei_gen.cli.app``)."""

from __future__ import annotations

from wei_gen.cli import app  # noqa: F401
