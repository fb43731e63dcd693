"""Access to ../shared/wei-corpus for tests and benchmarks; everything here is skipped when the corpus is absent."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from wei_gen.lab import Lab, lab_from_files

CORPUS = Path(os.environ.get("WEI_GEN_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "wei-corpus"))
SKIP_REASON = f"WEI corpus not found at {CORPUS} (set WEI_GEN_CORPUS; it lives in ../shared on developer machines)"


def available() -> bool:
    """Whether the corpus folder is there."""
    return (CORPUS / "MANIFEST.md").is_file()


@dataclass(frozen=True)
class CorpusWorkflow:
    """A corpus workflow with the workcell MANIFEST.md pairs it with."""

    path: Path
    workcell: Path | None
    approx: bool

    @property
    def name(self) -> str:
        return self.path.name


_ROW = re.compile(r"^\| `(workflows/[^`]+)` \|.*\| ([^|]*) \|\s*$")


@cache
def workflows() -> list[CorpusWorkflow]:
    """Every workflow listed in MANIFEST.md with its workcell (None when the manifest names none)."""
    out = []
    for line in (CORPUS / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        cell = match.group(2).strip()
        workcell = cell.split(" (")[0].strip() if cell.startswith("workcells/") else None
        out.append(CorpusWorkflow(CORPUS / match.group(1), CORPUS / workcell if workcell else None, "approx" in cell))
    return out


@cache
def labs_map() -> dict[str, dict[str, str | None]]:
    """LABS.yaml: workcell path -> {module name: about path or None}."""
    data = yaml.safe_load((CORPUS / "LABS.yaml").read_text(encoding="utf-8"))
    return {k: dict(v or {}) for k, v in data.items()}


@cache
def lab_for(workcell: Path) -> Lab:
    """The lab LABS.yaml describes for a corpus workcell."""
    key = str(workcell.relative_to(CORPUS))
    abouts = {m: (CORPUS / p if p else None) for m, p in labs_map().get(key, {}).items()}
    return lab_from_files(workcell, abouts, strict=True)
