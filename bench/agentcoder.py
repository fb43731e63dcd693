"""Benchmark: iterations and wall time of the AgentCoder loop (programmer -> executor retry edge) per scenario.

Scripted programmer answers (no model latency), real executor: static checks, the script in the sandbox against the
simulated lab, then the test designer's tests. One command: ``.venv/bin/python bench/agentcoder.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import pcr  # noqa: E402
from tests.support.fake_chat import tool_reply  # noqa: E402

from wei_gen.nodes.code import ScriptDraft  # noqa: E402
from wei_gen.session import WEIGen  # noqa: E402


def code(script: str) -> object:
    return tool_reply(ScriptDraft, ScriptDraft(script=script))


SCENARIOS = {
    "correct on the first try": [pcr.SCRIPT],
    "invented API, then fixed": [pcr.SCRIPT.replace("client.start_run(", "client.run_workflow("), pcr.SCRIPT],
    "undeclared parameter, then fixed": [pcr.SCRIPT.replace('"temp"', '"temperature"'), pcr.SCRIPT],
    "hopeless (bound 3)": [pcr.SCRIPT.replace('raise SystemExit(f"the run failed', 'return None  # ("the run failed')],
}


def main() -> None:
    table = Table(title="AgentCoder loop (code phase only; scripted programmer, real sandboxed executor)")
    for column in ("scenario", "status", "iterations", "code phase s", "s per iteration"):
        table.add_column(column, justify="left" if column in ("scenario", "status") else "right")
    for name, scripts in SCENARIOS.items():
        model = pcr.scripted_model(code=tuple(code(s) for s in scripts))
        with tempfile.TemporaryDirectory() as tmp, WEIGen(context=pcr.context_for(model), data_dir=tmp) as app:
            session = app.new_session()
            session.framework_step(pcr.DESCRIPTION, pcr.VALUES)
            session.workflow_step()
            start = time.perf_counter()
            status = session.code_step()
            seconds = time.perf_counter() - start
            attempts = session.state()["code_attempts"]
        table.add_row(name, status.state, str(attempts), f"{seconds:.1f}", f"{seconds / attempts:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
