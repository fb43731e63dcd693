"""Benchmark: what the pipeline costs on top of the model calls, and how much it sends to the models.

Runs ``--sessions`` full sessions (``WEIGen.new_session().execute_experiment(...)``) through the real ``ChatOpenAI``
against the scripted OpenAI-compatible server (``tests/support/scripted_openai.py``), which waits ``--latency``
seconds before every answer, with SQLite checkpoints in a temp directory. Per session it compares the wall time
with the model time (chat requests the server received x latency) and the sandbox time (the code check's sandboxed
Python runs of the generated script and its tests, timed around ``run_python``): overhead = wall - model time -
sandbox time, ratio = (wall - sandbox time) / model time (goal <= 1.05), end-to-end ratio = wall / model time. It
also counts model calls, checkpoints, prompt characters (the request messages as sent, and the ``usage`` the session
records) and tokens (the server estimates 4 characters per token).

Two more measurements explain the overhead:

* transport: the same request bodies replayed with the ``openai`` SDK against the server at zero latency, i.e. what
  HTTP, JSON and the in-process server cost without LangChain and the graph;
* per node (``--node-sessions``): extra sessions run with ``stream_mode="updates"``; each node's time minus its
  model calls x latency.

Run from the repository root::

    .venv/bin/python bench/graph_overhead.py [--sessions 5] [--latency 0.1] [--scenario pcr_plate]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support: the scripted server and the scenarios

from tests.support.scenarios import SCENARIOS, Scenario, openai_context, openai_rules  # noqa: E402
from tests.support.scripted_openai import RecordedRequest, ScriptedOpenAI  # noqa: E402

from wei_gen.session import Session, WEIGen, values_text  # noqa: E402
from wei_gen.tools import executor  # noqa: E402

GOAL = 1.05
CHAT_PATH = "/v1/chat/completions"

console = Console(highlight=False)
if not console.is_terminal:  # piped or redirected: do not squeeze the table into 80 columns
    console = Console(highlight=False, width=200)


class SandboxClock:
    """Seconds spent in the code check's sandboxed runs: wraps the ``run_python`` the executor calls, while active."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.runs = 0
        self._original = executor.run_python  # type: ignore[attr-defined]

    def _timed(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._original(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.runs += 1

    def __enter__(self) -> SandboxClock:
        executor.run_python = self._timed  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        executor.run_python = self._original  # type: ignore[attr-defined]


@dataclass
class Run:
    """One full session."""

    status: str
    wall: float
    calls: int
    model_time: float
    request_chars: int
    usage_calls: int
    usage_chars: int
    prompt_tokens: int
    completion_tokens: int
    checkpoints: int
    unmatched: int
    requests: list[RecordedRequest]
    sandbox: float
    sandbox_runs: int
    transport: float = 0.0

    @property
    def overhead(self) -> float:
        """Seconds spent outside the model calls and the sandboxed runs."""
        return self.wall - self.model_time - self.sandbox

    @property
    def ratio(self) -> float:
        """Wall time without the sandboxed runs over model time (the goal's ratio)."""
        return (self.wall - self.sandbox) / self.model_time if self.model_time else float("inf")

    @property
    def e2e_ratio(self) -> float:
        """Wall time over model time."""
        return self.wall / self.model_time if self.model_time else float("inf")


def message_chars(request: RecordedRequest) -> int:
    """Characters of a request's message contents (text parts of list contents included)."""
    total = 0
    for message in (request.body or {}).get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(part.get("text", "")) for part in content if isinstance(part, dict))
    return total


def chat_requests(server: ScriptedOpenAI, first: int) -> list[RecordedRequest]:
    """Chat-completion requests the server received since index ``first``."""
    return [r for r in server.requests[first:] if r.path == CHAT_PATH]


def run_session(app: WEIGen, server: ScriptedOpenAI, scenario: Scenario, latency: float) -> Run:
    """Run one scripted session with ``execute_experiment`` and measure it."""
    server.add(*openai_rules(scenario))  # a fresh answer queue for this session
    first = len(server.requests)
    with SandboxClock() as sandbox:
        start = time.perf_counter()
        session = app.new_session()
        status = session.execute_experiment(scenario.description, scenario.values)
        wall = time.perf_counter() - start
    chats = chat_requests(server, first)
    usage: dict[str, Any] = session.get_history()["wei_gen"]["usage"]
    return Run(
        status=status.state if status.state != "failed" else f"failed: {status.reason[:60]}",
        wall=wall,
        calls=len(chats),
        model_time=len(chats) * latency,
        request_chars=sum(message_chars(r) for r in chats),
        usage_calls=sum(u["calls"] for u in usage.values()),
        usage_chars=sum(u["prompt_chars"] for u in usage.values()),
        prompt_tokens=sum(u["prompt_tokens"] for u in usage.values()),
        completion_tokens=sum(u["completion_tokens"] for u in usage.values()),
        checkpoints=sum(1 for _ in app.saver.list(session.config)),
        unmatched=sum(1 for r in chats if r.rule is None),
        requests=chats,
        sandbox=sandbox.seconds,
        sandbox_runs=sandbox.runs,
    )


def replay(server: ScriptedOpenAI, scenario: Scenario, run: Run) -> float:
    """Seconds the openai SDK needs to send a session's requests again at zero latency (HTTP + JSON + server)."""
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=30)
    saved, server.latency = server.latency, 0.0
    try:
        server.add(*openai_rules(scenario))
        start = time.perf_counter()
        for request in run.requests:
            client.chat.completions.create(**request.body)
        return time.perf_counter() - start
    finally:
        server.latency = saved
        client.close()


def node_times(session: Session, scenario: Scenario) -> dict[str, tuple[float, int, float]]:
    """Per node: (seconds from the previous update to its own, model calls, sandbox seconds), via "updates"."""
    out: dict[str, tuple[float, int, float]] = {}
    inputs: dict[str, Any] = {
        "entry": "start",
        "description": scenario.description,
        "values": values_text(scenario.values),
    }
    with SandboxClock() as sandbox:
        last, last_sandbox = time.perf_counter(), 0.0
        for update in session.stream(**inputs, stop_after=None):
            now = time.perf_counter()
            for node, change in update.items():
                calls = sum(u.calls for u in ((change or {}).get("usage") or {}).values())
                seconds, before, boxed = out.get(node, (0.0, 0, 0.0))
                out[node] = (seconds + now - last, before + calls, boxed + sandbox.seconds - last_sandbox)
            last, last_sandbox = now, sandbox.seconds
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5, help="measured sessions (default 5)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server waits per call (default 0.1)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="pcr_plate", help="default pcr_plate")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured sessions first (imports, clients; default 1)")
    parser.add_argument("--node-sessions", type=int, default=3, help="extra streamed sessions for the per-node table")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.latency <= 0 or args.warmup < 0 or args.node_sessions < 0:
        parser.error("need --sessions >= 1, --latency > 0, --warmup >= 0 and --node-sessions >= 0")
    make = SCENARIOS[args.scenario]

    nodes: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
    with (
        tempfile.TemporaryDirectory(prefix="wei-gen-bench-") as tmp,
        ScriptedOpenAI(latency=args.latency) as server,
        WEIGen(context=openai_context(server.base_url), checkpointer="", data_dir=tmp) as app,
    ):
        warm = [run_session(app, server, make(), args.latency) for _ in range(args.warmup)]
        runs = [run_session(app, server, make(), args.latency) for _ in range(args.sessions)]
        for run in runs:
            run.transport = replay(server, make(), run)
        for _ in range(args.node_sessions):
            scenario = make()
            server.add(*openai_rules(scenario))
            for node, timing in node_times(app.new_session(), scenario).items():
                nodes[node].append(timing)

    table = Table(
        title=f"Full sessions ({args.scenario}): ChatOpenAI -> scripted server at {args.latency:g} s/call, SQLite"
    )
    columns = (
        "session", "status", "calls", "ckpts", "prompt chars", "usage chars", "prompt tok", "compl. tok",
        "model s", "sandbox s", "wall s", "overhead ms", "transport ms", "ratio", "e2e ratio",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("session", "status") else "right", no_wrap=True)

    def row(label: str, run: Run) -> list[str]:
        return [
            label, run.status, str(run.calls), str(run.checkpoints), f"{run.request_chars:,}", f"{run.usage_chars:,}",
            f"{run.prompt_tokens:,}", f"{run.completion_tokens:,}", f"{run.model_time:.2f}",
            f"{run.sandbox:.3f} ({run.sandbox_runs})", f"{run.wall:.3f}", f"{run.overhead * 1000:.0f}",
            f"{run.transport * 1000:.0f}" if run.transport else "-", f"{run.ratio:.3f}", f"{run.e2e_ratio:.3f}",
        ]  # fmt: skip

    for i, run in enumerate(warm, 1):
        table.add_row(*row(f"warm-up {i}", run), style="dim")
    for i, run in enumerate(runs, 1):
        table.add_row(*row(str(i), run))
    console.print(table)

    if nodes:
        node_table = Table(title=f"Per node (median of {args.node_sessions} streamed sessions)")
        for column in ("node", "model calls", "time ms", "sandbox ms", "minus model and sandbox ms"):
            node_table.add_column(column, justify="left" if column == "node" else "right")
        for node, timings in nodes.items():
            seconds = statistics.median(t for t, _, _ in timings)
            calls = statistics.median(c for _, c, _ in timings)
            boxed = statistics.median(b for _, _, b in timings)
            rest = seconds - calls * args.latency - boxed
            node_table.add_row(node, f"{calls:g}", f"{seconds * 1000:.0f}", f"{boxed * 1000:.0f}", f"{rest * 1000:.0f}")
        console.print(node_table)

    problems = []
    for i, r in enumerate(runs, 1):
        if r.status != "done":
            problems.append(f"session {i}: status {r.status}")
        if r.unmatched:
            problems.append(f"session {i}: {r.unmatched} request(s) without a scripted answer")
        if r.usage_calls != r.calls:
            problems.append(f"session {i}: usage counts {r.usage_calls} calls, the server saw {r.calls}")
        if r.usage_chars != r.request_chars:
            problems.append(
                f"session {i}: usage counts {r.usage_chars} prompt chars, requests carried {r.request_chars}"
            )
    for problem in problems:
        console.print(f"[red]problem[/red] {problem}")

    ratios = [r.ratio for r in runs]
    overhead = statistics.median(r.overhead for r in runs)
    transport = statistics.median(r.transport for r in runs)
    calls = statistics.median(r.calls for r in runs)
    model_time = statistics.median(r.model_time for r in runs)
    sandbox = statistics.median(r.sandbox for r in runs)
    median_ratio = statistics.median(ratios)
    console.print(
        f"median overhead {overhead * 1000:.0f} ms per session ({overhead / calls * 1000:.1f} ms per model call), of "
        f"which transport (openai SDK + HTTP + in-process server) {transport * 1000:.0f} ms; without transport the "
        f"ratio would be {(model_time + overhead - transport) / model_time:.3f}; worst ratio {max(ratios):.3f}; "
        f"sandboxed runs {sandbox * 1000:.0f} ms per session, not counted in the overhead"
    )
    print(
        f"graph overhead: median ratio {median_ratio:.3f} without the sandboxed runs "
        f"({'meets' if median_ratio <= GOAL else 'misses'} the goal <= {GOAL}; end-to-end "
        f"{statistics.median(r.e2e_ratio for r in runs):.3f} with {sandbox:.2f} s of sandboxed runs) over {len(runs)} "
        f"sessions at {args.latency:g} s/call; {calls:g} model calls, "
        f"{statistics.median(r.request_chars for r in runs):,.0f} prompt chars, "
        f"{statistics.median(r.prompt_tokens for r in runs):,.0f} prompt + "
        f"{statistics.median(r.completion_tokens for r in runs):,.0f} completion tokens per run"
    )
    return 1 if any(r.status != "done" or r.unmatched for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
