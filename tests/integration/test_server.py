"""The REST endpoints on a real ``langgraph dev`` server, driven over HTTP, with the scripted model server.

One server (the repository's ``langgraph.json``, a temporary data directory, an explicit free port) serves the
endpoint, isolation and concurrency tests; the crash test starts its own and SIGKILLs it mid-run. Every model call
goes to `ScriptedOpenAI` on 127.0.0.1, answered per session tag (see ``tests/support/serving.py``).
"""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.scripted_openai import ScriptedOpenAI
from tests.support.serving import LAB_DIR, LangGraphServer, tagged_rules, wait_idle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

TOKEN_A, TOKEN_B = "token-alice-0123456789", "token-bob-9876543210"
TAGS = [f"s{i:02d}" for i in range(16)]


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAI]:
    rules = [r for tag in ["alpha", "kill", *TAGS] for r in tagged_rules(tag, delay=0.05)]
    with ScriptedOpenAI(rules) as srv:
        yield srv


@pytest.fixture(scope="module")
def server(model: ScriptedOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LangGraphServer]:
    srv = LangGraphServer(tmp_path_factory.mktemp("server"), model.base_url, [TOKEN_A, TOKEN_B])
    try:
        yield srv.start()
    finally:
        srv.stop()


def client(server: LangGraphServer, token: str | None = TOKEN_A) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=120)


def new_session(api: httpx.Client, tag: str, run: str = "framework") -> str:
    from tests.support.serving import tagged_scenario

    scn = tagged_scenario(tag)
    response = api.post(
        "/session/init", json={"user_description": scn.description, "user_values": scn.values, "run": run}
    )
    assert response.status_code == 200, response.text
    history = response.json()
    assert history["wei_gen"]["running"] is True  # the call returned while the run goes on in the background
    return str(history["session_id"])


def done(history: dict[str, Any], step: str) -> None:
    assert history["wei_gen"]["status"] == {"state": "done", "step": step, "reason": ""}, history["wei_gen"]["status"]


def test_no_token_or_a_wrong_token_is_401_everywhere(server: LangGraphServer) -> None:
    calls = [
        ("POST", "/session/init"), ("GET", "/sessions"), ("GET", "/session/abc/history"),
        ("POST", "/session/abc/workflow_step"), ("POST", "/session/abc/code_step"),
        ("POST", "/session/abc/config_step"),
        ("POST", "/session/abc/call_gen_env/workflow"), ("POST", "/session/abc/update_generated/workflow"),
        ("GET", "/session/abc/bundle.zip"), ("GET", "/session/abc/flow.svg"), ("GET", "/session/abc/events"),
    ]  # fmt: skip
    for token in (None, "not-a-token"):
        with client(server, token) as api:
            for method, path in calls:
                response = api.request(method, path, json={"user_input": "x", "user_description": "y"})
                assert response.status_code == 401, (method, path, response.text)
                assert "bearer token" in response.json()["error"]
            # The LangGraph threads API is behind the same tokens.
            assert api.post("/threads/search", json={}).status_code == 401


def test_every_endpoint_over_http(server: LangGraphServer, model: ScriptedOpenAI) -> None:
    with client(server) as api:
        sid = new_session(api, "alpha")
        history = wait_idle(api, sid)
        done(history, "plan")
        assert "Seal a plate alpha" in history["generated_framework"]
        assert history["generated_workflow"] == ""
        assert history["original_user_description"].endswith("[alpha]")
        assert 0.89 < history["validity"] < 0.91

        # The session is the thread the LangGraph threads API shows, with the owner in its metadata.
        thread = api.get(f"/threads/{sid}").json()
        assert thread["metadata"]["owner"].startswith("o_") and TOKEN_A not in str(thread)
        state = api.get(f"/threads/{sid}/state").json()
        assert state["values"]["plan"]["title"] == "Seal a plate alpha"
        checkpoints = api.post(f"/threads/{sid}/history", json={"limit": 100}).json()
        assert len(checkpoints) > 3
        assert "wei_gen" in [a["graph_id"] for a in api.post("/assistants/search", json={}).json()]
        assert api.post("/store/items/search", json={"namespace_prefix": []}).status_code == 403

        # workflow_step; a second step while it runs is refused with 409.
        response = api.post(f"/session/{sid}/workflow_step")
        assert response.status_code == 200 and response.json()["wei_gen"]["running"] is True
        busy = api.post(f"/session/{sid}/code_step")
        assert busy.status_code == 409 and "in progress" in busy.json()["error"]
        history = wait_idle(api, sid)
        done(history, "workflow")
        assert yaml.safe_load(history["generated_workflow"])["name"] == "Seal alpha"
        diagnostics = history["wei_gen"]["reports"]["workflow"]["diagnostics"]
        assert [d for d in diagnostics if d["severity"] == "error"] == []
        assert history["wei_gen"]["flow"]["verdict"] == "sat" and history["wei_gen"]["setup"]
        svg = api.get(f"/session/{sid}/flow.svg")
        assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.startswith("<svg") and "sealer" in svg.text

        api.post(f"/session/{sid}/code_step").raise_for_status()
        history = wait_idle(api, sid)
        done(history, "code")
        assert "ExperimentClient" in history["generated_code"] and history["wei_gen"]["tests"]

        api.post(f"/session/{sid}/config_step").raise_for_status()
        done(wait_idle(api, sid), "config")

        # Chat: waits for the answer and returns it with the history.
        chat = api.post(f"/session/{sid}/call_gen_env/workflow", json={"user_input": "is the order right?"})
        assert chat.status_code == 200, chat.text
        assert chat.json()["reply"] == "Looks right to me (alpha)."
        assert chat.json()["workflow_agent_ctx"][-1]["content"] == "Looks right to me (alpha)."

        # User edit: re-validated as a new version; garbage and non-artifact agents are refused, nothing lost.
        edited = yaml.safe_load(history["generated_workflow"])
        edited["flowdef"][0]["name"] = "Fetch a fresh plate"
        versions_before = len(chat.json()["wei_gen"]["versions"])
        ok = api.post(f"/session/{sid}/update_generated/workflow", json={"user_input": yaml.safe_dump(edited)})
        assert ok.status_code == 200, ok.text
        assert "Fetch a fresh plate" in ok.json()["generated_workflow"]
        assert len(ok.json()["wei_gen"]["versions"]) == versions_before + 1
        assert ok.json()["wei_gen"]["versions"][-1]["origin"] == "edit"
        bad = api.post(f"/session/{sid}/update_generated/workflow", json={"user_input": "flowdef: [unclosed"})
        assert bad.status_code == 422 and "not accepted" in bad.json()["error"]
        assert api.get(f"/session/{sid}/history").json()["generated_workflow"] == ok.json()["generated_workflow"]
        validator = api.post(f"/session/{sid}/update_generated/validator", json={"user_input": "x"})
        assert validator.status_code == 422 and "no artifact" in validator.json()["error"]
        for path in (f"/session/{sid}/call_gen_env/wizard", f"/session/{sid}/update_generated/wizard"):
            unknown = api.post(path, json={"user_input": "x"})
            assert unknown.status_code == 404 and "unknown agent" in unknown.json()["error"]

        # Bundle and list.
        archive = api.get(f"/session/{sid}/bundle.zip")
        assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        assert "workflow.yaml" in names and "experiment.py" in names
        listed = api.get("/sessions").json()["sessions"]
        assert sid in [s["session_id"] for s in listed]
        assert next(s for s in listed if s["session_id"] == sid)["status"]["state"] == "done"

        # Load by id.
        loaded = api.post("/session/init", json={"session_id": sid})
        assert loaded.status_code == 200 and loaded.json()["generated_workflow"] == ok.json()["generated_workflow"]

        # Server-sent events of a run: node updates, then the end.
        api.post(f"/session/{sid}/config_step").raise_for_status()
        with api.stream("GET", f"/session/{sid}/events") as events:
            text = "".join(events.iter_text())
        assert "event: update" in text and '"node": "finish"' in text and text.rstrip().endswith("data: {}")
        wait_idle(api, sid)

    # Another owner sees none of it: 404 like an unknown session, here and in the threads API.
    with client(server, TOKEN_B) as other:
        for method, path in [
            ("GET", f"/session/{sid}/history"), ("POST", f"/session/{sid}/workflow_step"),
            ("POST", f"/session/{sid}/call_gen_env/workflow"), ("GET", f"/session/{sid}/bundle.zip"),
            ("POST", f"/session/{sid}/update_generated/workflow"), ("GET", f"/session/{sid}/flow.svg"),
        ]:  # fmt: skip
            response = other.request(method, path, json={"user_input": "mine now"})
            assert response.status_code == 404 and response.json() == {"error": "no such session"}, path
        assert other.post("/session/init", json={"session_id": sid}).status_code == 404
        unknown = other.get(f"/session/{uuid.uuid4()}/history")
        assert unknown.status_code == 404 and unknown.json() == {"error": "no such session"}
        assert sid not in [s["session_id"] for s in other.get("/sessions").json()["sessions"]]
        assert other.get(f"/threads/{sid}/state").status_code == 404
        assert sid not in [t["thread_id"] for t in other.post("/threads/search", json={}).json()]
    with client(server) as api:  # and the owner's session is unchanged
        assert api.get(f"/session/{sid}/history").json()["generated_workflow"] == ok.json()["generated_workflow"]


def test_bad_input_is_json_with_a_message(server: LangGraphServer) -> None:
    with client(server) as api:
        for bad_id in ("-x", "a.b", "x" * 65, "%2E%2E", "not-a-uuid"):
            response = api.get(f"/session/{bad_id}/history")
            assert response.status_code == 400 and "invalid session id" in response.json()["error"], bad_id
        assert api.post("/session/init", json={"session_id": "../../etc"}).status_code == 400
        empty = api.post("/session/init", json={})
        assert empty.status_code == 400 and "user_description" in empty.json()["error"]
        wrong = api.post("/session/init", json={"user_description": "x", "run": "everything"})
        assert wrong.status_code == 422 and wrong.json()["error"].startswith("bad request: run")
        lab = api.post("/session/init", json={"user_description": "x", "lab_dir": "/etc"})
        assert lab.status_code == 400 and "outside the lab folders" in lab.json()["error"]
        escape = api.post("/session/init", json={"user_description": "x", "lab_dir": f"{LAB_DIR}/../../../.."})
        assert escape.status_code == 400 and "outside the lab folders" in escape.json()["error"]
        not_lab = api.post("/session/init", json={"user_description": "x", "lab_dir": str(LAB_DIR.parent)})
        assert not_lab.status_code == 400 and "not a lab directory" in not_lab.json()["error"]
        not_json = api.post("/session/init", content=b"{nope", headers={"content-type": "application/json"})
        assert not_json.status_code == 422 and "error" in not_json.json()


def test_sixteen_concurrent_sessions_finish_without_cross_talk(server: LangGraphServer) -> None:
    with client(server) as api, ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda tag: new_session(api, tag, run="all"), TAGS))
        histories = list(pool.map(lambda sid: wait_idle(api, sid, timeout=600), ids))
    assert len(set(ids)) == 16
    for tag, history in zip(TAGS, histories, strict=True):
        done(history, "config")
        own = [history["original_user_description"], history["generated_framework"], history["generated_workflow"]]
        assert all(tag in text for text in own), tag
        everything = str(history)
        assert [t for t in TAGS if t != tag and t in everything] == [], tag
        assert yaml.safe_load(history["generated_workflow"])["name"] == f"Seal {tag}"


def test_sigkill_mid_run_then_restart_resumes_and_loses_nothing(tmp_path: Path) -> None:
    # A slow model (1.5 s a call) so that the kill lands in the middle of the run.
    with ScriptedOpenAI(tagged_rules("kill", delay=1.5)) as model:
        server = LangGraphServer(tmp_path / "crash", model.base_url, [TOKEN_A])
        try:
            server.start()
            with client(server) as api:
                sid = new_session(api, "kill", run="all")
                before = _wait_for(api, sid, lambda h: _plans(h) != [])
                assert before["wei_gen"]["running"] is True
                server.kill()
                calls_at_kill = len(model.requests)
                server.start()
                history = wait_idle(api, sid, timeout=300)
                done(history, "config")
                # Nothing lost: the plan from before the crash is still version 1, and the run went on after it.
                assert _plans(history)[0] == _plans(before)[0]
                assert "Seal kill" in history["generated_workflow"] and history["generated_code"]
                assert len(model.requests) > calls_at_kill
                assert api.get(f"/threads/{sid}").json()["metadata"]["owner"].startswith("o_")
                assert sid in [s["session_id"] for s in api.get("/sessions").json()["sessions"]]
        finally:
            server.stop()


def _plans(history: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in history["wei_gen"]["versions"] if v["agent"] == "framework"]


def _wait_for(api: httpx.Client, sid: str, ready: Any, timeout: float = 120) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history: dict[str, Any] = api.get(f"/session/{sid}/history").json()
        if ready(history):
            return history
        time.sleep(0.1)
    raise TimeoutError(f"session {sid} never got there")
