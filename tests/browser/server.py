"""Start the real wei-gen server (``langgraph dev`` with the repository's ``langgraph.json``) for the browser test.

The server runs as a subprocess on a free loopback port with a throwaway data directory and config file (one API
token, the example lab) and talks to a scripted OpenAI-compatible server; its ``.langgraph_api`` files go to a
temporary copy of ``langgraph.json`` whose paths point back at the repository, so the work tree stays clean.

``python -m tests.browser.server`` starts the same stack by hand (for looking at the page in a browser).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAB_DIR = ROOT / "examples" / "labs" / "rpl_like"
START_TIMEOUT = 120.0
"""Seconds to wait for the server to answer (it imports langgraph, chromadb and z3 on a loaded 2-core box)."""
_DROP_ENV = ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "WEI_GEN_CONFIG",
             "WEI_GEN_LAB", "WEI_GEN_DATA_DIR", "WEI_GEN_CHECKPOINTER", "WEI_GEN_API_TOKEN", "HTTP_PROXY",
             "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")  # fmt: skip


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _absolute(ref: str) -> str:
    """A langgraph.json reference (``./file.py:obj`` or ``module:obj``) that works from another directory."""
    return str(ROOT / ref) if ref.startswith(("./", "../")) else ref


def write_langgraph_json(where: Path) -> Path:
    """A copy of the repository's langgraph.json with its file paths made absolute."""
    config: dict[str, Any] = json.loads((ROOT / "langgraph.json").read_text(encoding="utf-8"))
    config["dependencies"] = [str(ROOT) if d == "." else _absolute(d) for d in config.get("dependencies", [])]
    for name, graph in config.get("graphs", {}).items():
        if isinstance(graph, dict):
            graph["path"] = _absolute(graph["path"])
        else:
            config["graphs"][name] = _absolute(graph)
    for section in ("checkpointer", "auth"):
        if isinstance(config.get(section), dict) and "path" in config[section]:
            config[section]["path"] = _absolute(config[section]["path"])
    if isinstance(config.get("http"), dict) and "app" in config["http"]:
        config["http"]["app"] = _absolute(config["http"]["app"])
    where.mkdir(parents=True, exist_ok=True)
    path = where / "langgraph.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


@contextmanager
def wei_gen_server(tmp: Path, *, openai_base_url: str, token: str) -> Iterator[str]:
    """Run ``langgraph dev`` on a free port; yields its base URL; stops it (its whole process group) on exit."""
    config_dir = tmp / "server"
    langgraph_json = write_langgraph_json(config_dir)
    settings = {"data_dir": str(tmp / "data"), "api_tokens": [token], "request_timeout": 10.0, "lab_dir": str(LAB_DIR)}
    wei_gen_config = config_dir / "wei-gen.yaml"
    wei_gen_config.write_text(yaml.safe_dump({"settings": settings}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env |= {
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGSMITH_TRACING": "false",
        "WEI_GEN_CONFIG": str(wei_gen_config),
        "OPENAI_BASE_URL": openai_base_url,
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    log_path = tmp / "server.log"
    langgraph = Path(sys.executable).with_name("langgraph")
    cmd = [str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port),
           "--config", str(langgraph_json)]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=config_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc, log_path)
        yield base
    finally:
        _stop(proc)


def _wait_until_up(base: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{_tail(log_path)}")
        try:
            if httpx.get(f"{base}/ok", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server we started: SIGTERM to its own process group, SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def main() -> None:
    """Start the scripted model and the server by hand; print the URL and the token; stop on Ctrl-C."""
    import tempfile

    from tests.browser.scenario import scripted_rules
    from tests.support.scripted_openai import ScriptedOpenAI

    token = "dev-token"
    with (
        tempfile.TemporaryDirectory(prefix="wei-gen-web-") as tmp,
        ScriptedOpenAI(scripted_rules()) as model,
        wei_gen_server(Path(tmp), openai_base_url=model.base_url, token=token) as base,
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
