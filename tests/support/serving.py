"""Helpers for tests and benches of the REST server: a ``langgraph dev`` subprocess and tagged scripted sessions.

`LangGraphServer` starts the LangGraph dev server with the repository's ``langgraph.json`` (paths made absolute)
in a temporary working directory and data directory, on an explicit free port, with the offline switches, and
always kills its whole process group (the REST tests, the serving bench and the browser test use it). `tagged_rules`
scripts one seal-the-plate session whose every answer carries a tag, and answers only requests whose prompt carries
that tag, so concurrent sessions cannot borrow each other's answers without it showing in their artifacts.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.scenarios import TASK_SCHEMAS, Scenario, all_agents, seal_plate
from tests.support.scripted_openai import Reply, Rule, rule
from wei_gen.server.serve import OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "examples" / "labs" / "rpl_like"
# The caller's credentials, wei-gen settings and proxies must not reach the server: it talks only to the scripted model.
_SCRUB = ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "WEI_GEN_CONFIG",
          "WEI_GEN_LAB", "WEI_GEN_DATA_DIR", "WEI_GEN_CHECKPOINTER", "WEI_GEN_API_TOKEN", "HTTP_PROXY",
          "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")  # fmt: skip


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def repo_langgraph_config() -> dict[str, Any]:
    """The repository's ``langgraph.json`` with its ``./`` paths made absolute (to run from another directory)."""
    config: dict[str, Any] = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))

    def absolute(spec: str) -> str:
        return str(ROOT / spec[2:]) if spec.startswith("./") else spec

    for entry in config["graphs"].values():
        entry["path"] = absolute(entry["path"])
    config["checkpointer"]["path"] = absolute(config["checkpointer"]["path"])
    config["http"]["app"] = absolute(config["http"]["app"])
    config["auth"]["path"] = absolute(config["auth"]["path"])
    config["dependencies"] = [str(ROOT)]
    return config


def write_wei_gen_config(path: Path, tokens: list[str], **settings: Any) -> Path:
    """A wei-gen config file: every agent on the scripted model, the given API tokens and settings."""
    data = {"settings": {**all_agents("openai:scripted"), "api_tokens": tokens, **settings}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class LangGraphServer:
    """``langgraph dev`` on our config, in ``workdir``, as a subprocess in its own process group."""

    def __init__(
        self,
        workdir: Path,
        model_url: str,
        tokens: list[str],
        *,
        port: int | None = None,
        jobs: int = 16,
        **settings: Any,
    ):
        """Prepare (not start) a server whose models are the scripted server at ``model_url``.

        ``settings`` go to its wei-gen config file (e.g. ``request_timeout``).
        """
        self.workdir, self.port, self.jobs = workdir, port or free_port(), jobs
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "langgraph.json"
        self.config.write_text(json.dumps(repo_langgraph_config(), indent=2), encoding="utf-8")
        wei_config = write_wei_gen_config(workdir / "wei-gen.yaml", tokens, **settings)
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        self.env = {
            **env,
            **OFFLINE_ENV,
            "WEI_GEN_CONFIG": str(wei_config),
            "WEI_GEN_DATA_DIR": str(workdir / "data"),
            "WEI_GEN_LAB": str(LAB_DIR),
            "OPENAI_BASE_URL": model_url,
            "PYTHONUNBUFFERED": "1",  # the log tail in an error shows the server's last words
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "server.log"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> LangGraphServer:
        """Start and wait until ``/ok`` answers."""
        cmd = [
            sys.executable, "-m", "langgraph_cli", "dev", "--config", str(self.config), "--port", str(self.port),
            "--host", "127.0.0.1", "--no-browser", "--no-reload", "--n-jobs-per-worker", str(self.jobs),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"langgraph dev exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"langgraph dev did not come up in {timeout} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the server's process group (a crash: nothing gets to clean up)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        """Terminate the server's process group, killing it if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.proc = None

    def tail(self, lines: int = 60) -> str:
        """The end of the server log."""
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


# -- tagged sessions -------------------------------------------------------------------------------------------------


def tagged_scenario(tag: str) -> Scenario:
    """The seal-the-plate session with ``tag`` in the description, the plan title and the workflow names."""
    scn = seal_plate()
    scn.description = f"{scn.description} [{tag}]"
    plan = scn.answers["plan"][0].model_copy(update={"title": f"Seal a plate {tag}"})
    workflows = [w.model_copy(update={"name": f"Seal {tag}"}) for w in scn.answers["workflow"]]
    scn.answers = {**scn.answers, "plan": [plan], "workflow": workflows}
    return scn


def _has(tag: str, task: str) -> Any:
    def check(body: dict[str, Any]) -> bool:
        text = json.dumps(body.get("messages", []))
        return f"<task>{task}</task>" in text and tag in text

    return check


def tagged_rules(tag: str, delay: float = 0.0) -> list[Rule]:
    """Rules answering one tagged session (any number of times: a re-started run gets answers too)."""
    scn = tagged_scenario(tag)
    lp_yes, lp_no = math.log(scn.p_yes), math.log(1 - scn.p_yes)
    rules = [
        rule(
            Reply.text("yes", logprobs=("yes", [("yes", lp_yes), ("no", lp_no)]), delay=delay),
            when=_has(tag, "feasibility"),
            repeat=True,
        ),
        rule(Reply.text(f"Looks right to me ({tag}).", delay=delay), when=_has(tag, "refine-workflow"), repeat=True),
    ]
    for task, answers in scn.answers.items():
        replies = [Reply.data(a, delay=delay) for a in answers]
        rules.append(rule(*replies, name=TASK_SCHEMAS[task].__name__, when=_has(tag, task), repeat=True))
    return rules


def wait_idle(client: httpx.Client, session_id: str, timeout: float = 240.0) -> dict[str, Any]:
    """Poll a session's history until no run is in progress; the last history."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/session/{session_id}/history")
        response.raise_for_status()
        history: dict[str, Any] = response.json()
        if not history["wei_gen"]["running"]:
            return history
        if time.monotonic() > deadline:
            raise TimeoutError(f"session {session_id} still running after {timeout} s: {history['wei_gen']['status']}")
        time.sleep(0.3)
