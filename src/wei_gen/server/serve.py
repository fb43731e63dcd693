"""``wei-gen serve``: the LangGraph API server with our graphs, checkpointer, auth and REST app, from anywhere.

``langgraph dev`` reads a ``langgraph.json`` and keeps its thread/run tables in ``.langgraph_api/`` under its
working directory. To run outside the repository, we write a config into the data directory that points at the
installed package's files and start ``langgraph dev`` there, with the variables that keep it offline (no usage
analytics, no version check, no LangSmith tracing).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

import wei_gen

OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
}
"""Environment that keeps ``langgraph dev`` from contacting anything (see ``notes/stack.md`` §3)."""


def package_dir() -> Path:
    """The installed ``wei_gen`` package directory."""
    return Path(wei_gen.__file__).resolve().parent


def langgraph_config() -> dict[str, object]:
    """A ``langgraph.json`` for the installed package (absolute file paths where langgraph needs files)."""
    pkg = package_dir()
    return {
        "dependencies": [str(pkg.parent)],
        "graphs": {
            "wei_gen": f"{pkg / 'graph.py'}:graph",
            "index_examples": f"{pkg / 'index_graph.py'}:index_graph",
        },
        "checkpointer": {"path": f"{pkg / 'checkpoints.py'}:make_checkpointer"},
        # Module paths: loading these by file would duplicate the modules that define our request models.
        "http": {"app": "wei_gen.server.app:app"},
        "auth": {"path": "wei_gen.server.auth:auth"},
        "env": {},
    }


def write_config(data_dir: Path) -> Path:
    """Write the server's ``langgraph.json`` into the data directory and return its path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "langgraph.json"
    path.write_text(json.dumps(langgraph_config(), indent=2) + "\n", encoding="utf-8")
    return path


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port`` (langgraph dev silently moves to another port otherwise)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def new_token() -> str:
    """A random API token for a server started without one."""
    return secrets.token_urlsafe(24)


def server_command(config: Path, host: str, port: int, jobs: int) -> list[str]:
    """The ``langgraph dev`` command line (run with this Python, so the venv's packages are used)."""
    return [
        sys.executable, "-m", "langgraph_cli", "dev", "--config", str(config), "--host", host, "--port", str(port),
        "--no-browser", "--no-reload", "--n-jobs-per-worker", str(jobs),
    ]  # fmt: skip


def server_env(base: Mapping[str, str], data_dir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: the caller's, offline switches, the data directory, and ``extra``."""
    return {**base, **OFFLINE_ENV, "WEI_GEN_DATA_DIR": str(data_dir.resolve()), **extra}


def run_server(data_dir: Path, host: str, port: int, jobs: int, extra_env: Mapping[str, str]) -> int:
    """Write the config and run ``langgraph dev`` in the data directory until it exits; its exit status."""
    import subprocess

    config = write_config(data_dir)
    env = server_env(os.environ, data_dir, extra_env)
    proc = subprocess.Popen(server_command(config, host, port, jobs), cwd=data_dir, env=env)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()
