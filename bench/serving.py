"""Benchmark: sessions per second and latency of the REST server under concurrent sessions, against the ideal.

Starts ``langgraph dev`` with our config (``tests/support/serving.py``: temporary data directory, explicit free port,
offline) and the scripted OpenAI-compatible server, which waits ``--latency`` seconds (default 0.2) before every
answer. For each concurrency N it starts N sessions at once over HTTP (``POST /session/init``, run ``--run``), polls
each session's history until no run is in progress, and reports:

* sessions/s: N / wall time from the first request to the last session finished;
* latency p50 / p95: per session, from its ``init`` request to the poll that saw it finished (0.25 s polling);
* ideal: model time only — the calls one session makes x latency — with unlimited parallelism, i.e. latency =
  calls x latency and sessions/s = N / that.

The full run (``--run all``) includes the code phase's sandbox (a Python subprocess running the script and its
tests), which is real work, not model time; ``--run framework`` measures feasibility and plan only.

Run from the repository root::

    .venv/bin/python bench/serving.py [--sessions 1,4,16] [--latency 0.2] [--run all|framework]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for tests.support: the scripted server, the tagged scenario, the server runner

from tests.support.scripted_openai import ScriptedOpenAI  # noqa: E402
from tests.support.serving import LangGraphServer, tagged_rules, tagged_scenario  # noqa: E402

TOKEN = "bench-token"
POLL = 0.25


def one_session(api: httpx.Client, tag: str, run: str) -> tuple[float, str]:
    """Start a session, poll until it is idle; (seconds, final state)."""
    scn = tagged_scenario(tag)
    start = time.perf_counter()
    response = api.post(
        "/session/init", json={"user_description": scn.description, "user_values": scn.values, "run": run}
    )
    response.raise_for_status()
    sid = response.json()["session_id"]
    while True:
        history = api.get(f"/session/{sid}/history").json()
        if not history["wei_gen"]["running"]:
            return time.perf_counter() - start, str(history["wei_gen"]["status"]["state"])
        time.sleep(POLL)


def p95(values: list[float]) -> float:
    """95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered) + 0.5) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,4,16", help="comma-separated concurrency levels")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the scripted model waits per call")
    parser.add_argument("--run", default="all", choices=("all", "framework"))
    args = parser.parse_args()
    levels = [int(n) for n in args.sessions.split(",")]
    console = Console()
    tags = [f"b{n}x{i}" for n in levels for i in range(n)]
    rules = [r for tag in ["warm", *tags] for r in tagged_rules(tag, delay=args.latency)]
    table = Table(title=f"REST server, scripted model at {args.latency * 1000:.0f} ms per call, run={args.run}")
    for column in (
        "N",
        "wall s",
        "sessions/s",
        "ideal sessions/s",
        "p50 s",
        "p95 s",
        "ideal latency s",
        "calls/session",
        "done",
    ):
        table.add_column(column, justify="right")
    with ScriptedOpenAI(rules) as model, tempfile.TemporaryDirectory() as tmp:
        server = LangGraphServer(Path(tmp) / "server", model.base_url, [TOKEN], jobs=max(levels))
        try:
            server.start()
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300) as api:
                one_session(api, "warm", args.run)  # imports, lab cache, sandbox warm-up
                for n in levels:
                    before = len(model.requests)
                    start = time.perf_counter()
                    with ThreadPoolExecutor(n) as pool:
                        results = list(
                            pool.map(
                                lambda tag: one_session(api, tag, args.run), [t for t in tags if t.startswith(f"b{n}x")]
                            )
                        )
                    wall = time.perf_counter() - start
                    calls = (len(model.requests) - before) / n
                    ideal = calls * args.latency
                    latencies = [r[0] for r in results]
                    done = sum(r[1] == "done" for r in results)
                    row = [n, wall, n / wall, n / ideal, statistics.median(latencies), p95(latencies), ideal, calls]
                    table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row), f"{done}/{n}")
        finally:
            server.stop()
    console.print(table)
    console.print(f"[dim]{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; polling every {POLL} s[/]")


if __name__ == "__main__":
    main()
