"""Sessions survive the process: a full run checkpointed to SQLite or PostgreSQL is read back, typed, by another one.

The PostgreSQL case needs ``WEI_GEN_TEST_POSTGRES=postgresql://...`` (``scripts/start-postgres.sh`` starts a
throwaway cluster and prints one; ``.ci/run`` does this itself). Without it the case is skipped, except under
``CI=true``, where a missing URL fails it so that CI can never skip PostgreSQL silently. Session ids are unique per
run and the sessions are deleted afterwards, so a long-lived database can be reused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.scenarios import fake_context, pcr_plate
from wei_gen.session import SessionNotFoundError, WEIGen

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ENV = "WEI_GEN_TEST_POSTGRES"
SERDE_WARNINGS = ("Deserializing unregistered type", "Blocked deserialization")

# What the state holds after a full run, by key, as "module.Class" (lists and dicts: their items' class).
EXPECTED_TYPES = {
    "feasibility": "wei_gen.state.Feasibility",
    "plan": "wei_gen.state.Plan",
    "shortlist": "wei_gen.state.Shortlist",
    "examples": "wei_gen.state.Example",
    "workflow": "wei_gen.state.WorkflowArtifact",
    "workflow.workflow": "wei_gen.wei_types.Workflow",
    "code": "wei_gen.state.CodeArtifact",
    "config": "wei_gen.state.ConfigArtifact",
    "reports": "wei_gen.tools.validator.ValidationReport",
    "versions": "wei_gen.state.Version",
    "contexts": "wei_gen.state.Turn",
    "usage": "wei_gen.state.Usage",
    "status": "wei_gen.state.Status",
}

# Runs in a new process: load the session by id and report what came back. Line 1 is exactly json.dumps(history).
READER = textwrap.dedent(
    """
    import json, logging, sys

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from tests.integration.test_checkpoints import state_types
    from wei_gen.session import SessionNotFoundError, WEIGen

    spec, data_dir, session_id = sys.argv[1:4]

    with WEIGen(checkpointer=spec, data_dir=data_dir) as app:
        session = app.load_session(session_id)
        history = session.get_history()
        print(json.dumps(history))
        try:
            app.load_session("no-such-session-" + session_id)
            unknown = "loaded"
        except SessionNotFoundError as exc:
            unknown = type(exc).__name__
        report = {"types": state_types(session.state()), "sessions": app.list_sessions(), "unknown": unknown}
        print(json.dumps(report))
    """
)


def truthy(value: str | None) -> bool:
    """Whether an environment flag is on (``true``, ``1``, ``yes``)."""
    return (value or "").strip().lower() in ("1", "true", "yes")


def postgres_url() -> str:
    """The test database URL; skip without one, but fail under ``CI=true`` (CI must never skip PostgreSQL)."""
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if url:
        return url
    if truthy(os.environ.get("CI")):
        pytest.fail(
            f"CI=true but {POSTGRES_ENV} is not set: CI must test PostgreSQL (.ci/run starts it with "
            "scripts/start-postgres.sh and exports the URL)"
        )
    pytest.skip(f"no PostgreSQL: set {POSTGRES_ENV}=postgresql://... (scripts/start-postgres.sh prints one)")


def checkpointer_spec(backend: str, tmp_path: Path) -> str:
    """The checkpointer spec of a backend (a fresh SQLite file, or the test PostgreSQL URL)."""
    return f"sqlite:{tmp_path / 'sessions.sqlite'}" if backend == "sqlite" else postgres_url()


def read_in_new_process(spec: str, data_dir: Path, session_id: str, *, strict: bool) -> tuple[str, dict[str, Any], str]:
    """Load the session in a new Python process: (history JSON line, report, stderr)."""
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true" if strict else "false"}
    proc = subprocess.run(
        [sys.executable, "-c", READER, spec, str(data_dir), session_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"reader failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, f"unexpected reader output:\n{proc.stdout[-3000:]}"
    return lines[0], json.loads(lines[1]), proc.stderr


def state_types(state: Any) -> dict[str, Any]:
    """The reader's ``types`` report, computed in this process."""
    out: dict[str, Any] = {}

    def cls(value: Any) -> str:
        return f"{type(value).__module__}.{type(value).__qualname__}"

    for key, value in state.items():
        if isinstance(value, list):
            out[key] = sorted({cls(v) for v in value})
        elif isinstance(value, dict):
            out[key] = sorted({cls(w) for v in value.values() for w in (v if isinstance(v, list) else [v])})
        else:
            out[key] = cls(value)
    if "workflow" in state:
        out["workflow.workflow"] = cls(state["workflow"].workflow)
    return out


def assert_typed(types: dict[str, Any]) -> None:
    """Every artifact, report and record came back as its pydantic class, not a dict."""
    for key, expected in EXPECTED_TYPES.items():
        got = types.get(key)
        assert got == expected or got == [expected], f"{key}: expected {expected}, got {got}"


@pytest.fixture
def session_id() -> str:
    return f"ckpt-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def cleanup() -> Iterator[list[tuple[str, Path, str]]]:
    """Sessions to delete after the test: (spec, data_dir, session id)."""
    made: list[tuple[str, Path, str]] = []
    yield made
    for spec, data_dir, sid in made:
        with WEIGen(checkpointer=spec, data_dir=data_dir) as app:
            app.saver.delete_thread(sid)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_session_reloads_identically_in_a_new_process(
    backend: str,
    tmp_path: Path,
    session_id: str,
    cleanup: list[tuple[str, Path, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = checkpointer_spec(backend, tmp_path)
    scenario = pcr_plate()
    caplog.set_level("WARNING")
    with WEIGen(context=fake_context(scenario), checkpointer=spec, data_dir=tmp_path) as app:
        session = app.new_session(session_id)
        cleanup.append((spec, tmp_path, session_id))
        status = session.execute_experiment(scenario.description, scenario.values)
        assert status.state == "done", status
        history = session.get_history()
        assert_typed(state_types(session.state()))
        assert session_id in app.list_sessions()
        with pytest.raises(SessionNotFoundError):
            app.load_session(f"no-such-session-{session_id}")
        # A full run: every artifact present, with its versions (the workflow needed a retry).
        assert history["session_id"] == session_id
        assert history["generated_workflow"] and history["generated_code"] and history["generated_config"]
        assert [v["number"] for v in history["wei_gen"]["versions"] if v["agent"] == "workflow"] == [1, 2]
        assert history["timestamp"] > 0

        expected = json.dumps(history)
        for strict in (False, True):
            line, report, stderr = read_in_new_process(spec, tmp_path, session_id, strict=strict)
            mode = "strict msgpack" if strict else "default msgpack"
            assert line == expected, f"{mode}: the history read by a new process differs"
            assert_typed(report["types"])
            assert session_id in report["sessions"], mode
            assert report["unknown"] == "SessionNotFoundError", mode
            found = [ln for ln in stderr.splitlines() if any(w in ln for w in SERDE_WARNINGS)]
            assert not found, f"{mode}: serializer warnings in the new process:\n" + "\n".join(found)
            assert "Traceback" not in stderr, stderr[-3000:]
        # The writer's own process read the checkpoints back without serializer warnings either.
        found = [r.getMessage() for r in caplog.records if any(w in r.getMessage() for w in SERDE_WARNINGS)]
        assert not found, found


def test_missing_postgres_url_skips_for_developers_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POSTGRES_ENV, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=POSTGRES_ENV):
        postgres_url()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        postgres_url()
    monkeypatch.setenv(POSTGRES_ENV, "postgresql://postgres@127.0.0.1:1/x")
    assert postgres_url() == "postgresql://postgres@127.0.0.1:1/x"
