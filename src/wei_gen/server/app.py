"""wei_gen v2's REST endpoints on the LangGraph API server (``langgraph.json`` ``http.app``).

A session is a LangGraph thread (session id = thread id, owner in the thread's metadata) and every step is a
background run on it, started through the server's own threads/runs API in-process (``langgraph_sdk.get_client()``
without a URL): nothing blocks the server, Studio and the threads API see the same threads, and the run settings
(models, lab, bounds) reach the graph as the run's ``context``. State comes back as JSON and is rebuilt into the
typed state, so the history is the same function the Python API uses (`wei_gen.session.build_history`).

Every ``/session*`` route needs ``Authorization: Bearer <token>``; another owner's session answers 404 like an
unknown one. Errors are JSON ``{"error": message}``. The API contract is ``helper-notes/API-CONTRACT.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict

from wei_gen.context import AppConfig, Context
from wei_gen.server.auth import owner_for, server_config
from wei_gen.server.registry import Registry, SessionRecord
from wei_gen.session import (
    WEIGenError,
    build_history,
    check_agent,
    check_session_id,
    state_from_json,
    values_text,
)
from wei_gen.state import ARTIFACT_KEYS, State

log = logging.getLogger("wei_gen.server")
GRAPH_ID = "wei_gen"
RUN_STEPS = {"framework": "plan", "all": None}
NOT_FOUND = "no such session"


class ApiError(Exception):
    """A refused request: HTTP status and a message for the caller."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None):
        """Status code, message, and extra JSON fields."""
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra or {}


class JsonErrorRoute(APIRoute):
    """A route whose unexpected failures answer JSON 500 (logged here), never a traceback page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (ApiError, RequestValidationError):
                raise
            except httpx.HTTPStatusError as exc:  # the LangGraph API refused (e.g. thread busy)
                return _upstream_error(exc)
            except Exception as exc:  # noqa: BLE001 - the last line of defence for one request
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)

        return guarded


def _upstream_error(exc: httpx.HTTPStatusError) -> JSONResponse:
    status = exc.response.status_code
    if status == 409:
        return JSONResponse({"error": "a run is already in progress on this session"}, status_code=409)
    log.error("LangGraph API answered %s: %s", status, exc.response.text[:500])
    return JSONResponse({"error": f"the LangGraph API answered {status}"}, status_code=502)


# -- request bodies --------------------------------------------------------------------------------------------------


class InitBody(BaseModel):
    """``POST /session/init``: a new experiment (``user_description``) or an existing session (``session_id``)."""

    model_config = ConfigDict(extra="forbid")

    user_description: str | None = None
    user_values: Any = None
    session_id: str | None = None
    lab_dir: str | None = None
    run: Literal["framework", "all", "none"] = "framework"


class UserInput(BaseModel):
    """A chat message or an edited artifact."""

    model_config = ConfigDict(extra="forbid")

    user_input: str


# -- the backend: LangGraph client + registry ------------------------------------------------------------------------


class Backend:
    """Sessions on the LangGraph server: threads, background runs, state, and the durable registry."""

    def __init__(self, client: Any, registry: Registry, config: AppConfig):
        """A LangGraph SDK client (in-process by default), the registry and the server config."""
        self.client, self.registry, self.config = client, registry, config

    @property
    def context(self) -> dict[str, Any]:
        """The run settings sent with every run."""
        return asdict(self.config.context)

    async def record(self, session_id: str, owner: str) -> SessionRecord:
        """The caller's session record; 404 for unknown ids and other owners' sessions alike."""
        rec = await asyncio.to_thread(self.registry.get, session_id)
        if rec is None or rec.owner != owner:
            raise ApiError(404, NOT_FOUND)
        return rec

    async def thread(self, rec: SessionRecord) -> dict[str, Any]:
        """The session's thread, re-created (same id and owner) when the server lost it in a crash."""
        try:
            thread: dict[str, Any] = await self.client.threads.get(rec.session_id)
            return thread
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
        created: dict[str, Any] = await self.client.threads.create(
            thread_id=rec.session_id, metadata={"owner": rec.owner}, if_exists="do_nothing", graph_id=GRAPH_ID
        )
        return created

    async def state(self, session_id: str) -> dict[str, Any]:
        """The thread's latest state as the threads API returns it (values JSON, next, checkpoint)."""
        state: dict[str, Any] = await self.client.threads.get_state(session_id)
        return state

    async def history(self, rec: SessionRecord, **extra: Any) -> dict[str, Any]:
        """The session's history (wei_gen v2's shape), with ``wei_gen.running``; ``extra`` top-level keys."""
        thread = await self.thread(rec)
        snapshot = await self.state(rec.session_id)
        history = await asyncio.to_thread(self._build, rec.session_id, snapshot, thread.get("status") == "busy")
        return history | extra

    def _build(self, session_id: str, snapshot: dict[str, Any], running: bool) -> dict[str, Any]:
        context = self.config.context
        return build_history(
            session_id,
            state_from_json(snapshot.get("values") or {}),
            snapshot.get("created_at"),
            running=running,
            lab_dir=context.lab_dir,
        )

    async def typed_state(self, session_id: str) -> State:
        """The typed state of a session."""
        snapshot = await self.state(session_id)
        return await asyncio.to_thread(state_from_json, snapshot.get("values") or {})

    async def start(self, rec: SessionRecord, graph_input: dict[str, Any] | None, **registry: Any) -> str:
        """Start a background run (``None`` input resumes the last checkpoint); 409 when one is in progress.

        The request is recorded before the run starts, with the checkpoint it starts from, so that a crashed
        server can tell a run that never began from one that made progress.
        """
        thread = await self.thread(rec)
        if thread.get("status") == "busy":
            raise ApiError(409, "a run is already in progress on this session")
        snapshot = await self.state(rec.session_id)
        since = (snapshot.get("checkpoint") or {}).get("checkpoint_id") or ""
        pending = {"input": graph_input, "since": since}
        await asyncio.to_thread(self.registry.set_pending, rec.session_id, pending, registry.get("description"))
        run: dict[str, Any] = await self.client.runs.create(
            rec.session_id,
            GRAPH_ID,
            input=graph_input,
            context=self.context,
            multitask_strategy="reject",
            stream_mode=["updates"],
        )
        return str(run["run_id"])

    async def wait(self, session_id: str, run_id: str) -> None:
        """Wait for a run to end (asynchronously: the server keeps serving)."""
        await self.client.runs.join(session_id, run_id)

    async def recover(self) -> None:
        """After a restart: re-create lost threads, re-start runs that never began, resume interrupted ones."""
        for rec in await asyncio.to_thread(self.registry.all):
            try:
                await self._recover_one(rec)
            except Exception:  # noqa: BLE001 - one broken session must not stop the others' recovery
                log.exception("could not recover session %s", rec.session_id)

    async def _recover_one(self, rec: SessionRecord) -> None:
        thread = await self.thread(rec)
        if thread.get("status") == "busy":
            return  # the runtime re-queues runs it had saved as running
        snapshot = await self.state(rec.session_id)
        checkpoint = (snapshot.get("checkpoint") or {}).get("checkpoint_id") or ""
        pending = rec.pending
        if pending and "input" in pending and pending.get("since", "") == checkpoint:
            log.warning("session %s: re-starting a run that was cut off before it began", rec.session_id)
            await self.start(rec, pending["input"])
        elif snapshot.get("next"):
            log.warning("session %s: resuming a run cut off at %s", rec.session_id, snapshot["next"])
            await self.start(rec, None)


_BACKEND: Backend | None = None


def backend() -> Backend:
    """The process's backend (in-process LangGraph client, registry beside the session store)."""
    global _BACKEND
    if _BACKEND is None:
        from langgraph_sdk import get_client

        config = server_config()
        registry = Registry.for_store(config.checkpointer, config.data_dir)
        _BACKEND = Backend(get_client(url=None, api_key=None), registry, config)
    return _BACKEND


async def require_owner(authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller's owner id from the bearer token; 401 without a known token."""
    owner = owner_for(authorization, server_config().api_tokens)
    if owner is None:
        raise ApiError(401, "missing or unknown bearer token (Authorization: Bearer <token>)")
    return owner


async def get_backend() -> Backend:
    """The backend for a request (built in a worker thread the first time: it opens files)."""
    return _BACKEND if _BACKEND is not None else await asyncio.to_thread(backend)


Owner = Annotated[str, Depends(require_owner)]
Be = Annotated[Backend, Depends(get_backend)]


def _session_id(session_id: str) -> str:
    """A plain id (never path-like), in the canonical UUID form LangGraph thread ids have."""
    try:
        check_session_id(session_id)
        return str(uuid.UUID(session_id))
    except WEIGenError as exc:
        raise ApiError(400, str(exc)) from None
    except ValueError:
        raise ApiError(400, f"invalid session id {session_id!r}: sessions on the server have UUID ids") from None


def _agent(agent: str) -> str:
    try:
        return check_agent(agent)
    except WEIGenError as exc:
        raise ApiError(404, str(exc)) from None


# -- routes ----------------------------------------------------------------------------------------------------------

router = APIRouter(route_class=JsonErrorRoute)


@router.post("/session/init")
async def init_session(body: InitBody, owner: Owner, be: Be) -> dict[str, Any]:
    """Create a session and start its run in the background, or load an existing one."""
    description = (body.user_description or "").strip()
    if not description:
        if not body.session_id:
            raise ApiError(400, "give user_description (a new experiment) or session_id (an existing session)")
        return await be.history(await be.record(_session_id(body.session_id), owner))
    graph_input: dict[str, Any] = {
        "entry": "start",
        "description": description,
        "values": values_text(body.user_values),
        "stop_after": RUN_STEPS.get(body.run),
    }
    if body.lab_dir:
        graph_input["lab_dir"] = await asyncio.to_thread(_check_lab_dir, body.lab_dir, be.config.allowed_lab_roots())
    rec = await _new_or_own(be, owner, body.session_id, description)
    if body.run == "none":
        await be.thread(rec)
        return await be.history(rec)
    await be.start(rec, graph_input, description=description)
    return await be.history(rec)


async def _new_or_own(be: Backend, owner: str, session_id: str | None, description: str) -> SessionRecord:
    sid = _session_id(session_id) if session_id else str(uuid.uuid4())
    if await asyncio.to_thread(be.registry.add, sid, owner, description):
        rec = await asyncio.to_thread(be.registry.get, sid)
        assert rec is not None
        await be.client.threads.create(
            thread_id=sid, metadata={"owner": owner}, if_exists="do_nothing", graph_id=GRAPH_ID
        )
        return rec
    rec = await asyncio.to_thread(be.registry.get, sid)
    if rec is None or rec.owner != owner:
        raise ApiError(409, f"session id {sid!r} is not available")
    return rec  # a new experiment in the caller's existing session


def _check_lab_dir(lab_dir: str, roots: tuple[Path, ...]) -> str:
    """A client may name only lab directories inside the configured lab roots (symlinks resolved first)."""
    path = Path(lab_dir).expanduser().resolve()
    if not any(path.is_relative_to(root) for root in roots):
        where = ", ".join(str(r) for r in roots)
        raise ApiError(400, f"lab_dir {lab_dir!r} is outside the lab folders this server serves ({where}; "
                       "settings.lab_roots or WEI_GEN_LAB_ROOTS)")  # fmt: skip
    if not (path / "workcell.yaml").is_file():
        raise ApiError(400, f"lab_dir {lab_dir!r} is not a lab directory on the server (no workcell.yaml)")
    return str(path)


_STEP_ENTRIES = {"workflow_step": "workflow", "code_step": "code", "config_step": "config"}


async def _step(session_id: str, step: str, owner: str, be: Backend) -> dict[str, Any]:
    rec = await be.record(_session_id(session_id), owner)
    phase = _STEP_ENTRIES[step]
    await be.start(rec, {"entry": phase, "stop_after": phase})
    return await be.history(rec)


@router.post("/session/{session_id}/workflow_step")
async def workflow_step(session_id: str, owner: Owner, be: Be) -> dict[str, Any]:
    """Start the workflow phase (shortlist, retrieval, validated workflow) in the background."""
    return await _step(session_id, "workflow_step", owner, be)


@router.post("/session/{session_id}/code_step")
async def code_step(session_id: str, owner: Owner, be: Be) -> dict[str, Any]:
    """Start the code phase (tests, script, sandbox) in the background."""
    return await _step(session_id, "code_step", owner, be)


@router.post("/session/{session_id}/config_step")
async def config_step(session_id: str, owner: Owner, be: Be) -> dict[str, Any]:
    """Start the config phase in the background."""
    return await _step(session_id, "config_step", owner, be)


@router.post("/session/{session_id}/call_gen_env/{agent}")
async def call_gen_env(session_id: str, agent: str, body: UserInput, owner: Owner, be: Be) -> dict[str, Any]:
    """Chat with an agent about its artifact; waits for the answer without blocking the server."""
    sid, name = _session_id(session_id), _agent(agent)
    rec = await be.record(sid, owner)
    run_id = await be.start(rec, {"entry": "refine", "agent": name, "message": body.user_input, "stop_after": None})
    await be.wait(sid, run_id)
    snapshot = await be.state(sid)
    return await be.history(rec, reply=str((snapshot.get("values") or {}).get("reply") or ""))


@router.post("/session/{session_id}/update_generated/{agent}")
async def update_generated(session_id: str, agent: str, body: UserInput, owner: Owner, be: Be) -> dict[str, Any]:
    """Replace an artifact with the user's text: re-validated as a new version; a refused edit is 422."""
    sid, name = _session_id(session_id), _agent(agent)
    rec = await be.record(sid, owner)
    if name not in ARTIFACT_KEYS:
        raise ApiError(422, f"the {name} agent has no artifact to edit: use one of {', '.join(ARTIFACT_KEYS)}")
    before = len((await be.typed_state(sid)).get("versions", []))
    run_id = await be.start(rec, {"entry": "edit", "agent": name, "message": body.user_input, "stop_after": None})
    await be.wait(sid, run_id)
    state = await be.typed_state(sid)
    if len(state.get("versions", [])) == before:
        report = state.get("reports", {}).get("edit")
        why = "; ".join(d.message for d in report.errors) if report else "not accepted"
        raise ApiError(422, f"the {name} edit was not accepted: {why}")
    return await be.history(rec)


@router.get("/session/{session_id}/history")
async def get_history(session_id: str, owner: Owner, be: Be) -> dict[str, Any]:
    """The session's history."""
    return await be.history(await be.record(_session_id(session_id), owner))


@router.get("/sessions")
async def list_sessions(owner: Owner, be: Be) -> dict[str, Any]:
    """The caller's sessions, most recently used first."""
    records = await asyncio.to_thread(be.registry.owned_by, owner)
    threads = await be.client.threads.search(metadata={"owner": owner}, limit=max(len(records), 1))
    by_id = {str(t["thread_id"]): t for t in threads}
    sessions = []
    for rec in records:
        thread = by_id.get(rec.session_id) or {}
        status = ((thread.get("values") or {}).get("status")) or {"state": "running", "step": "", "reason": ""}
        sessions.append(
            {
                "session_id": rec.session_id,
                "description": rec.description,
                "status": status,
                "running": thread.get("status") == "busy",
                "updated_at": rec.updated_at,
            }
        )
    return {"sessions": sessions}


@router.get("/session/{session_id}/bundle.zip")
async def bundle(session_id: str, owner: Owner, be: Be) -> Response:
    """The run bundle (workflow, code, configs, setup, report) as a zip archive."""
    rec = await be.record(_session_id(session_id), owner)
    state = await be.typed_state(rec.session_id)

    def build() -> bytes:
        from wei_gen.bundle import bundle_zip

        return bundle_zip(state)

    data = await asyncio.to_thread(build)
    headers = {"Content-Disposition": f'attachment; filename="wei-gen-{rec.session_id}.zip"'}
    return Response(data, media_type="application/zip", headers=headers)


@router.get("/session/{session_id}/flow.svg")
async def flow_svg(session_id: str, owner: Owner, be: Be) -> Response:
    """A picture of the workflow: steps, plate moves and what the checks found."""
    rec = await be.record(_session_id(session_id), owner)
    state = await be.typed_state(rec.session_id)
    if state.get("workflow") is None:
        raise ApiError(404, "there is no workflow yet")
    context = be.config.context
    svg = await asyncio.to_thread(_render_svg, state, context)
    return Response(svg, media_type="image/svg+xml")


def _render_svg(state: State, context: Context) -> str:
    from wei_gen.lab import LabError
    from wei_gen.nodes.common import cached_lab
    from wei_gen.tools.flow_svg import render_flow_svg

    try:
        lab, _ = cached_lab(Path(state.get("lab_dir") or context.lab_dir))
    except LabError:
        lab = None  # the picture is still useful without the lab's names
    return render_flow_svg(state["workflow"].workflow, state.get("flow"), state.get("reports", {}).get("workflow"), lab)


@router.get("/session/{session_id}/events")
async def events(session_id: str, owner: Owner, be: Be) -> StreamingResponse:
    """Server-sent events of the current run: one ``update`` per node, then ``end``."""
    rec = await be.record(_session_id(session_id), owner)
    runs = await be.client.runs.list(rec.session_id, limit=5)
    active = [r for r in runs if r.get("status") in ("pending", "running")]

    async def stream() -> AsyncIterator[bytes]:
        if active:
            async for part in be.client.runs.join_stream(rec.session_id, active[0]["run_id"]):
                if part.event == "updates" and isinstance(part.data, dict):
                    for node, update in part.data.items():
                        status = update.get("status") if isinstance(update, dict) else None
                        payload = json.dumps({"node": node, "status": status})
                        yield f"event: update\ndata: {payload}\n\n".encode()
        yield b"event: end\ndata: {}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


# -- the web page ----------------------------------------------------------------------------------------------------

PLACEHOLDER = """<!doctype html><html><head><meta charset="utf-8"><title>wei-gen</title></head>
<body><h1>wei-gen</h1><p>The web page is not installed. The REST API is at <code>/session/...</code>
(see <a href="/docs">/docs</a>).</p></body></html>"""


def web_dir() -> Path:
    """Where the web page's files are (``wei_gen/web`` in the installed package)."""
    return Path(str(files("wei_gen") / "web"))


@router.get("/", include_in_schema=False)
async def index() -> Response:
    """The web page (a placeholder while it is not installed)."""
    page = web_dir() / "index.html"
    if await asyncio.to_thread(page.is_file):
        return FileResponse(page, media_type="text/html")
    return HTMLResponse(PLACEHOLDER)


@router.get("/static/{path:path}", include_in_schema=False)
async def static(path: str) -> Response:
    """The web page's static files (no directory listing, nothing outside ``web/static``)."""
    root = (web_dir() / "static").resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not await asyncio.to_thread(target.is_file):
        raise ApiError(404, "no such file")
    return FileResponse(target)


# -- the app ---------------------------------------------------------------------------------------------------------


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Recover sessions cut off by a crash before serving, so no request sees a half-finished session as idle.

    The LangGraph runtime's own lifespan runs first (it is up when this runs); recovery is bounded in time and
    never stops the server from starting.
    """
    try:
        await asyncio.wait_for((await get_backend()).recover(), timeout=RECOVERY_TIMEOUT)
    except Exception:  # noqa: BLE001 - recovery is best effort; the server must come up regardless
        log.exception("session recovery failed")
    yield


RECOVERY_TIMEOUT = 120.0


def create_app() -> FastAPI:
    """The FastAPI app with our routes and JSON error handlers."""
    api = FastAPI(title="wei-gen", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    api.include_router(router)

    @api.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status, headers=headers)

    @api.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return JSONResponse({"error": f"bad request: {problems}"}, status_code=422)

    return api


app = create_app()
