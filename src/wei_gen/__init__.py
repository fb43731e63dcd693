"""wei-gen: plain-language experiments to WEI workflows, code and configs, each checked against the real lab.

``from wei_gen import WEIGen`` gives wei_gen v2's session API; ``wei_gen.graph.graph`` is the compiled pipeline.
Both are imported lazily so that ``wei-gen validate`` starts without loading LangGraph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["WEIGen", "WEIGenError", "__version__"]

if TYPE_CHECKING:
    from wei_gen.session import WEIGen, WEIGenError


def __getattr__(name: str) -> Any:
    """Import the session API on first use."""
    if name in ("WEIGen", "WEIGenError"):
        from wei_gen import session

        return getattr(session, name)
    raise AttributeError(f"module 'wei_gen' has no attribute {name!r}")
