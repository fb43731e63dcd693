"""wei_gen v2's Python API on top of the graph: ``WEIGen(config).new_session()`` and the session's step methods.

A session is a checkpointed LangGraph thread (thread id = session id). Each step method runs only its part of the
graph on that thread, so a session can be reloaded in another process and continued, refined or edited.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import StreamMode
from pydantic import TypeAdapter

from wei_gen.checkpoints import list_threads, open_checkpointer, thread_exists
from wei_gen.context import AppConfig, Context, load_config
from wei_gen.graph import builder
from wei_gen.state import AGENTS, ARTIFACT_KEYS, Agent, State, Status, Turn, artifact_text, dump
from wei_gen.yamlio import dump_yaml

HISTORY_VERSION = "0.0.1"  # wei_gen v2's history format version; our additions live under "wei_gen"
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_STATE_ADAPTER: TypeAdapter[State] = TypeAdapter(State)


class WEIGenError(Exception):
    """A request wei-gen refuses, with a message that says why (bad input, unknown session or agent)."""


class SessionNotFoundError(WEIGenError):
    """No session has this id."""


def check_session_id(session_id: str) -> str:
    """Accept only plain ids (letters, digits, ``-``, ``_``; at most 64): never a path."""
    if not isinstance(session_id, str) or not _SESSION_ID.match(session_id):
        raise WEIGenError(f"invalid session id {session_id!r}: use letters, digits, '-' and '_' (at most 64)")
    return session_id


def check_agent(agent: str) -> Agent:
    """Accept only the five agents of wei_gen v2."""
    if agent not in AGENTS:
        raise WEIGenError(f"unknown agent {agent!r}: use one of {', '.join(AGENTS)}")
    return agent


def values_text(values: Any) -> str:
    """User values as text: strings as given, mappings and lists as YAML."""
    if values is None:
        return ""
    return values if isinstance(values, str) else dump_yaml(values)


class WEIGen:
    """Entry point: holds the configuration and the session store."""

    def __init__(
        self,
        config_path: str | Path | None = None,
        *,
        context: Context | None = None,
        checkpointer: str | None = None,
        data_dir: str | Path | None = None,
    ):
        """Load wei_gen v2's config file (optional); keyword arguments override what it says."""
        config = load_config(Path(config_path) if config_path else None)
        store = Path(data_dir) if data_dir else config.data_dir
        run_context = context or config.context
        if not run_context.data_dir:  # the example index lives beside the sessions
            run_context = replace(run_context, data_dir=str(store))
        self.config = AppConfig(
            context=run_context,
            data_dir=store,
            checkpointer=checkpointer if checkpointer is not None else config.checkpointer,
            api_tokens=config.api_tokens,
        )
        self._stack = ExitStack()
        self._saver: BaseCheckpointSaver[Any] | None = None
        self._graph: CompiledStateGraph[Any, Any, Any, Any] | None = None

    @property
    def context(self) -> Context:
        """The run settings every session uses."""
        return self.config.context

    @property
    def saver(self) -> BaseCheckpointSaver[Any]:
        """The checkpointer (opened on first use)."""
        if self._saver is None:
            self._saver = self._stack.enter_context(open_checkpointer(self.config.checkpointer, self.config.data_dir))
        return self._saver

    @property
    def graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The pipeline compiled with this store's checkpointer."""
        if self._graph is None:
            self._graph = builder.compile(checkpointer=self.saver, name="wei-gen")
        return self._graph

    def new_session(self, session_id: str | None = None) -> Session:
        """Start a session; an explicit id must be unused."""
        sid = check_session_id(session_id) if session_id else uuid.uuid4().hex
        if thread_exists(self.saver, sid):
            raise WEIGenError(f"session {sid!r} already exists: use load_session")
        return Session(self, sid)

    def load_session(self, session_id: str) -> Session:
        """Open an existing session by id."""
        sid = check_session_id(session_id)
        if not thread_exists(self.saver, sid):
            raise SessionNotFoundError(f"no session {sid!r}")
        return Session(self, sid)

    def list_sessions(self) -> list[str]:
        """Ids of the stored sessions, newest first."""
        return list_threads(self.saver)

    def close(self) -> None:
        """Close the session store."""
        self._stack.close()
        self._saver = self._graph = None

    def __enter__(self) -> WEIGen:
        """Use as a context manager that closes the store."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        self.close()


class Session:
    """One experiment's session: wei_gen v2's methods, each running its part of the graph on the session's thread."""

    def __init__(self, app: WEIGen, session_id: str):
        """Bind to a session id (use ``WEIGen.new_session``/``load_session``)."""
        self.app = app
        self.session_id = session_id

    @property
    def config(self) -> RunnableConfig:
        """The LangGraph config of this session's thread."""
        return {"configurable": {"thread_id": self.session_id}}

    def _run(self, **inputs: Any) -> Status:
        self.app.graph.invoke(inputs, self.config, context=self.app.context)
        return self.status

    def stream(self, stream_mode: StreamMode = "updates", **inputs: Any) -> Iterator[Any]:
        """Run like the step methods, yielding progress as it happens (node updates, or model tokens with "messages").

        ``inputs`` are the graph's (``entry``, ``description``, ``values``, ``stop_after`` ...); a start without a
        description is refused as in ``execute_experiment``.
        """
        if inputs.get("entry", "start") == "start":
            inputs |= self._start_inputs(inputs.get("description", ""), inputs.get("values"))
        yield from self.app.graph.stream(inputs, self.config, context=self.app.context, stream_mode=stream_mode)

    def state(self) -> State:
        """The session's current state (artifacts a new experiment cleared, stored as None, are left out)."""
        values = self.app.graph.get_state(self.config).values
        return {k: v for k, v in values.items() if v is not None}  # type: ignore[return-value]

    @property
    def status(self) -> Status:
        """Running, infeasible, failed (with step and reason) or done."""
        return self.state().get("status") or Status()

    # -- wei_gen v2's methods ------------------------------------------------------------------------------------

    def execute_experiment(self, user_description: str, user_values: Any = None) -> Status:
        """Run the whole pipeline: feasibility, plan, shortlist, workflow, code, configs."""
        return self._run(**self._start_inputs(user_description, user_values), stop_after=None)

    def framework_step(self, user_description: str, user_values: Any = None) -> Status:
        """Feasibility and the checked plan."""
        return self._run(**self._start_inputs(user_description, user_values), stop_after="plan")

    def workflow_step(self) -> Status:
        """Shortlist, example retrieval and the validated workflow (needs a plan)."""
        return self._run(entry="workflow", stop_after="workflow")

    def code_step(self) -> Status:
        """The experiment code (needs a workflow)."""
        return self._run(entry="code", stop_after="code")

    def config_step(self) -> Status:
        """Instrument configs (needs a workflow)."""
        return self._run(entry="config", stop_after="config")

    def call_gen_env(self, agent: str, user_input: str) -> str:
        """Talk to an agent about its artifact; a complete new artifact in its answer becomes a checked version."""
        self._run(entry="refine", agent=check_agent(agent), message=user_input, stop_after=None)
        return str(self.state().get("reply", ""))

    def modify_generated_data(self, agent: str, user_input: str) -> None:
        """Replace an artifact with the user's text: checked, stored as a new version, later steps marked stale.

        Text that is not such an artifact at all (unparsable YAML, not a plan) is refused with the reason; the
        current artifact stays.
        """
        before = len(self.state().get("versions", []))
        self._run(entry="edit", agent=check_agent(agent), message=user_input, stop_after=None)
        state = self.state()
        if len(state.get("versions", [])) == before:
            report = state.get("reports", {}).get("edit")
            why = "; ".join(d.message for d in report.errors) if report else "not accepted"
            raise WEIGenError(f"the {agent} edit was not accepted: {why}")

    def get_history(self) -> dict[str, Any]:
        """The session in wei_gen v2's history shape, derived from the checkpointed state (plus a ``wei_gen`` part)."""
        snapshot = self.app.graph.get_state(self.config)
        context = self.app.context
        return build_history(self.session_id, snapshot.values, snapshot.created_at, lab_dir=context.lab_dir)

    def _start_inputs(self, description: str, values: Any) -> dict[str, Any]:
        if not isinstance(description, str) or not description.strip():
            raise WEIGenError("the experiment description is empty: say what the experiment should do")
        return {"entry": "start", "description": description, "values": values_text(values)}


def state_from_json(values: dict[str, Any]) -> State:
    """Rebuild the typed state (pydantic artifacts) from its JSON form, as the LangGraph threads API returns it.

    Keys a new experiment cleared (``None``) are left out, as ``Session.state`` does.
    """
    present = {k: v for k, v in (values or {}).items() if v is not None}
    return _STATE_ADAPTER.validate_python(present)


def build_history(
    session_id: str,
    state: State | dict[str, Any],
    created_at: str | None,
    *,
    running: bool = False,
    lab_dir: str = "",
) -> dict[str, Any]:
    """wei_gen v2's history of a session from its typed state (shared by the Python API and the REST server).

    ``created_at`` is the ISO time of the latest checkpoint; ``running`` whether a run is in progress on the
    session (the server knows, the synchronous Python API never has one); ``lab_dir`` the lab used when the
    session's input named none. ``offline`` says whether the offline planner made the artifacts (from the state,
    so every process reading the session agrees).
    """
    typed: State = state  # type: ignore[assignment]
    contexts = typed.get("contexts", {})
    history: dict[str, Any] = {
        "version": HISTORY_VERSION,
        "session_id": session_id,
        "timestamp": _epoch(created_at),
        "validity": typed["feasibility"].p_yes if typed.get("feasibility") is not None else 0,
        "original_user_description": typed.get("description", ""),
        "original_user_values": typed.get("values", ""),
    }
    for agent in AGENTS:
        history[f"{agent}_agent_ctx"] = _ctx(contexts.get(agent, []))
    for agent in ARTIFACT_KEYS:
        history[f"generated_{agent}"] = artifact_text(typed, agent)
    flow, planner = typed.get("flow"), typed.get("planner")
    history["wei_gen"] = {
        "status": dump(typed.get("status") or Status()),
        "reports": dump(typed.get("reports", {})),
        "versions": dump(typed.get("versions", [])),
        "stale": list(typed.get("stale", [])),
        "usage": dump(typed.get("usage", {})),
        "feasibility": dump(typed.get("feasibility")),
        "tests": typed["code"].tests if typed.get("code") is not None else "",
        "running": running,
        "flow": dump(flow),
        "setup": _setup_text(typed),
        "offline": planner is not None and planner.mode == "offline",
        "lab_dir": typed.get("lab_dir") or lab_dir,
    }
    return history


def _setup_text(state: State) -> str:
    """The initial lab setup: the config phase's, else the flow check's (when the workflow's flow is satisfiable)."""
    config = state.get("config")
    if config is not None and config.setup:
        return config.setup
    flow = state.get("flow")
    return flow.setup_text() if flow is not None and flow.verdict == "sat" else ""


def _ctx(turns: list[Turn]) -> list[dict[str, str]] | None:
    return [{"role": t.role, "content": t.content} for t in turns] or None


def _epoch(created_at: str | None) -> float:
    from datetime import datetime

    return datetime.fromisoformat(created_at).timestamp() if created_at else 0.0
