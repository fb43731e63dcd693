"""Run the ``wei-gen`` command as a user does: ``python -m wei_gen`` in a fresh process, without colours."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path


def run_cli(
    *args: str | Path, cwd: Path, timeout: float = 60, drop: Iterable[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``python -m wei_gen ARGS`` with ``NO_COLOR``; ``drop`` names environment variables the process must not see."""
    removed = {"FORCE_COLOR", "TTY_COMPATIBLE", *drop}
    env = {k: v for k, v in os.environ.items() if k not in removed}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "wei_gen", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
