"""The stack of the browser test (scripted model + real wei-gen server), to start by hand and look at the page.

``python -m tests.browser.server`` runs `ScriptedOpenAI` with the browser test's answers and ``langgraph dev``
(`tests.support.serving.LangGraphServer`: one API token, the example lab, a throwaway data directory) until Ctrl-C.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.scripted_openai import ScriptedOpenAI
from tests.support.serving import LangGraphServer

START_TIMEOUT = 120.0
"""Seconds to wait for the server to answer (it imports langgraph, chromadb and z3 on a loaded 2-core box)."""
REQUEST_TIMEOUT = 10.0
"""The server's model-call timeout: a scripted answer is instant, so a hang fails fast."""


@contextmanager
def web_server(workdir: Path, model: ScriptedOpenAI, token: str) -> Iterator[str]:
    """Run the wei-gen server for the page on the scripted ``model``; yields its base URL; stops it on exit."""
    server = LangGraphServer(workdir, model.base_url, [token], request_timeout=REQUEST_TIMEOUT)
    try:
        yield server.start(timeout=START_TIMEOUT).url
    finally:
        server.stop()


def main() -> None:
    """Start the scripted model and the server; print the URL and the token; stop on Ctrl-C."""
    from tests.browser.scenario import scripted_rules

    token = "dev-token"
    with (
        tempfile.TemporaryDirectory(prefix="wei-gen-web-") as tmp,
        ScriptedOpenAI(scripted_rules()) as model,
        web_server(Path(tmp) / "server", model, token) as base,
    ):
        sys.stdout.write(f"wei-gen at {base}/  token: {token}  (Ctrl-C stops)\n")
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
