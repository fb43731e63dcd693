"""CLI commands ``run``, ``sessions``, ``refine`` and ``serve`` (registered on ``wei_gen.cli.app``).

``run`` drives a whole session through the Python session API on the local store (SQLite under the data directory),
printing each node as it finishes, and writes the run bundle. Exit codes: 0 the run is done, 1 it ended infeasible
or failed (the reason is printed), 2 bad input (nothing ran).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from wei_gen.cli import EXIT_CANNOT_RUN, EXIT_OK, EXIT_PROBLEMS, app, err, fail, out
from wei_gen.context import ConfigError
from wei_gen.lab import LabError, lab_from_dir
from wei_gen.session import Session, SessionNotFoundError, WEIGen, WEIGenError
from wei_gen.state import Status

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="wei-gen config file (wei_gen v2's shape).", show_default=False)
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Where sessions live (default $WEI_GEN_DATA_DIR or ./.wei_gen).", show_default=False
    ),
]

sessions_app = typer.Typer(help="List, inspect and export stored sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")

_NODE_WORDS = {
    "prepare_run": "checked the input",
    "check_feasibility": "feasibility",
    "make_plan": "plan written",
    "check_plan": "plan checked",
    "make_shortlist": "instruments chosen",
    "retrieve_examples": "examples retrieved",
    "write_workflow": "workflow written",
    "check_workflow": "workflow checked",
    "design_tests": "tests written",
    "write_code": "code written",
    "check_code": "code checked in the sandbox",
    "write_configs": "configs written",
    "check_configs": "configs checked",
    "refine_artifact": "answered",
    "apply_edit": "edit applied",
    "finish": "done",
    "give_up": "gave up",
}


def open_app(config: Path | None, data_dir: Path | None) -> WEIGen:
    """The session store, or exit 2 with the config problem."""
    try:
        return WEIGen(config, data_dir=data_dir)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def read_values(values: str | None) -> Any:
    """``--values``: a YAML file, or YAML text (``"temperature: 175"``)."""
    if values is None:
        return None
    path = Path(values)
    text = path.read_text(encoding="utf-8") if path.is_file() else values
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise fail(f"--values is neither a YAML file nor YAML text: {exc}") from None


def read_description(description_file: Path | None, text: str | None) -> str:
    """The experiment from a file or ``--text`` (exactly one)."""
    if (description_file is None) == (text is None):
        raise fail("give the experiment as DESCRIPTION_FILE or --text TEXT (one of them)")
    if description_file is not None:
        try:
            text = description_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise fail(f"cannot read {description_file}: {exc.strerror}") from None
    assert text is not None
    if not text.strip():
        raise fail("the experiment description is empty: say what the experiment should do")
    return text.strip()


def _progress(chunk: Any) -> None:
    """One line per finished node (LangGraph ``updates`` stream)."""
    if not isinstance(chunk, dict):
        return
    for node, update in chunk.items():
        words = _NODE_WORDS.get(node, node)
        detail, mark = "", "[green]✓[/]"
        if isinstance(update, dict):
            report = (update.get("reports") or {}) if node.startswith("check_") else {}
            bad = [k for k, r in report.items() if r is not None and not r.ok]
            if bad:
                detail, mark = f" [yellow](problems in {', '.join(bad)})[/]", "[yellow]![/]"
            if node == "check_feasibility" and update.get("feasibility") is not None:
                f = update["feasibility"]
                detail = f" P(yes) = {f.p_yes:.2f}" + ("" if f.feasible else " [red](infeasible)[/]")
        out.print(f"  {mark} {escape(node)}: {escape(words or node)}{detail}")


def _finish(session: Session, out_dir: Path | None) -> int:
    status = session.status
    if out_dir is not None:
        from wei_gen.bundle import BundleError, write_bundle

        try:
            written = write_bundle(session.state(), out_dir)
        except BundleError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return EXIT_CANNOT_RUN
        out.print(f"bundle: {len(written)} file(s) in {escape(str(out_dir))}")
    return _report_status(status, session.session_id)


def _report_status(status: Status, session_id: str) -> int:
    if status.state == "done":
        out.print(f"[bold green]done[/] (session {session_id})")
        return EXIT_OK
    out.print(
        f"[bold red]{status.state}[/] at {escape(status.step or '?')}: {escape(status.reason or 'no reason given')}"
    )
    out.print(f"session {session_id}: 'wei-gen sessions show {session_id}' for details")
    return EXIT_PROBLEMS


@app.command()
def run(
    description_file: Annotated[
        Path | None, typer.Argument(help="File with the experiment in plain language.", show_default=False)
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="The experiment as text.", show_default=False)] = None,
    values: Annotated[
        str | None, typer.Option("--values", help="Your values: a YAML file or YAML text.", show_default=False)
    ] = None,
    lab: Annotated[Path | None, typer.Option("--lab", help="Lab directory.", show_default=False)] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Write the run bundle into this folder.", show_default=False)
    ] = None,
    session_id: Annotated[
        str | None, typer.Option("--session", help="Session id (new, or an existing one to reuse).", show_default=False)
    ] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Generate a checked workflow, code and configs for an experiment, showing progress, and write the bundle."""
    description = read_description(description_file, text)
    user_values = read_values(values)
    weigen = open_app(config, data_dir)
    lab_dir = lab or Path(weigen.context.lab_dir)
    try:
        lab_from_dir(lab_dir)
    except LabError as exc:
        raise fail(f"cannot load the lab {lab_dir}: {exc}") from None
    with weigen:
        session = _session(weigen, session_id)
        notice = weigen.context.planner_notice()
        if notice:  # the offline planner is used: say so plainly, before anything runs
            out.print(f"[yellow]{escape(notice)}[/]")
        out.print(
            f"session {session.session_id} · lab {escape(str(lab_dir))} · store {escape(str(weigen.config.data_dir))}"
        )
        inputs = {"description": description, "values": user_values, "lab_dir": str(lab_dir), "stop_after": None}
        try:
            for chunk in session.stream("updates", **inputs):
                _progress(chunk)
        except WEIGenError as exc:
            raise fail(str(exc)) from None
        raise typer.Exit(_finish(session, out_dir))


def _session(weigen: WEIGen, session_id: str | None) -> Session:
    try:
        if session_id is None:
            return weigen.new_session()
        try:
            return weigen.load_session(session_id)
        except SessionNotFoundError:
            return weigen.new_session(session_id)
    except WEIGenError as exc:
        raise fail(str(exc)) from None


def _load(weigen: WEIGen, session_id: str) -> Session:
    try:
        return weigen.load_session(session_id)
    except WEIGenError as exc:
        raise fail(str(exc)) from None


@sessions_app.command("list")
def sessions_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Stored sessions, newest first: id, state, experiment."""
    with open_app(config, data_dir) as weigen:
        ids = weigen.list_sessions()
        if not ids:
            out.print(f"no sessions in {escape(str(weigen.config.data_dir))}")
        for sid in ids:
            state = weigen.load_session(sid).state()
            status = state.get("status") or Status()
            description = " ".join(str(state.get("description", "")).split())[:70]
            out.print(f"{sid}  {status.state:<10} {escape(description)}")


@sessions_app.command("show")
def sessions_show(session_id: str, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """A session's status, checks and artifacts at a glance."""
    with open_app(config, data_dir) as weigen:
        history = _load(weigen, session_id).get_history()
    part = history["wei_gen"]
    status = part["status"]
    out.print(f"session {history['session_id']}: [bold]{status['state']}[/] {escape(status['step'])}")
    if status["reason"]:
        out.print(f"  reason: {escape(status['reason'])}")
    out.print(f"  experiment: {escape(history['original_user_description'])}")
    out.print(f"  feasibility P(yes): {history['validity']:.2f}")
    for phase, report in part["reports"].items():
        errors = sum(1 for d in report.get("diagnostics", []) if d.get("severity") == "error")
        out.print(f"  {phase} check: {'ok' if errors == 0 else f'{errors} error(s)'}")
    for agent in ("framework", "workflow", "code", "config"):
        size = len(history[f"generated_{agent}"])
        stale = " (stale)" if agent in part["stale"] else ""
        out.print(f"  {agent}: {f'{size} characters' if size else '-'}{stale}")
    out.print(f"  versions: {len(part['versions'])}")


@sessions_app.command("history")
def sessions_history(session_id: str, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """The session's history as JSON (wei_gen v2's shape)."""
    with open_app(config, data_dir) as weigen:
        history = _load(weigen, session_id).get_history()
    out.print_json(json.dumps(history))


@sessions_app.command("export")
def sessions_export(
    session_id: str,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder (default ./wei-gen-<id>).")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write a session's run bundle (workflow, code, configs, setup, report) into a folder."""
    from wei_gen.bundle import BundleError, write_bundle

    with open_app(config, data_dir) as weigen:
        state = _load(weigen, session_id).state()
    target = out_dir or Path(f"wei-gen-{session_id}")
    try:
        written = write_bundle(state, target)
    except BundleError as exc:
        raise fail(str(exc)) from None
    out.print(f"{len(written)} file(s) in {escape(str(target))}")


@app.command()
def refine(
    session_id: Annotated[str, typer.Argument(metavar="SESSION")],
    agent: Annotated[str, typer.Argument(help="framework, workflow, code, validator or config.")],
    message: Annotated[str, typer.Argument(help="What you want changed or asked.")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Talk to an agent about its artifact; a new artifact in the answer is checked and stored as a version."""
    with open_app(config, data_dir) as weigen:
        session = _load(weigen, session_id)
        try:
            reply = session.call_gen_env(agent, message)
        except WEIGenError as exc:
            raise fail(str(exc)) from None
        status = session.status
    out.print(escape(reply))
    if status.state == "failed" and status.step == "refine_artifact":
        raise typer.Exit(_report_status(status, session_id))


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 2024,
    jobs: Annotated[int, typer.Option("--jobs", help="Runs executed at the same time.")] = 16,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Start the server: the web page at /, the REST API at /session..., the LangGraph API beside them."""
    from wei_gen.server.serve import new_token, port_is_free, run_server

    weigen = open_app(config, data_dir)
    store = (data_dir or weigen.config.data_dir).resolve()
    notice = weigen.context.planner_notice()
    if notice:  # say it first: every session this server runs will use the offline planner
        out.print(f"[yellow]{escape(notice)}[/]")
    if not port_is_free(host, port):
        raise fail(f"port {port} on {host} is in use: choose another with --port")
    extra: dict[str, str] = {"WEI_GEN_DATA_DIR": str(store)}
    if config is not None:
        extra["WEI_GEN_CONFIG"] = str(config.resolve())
    if weigen.config.checkpointer:
        extra["WEI_GEN_CHECKPOINTER"] = weigen.config.checkpointer
    if not weigen.config.api_tokens:
        extra["WEI_GEN_API_TOKEN"] = token = new_token()
        out.print(f"API token for this server (no token configured): [bold]{token}[/]")
    out.print(f"wei-gen at http://{host}:{port}/ · sessions in {escape(str(store))} · Ctrl-C stops")
    raise typer.Exit(run_server(store, host, port, jobs, {**extra, **_passthrough()}))


def _passthrough() -> dict[str, str]:
    # The server process inherits the environment anyway; named here so a reader sees what it relies on.
    names = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WEI_GEN_LAB")
    return {k: os.environ[k] for k in names if k in os.environ}
