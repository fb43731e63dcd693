"""The REST app without a LangGraph server (FastAPI's TestClient, a stub LangGraph client).

Tokens and owners, id and agent checks, JSON errors, the session registry, and the history rebuilt from the threads
API's JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from langgraph_api.serde import default as langgraph_api_json

from tests.support.scenarios import fake_context, seal_plate
from wei_gen.server import app as server_app
from wei_gen.server.auth import owner_for, owner_id, server_config
from wei_gen.server.registry import Registry
from wei_gen.session import WEIGen, build_history, state_from_json

TOKENS = ("alpha-token", "beta-token")


class ExplodingClient:
    """Any call to the LangGraph API fails: shows what reaches the backend and how a failure is reported."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"secret internals: {name}")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(path=tmp_path / "server.sqlite")


@pytest.fixture
def api(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("WEI_GEN_API_TOKEN", TOKENS[0])
    monkeypatch.delenv("WEI_GEN_CONFIG", raising=False)
    server_config.cache_clear()
    backend = server_app.Backend(ExplodingClient(), registry, server_config())
    application = server_app.create_app()
    application.dependency_overrides[server_app.get_backend] = lambda: backend
    monkeypatch.setattr(server_app, "RECOVERY_TIMEOUT", 0.01)
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client
    server_config.cache_clear()


def auth(token: str = TOKENS[0]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_map_to_owners_without_storing_the_token() -> None:
    assert owner_for("Bearer alpha-token", TOKENS) == owner_id("alpha-token")
    assert owner_for("bearer   beta-token ", TOKENS) == owner_id("beta-token")
    assert owner_id("alpha-token") != owner_id("beta-token")
    assert "alpha" not in owner_id("alpha-token")
    for header in (None, "", "Bearer", "Basic alpha-token", "Bearer alpha-token-x", "alpha-token"):
        assert owner_for(header, TOKENS) is None, header
    assert owner_for("Bearer alpha-token", ()) is None  # no configured token: nobody gets in


def test_missing_or_unknown_token_is_401_json(api: TestClient) -> None:
    for headers in ({}, auth("nope"), {"Authorization": "Basic YQ=="}):
        response = api.get("/sessions", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "bearer token" in response.json()["error"]


def test_path_like_ids_are_400_and_unknown_agents_404_before_any_lookup(api: TestClient) -> None:
    for bad in ("%2E%2E", "-rf", "a.b", "x" * 70, "abc"):
        response = api.get(f"/session/{bad}/history", headers=auth())
        assert response.status_code == 400 and "invalid session id" in response.json()["error"], bad
    sid = uuid.uuid4()
    response = api.post(f"/session/{sid}/call_gen_env/wizard", headers=auth(), json={"user_input": "x"})
    assert response.status_code == 404 and response.json()["error"].startswith("unknown agent 'wizard'")


def test_another_owners_session_is_404_like_an_unknown_one(api: TestClient, registry: Registry) -> None:
    theirs = str(uuid.uuid4())
    registry.add(theirs, owner_id("beta-token"), "their experiment")
    mine_missing = api.get(f"/session/{uuid.uuid4()}/history", headers=auth())
    theirs_hidden = api.get(f"/session/{theirs}/history", headers=auth())
    assert mine_missing.status_code == theirs_hidden.status_code == 404
    assert mine_missing.json() == theirs_hidden.json() == {"error": "no such session"}
    assert api.post("/session/init", headers=auth(), json={"session_id": theirs}).status_code == 404


def test_unexpected_failures_are_json_500_without_internals(api: TestClient, registry: Registry) -> None:
    mine = str(uuid.uuid4())
    registry.add(mine, owner_id(TOKENS[0]), "my experiment")
    response = api.get(f"/session/{mine}/history", headers=auth())
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (RuntimeError)"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_bad_bodies_are_422_json(api: TestClient) -> None:
    response = api.post("/session/init", headers=auth(), json={"user_description": "x", "surprise": 1})
    assert response.status_code == 422 and response.json()["error"].startswith("bad request: surprise")
    response = api.post(f"/session/{uuid.uuid4()}/update_generated/workflow", headers=auth(), json={})
    assert response.status_code == 422 and "user_input" in response.json()["error"]


def test_static_files_stay_inside_the_web_folder(api: TestClient) -> None:
    assert api.get("/").status_code == 200
    assert api.get("/static/..%2F..%2Fserver%2Fauth.py").status_code == 404
    assert api.get("/static/nope.js").json() == {"error": "no such file"}


def test_registry_records_owner_description_and_pending_run(registry: Registry) -> None:
    assert registry.add("s1", "o_a", "first")
    assert not registry.add("s1", "o_b", "taken")
    registry.add("s2", "o_b", "second")
    registry.set_pending("s1", {"input": {"entry": "workflow"}, "since": "c1"})
    record = registry.get("s1")
    assert record is not None and record.owner == "o_a" and record.description == "first"
    assert record.pending == {"input": {"entry": "workflow"}, "since": "c1"}
    assert [r.session_id for r in registry.owned_by("o_b")] == ["s2"]
    assert registry.get("nope") is None
    again = Registry(path=registry.path)  # durable: a new process sees the same records
    assert {r.session_id for r in again.all()} == {"s1", "s2"}


def test_history_from_the_threads_api_json_equals_the_python_apis(tmp_path: Path) -> None:
    scn = seal_plate()
    with WEIGen(context=fake_context(scn), data_dir=tmp_path) as app:
        session = app.new_session()
        session.execute_experiment(scn.description, scn.values)
        snapshot = app.graph.get_state(session.config)
        # What the LangGraph API sends for the state: its serializer, then JSON.
        values = json.loads(orjson.dumps(snapshot.values, default=langgraph_api_json))
        rebuilt = build_history(
            session.session_id, state_from_json(values), snapshot.created_at, lab_dir=app.context.lab_dir
        )
        assert rebuilt == session.get_history()
        assert rebuilt["wei_gen"]["status"]["state"] == "done" and rebuilt["generated_code"]
