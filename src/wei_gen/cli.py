"""The ``wei-gen`` command line: validate workflows against a lab, show a lab as the models see it.

Exit codes follow one rule everywhere: 0 = checked and clean, 1 = checked and problems found, 2 = could not check
(bad lab, unreadable file, bad options). Bad input never prints a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from wei_gen.lab import (
    Lab,
    lab_from_dir,
    lab_from_live,
    lab_from_workcell_and_abouts,
    raw_lab_json,
    render_capability_cards,
)
from wei_gen.tools.validator import Diagnostic, ValidationReport, validate_file
from wei_gen.yamlio import InputError, load_yaml_file, read_text

app = typer.Typer(
    name="wei-gen",
    help="Generate and check WEI workflows for your lab.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_PROBLEMS, EXIT_CANNOT_RUN = 0, 1, 2
OutputFormat = Literal["text", "json"]

LabDirOpt = Annotated[
    Path | None,
    typer.Option("--lab", help="Lab directory: workcell.yaml + abouts/<module>.json.", show_default=False),
]
WorkcellOpt = Annotated[Path | None, typer.Option("--workcell", help="Workcell YAML file.", show_default=False)]
AboutsOpt = Annotated[
    Path | None,
    typer.Option("--abouts", help="Folder of <module>.json abouts (with --workcell).", show_default=False),
]
LiveOpt = Annotated[bool, typer.Option("--live", help="Fetch each module's GET /about (with --workcell).")]
LenientOpt = Annotated[
    bool,
    typer.Option("--lenient-abouts", help="Treat a broken about as an unknown module (as WEI does), not an error."),
]
FormatOpt = Annotated[str, typer.Option("--format", help="text or json.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each module's /about (--live).")]


def fail(message: str) -> typer.Exit:
    """Print a could-not-run message and return the exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(EXIT_CANNOT_RUN)


def load_lab(
    lab: Path | None, workcell: Path | None, abouts: Path | None, live: bool, lenient: bool, timeout: float = 5.0
) -> Lab:
    """Load the lab from whichever of the three sources the options name; an unusable one is a could-not-run error."""
    if lab is not None and (workcell or abouts or live):
        raise fail("give either --lab DIR or --workcell FILE with --abouts DIR / --live, not both")
    try:
        if lab is not None:
            return lab_from_dir(lab, strict=not lenient)
        if workcell is None:
            raise fail("no lab given: use --lab DIR, or --workcell FILE with --abouts DIR or --live")
        if live:
            return lab_from_live(workcell, timeout=timeout)
        if abouts is None:
            raise fail("--workcell needs --abouts DIR (or --live to ask the running modules)")
        return lab_from_workcell_and_abouts(workcell, abouts, strict=not lenient)
    except InputError as exc:
        raise fail(f"cannot load the lab: {exc}") from None


def optional_lab(lab: Path | None) -> Lab | None:
    """The lab of an optional ``--lab DIR``."""
    return load_lab(lab, None, None, live=False, lenient=False) if lab is not None else None


def parse_params(items: list[str]) -> dict[str, Any] | None:
    """``name=value`` pairs; values are read as YAML scalars (175 -> int, true -> bool)."""
    if not items:
        return None
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise fail(f"--param takes name=value, got '{item}'")
        try:
            params[name.strip()] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            params[name.strip()] = value
    return params


def check_format(fmt: str) -> OutputFormat:
    """Accept only the formats we print."""
    if fmt not in ("text", "json"):
        raise fail(f"--format must be text or json, not '{fmt}'")
    return "json" if fmt == "json" else "text"


_MARK = {"error": "[bold red]✗ error[/]", "warning": "[yellow]! warning[/]", "info": "[cyan]i info[/]"}


def render_diagnostic(d: Diagnostic) -> str:
    """One diagnostic as scientist-readable text (rich markup)."""
    where = []
    if d.step_index is not None:
        where.append(f"step {d.step_index + 1}" + (f' "{escape(d.step_name)}"' if d.step_name else ""))
    if d.line is not None:
        where.append(f"line {d.line}" + (f", column {d.column}" if d.column else ""))
    location = f" ({', '.join(where)})" if where else ""
    text = f"  {_MARK[d.severity]}{location}: {escape(d.message)} [dim]\\[{d.code}][/]"
    if d.hint:
        text += f"\n      [dim]hint:[/] {escape(d.hint)}"
    return text


def render_report(report: ValidationReport, *, show_info: bool) -> None:
    """Print one file's result."""
    n_err, n_warn = len(report.errors), len(report.warnings)
    status = "[bold red]FAIL[/]" if n_err else "[bold green]OK[/]"
    out.print(f"{status} {escape(report.source)}: {n_err} error(s), {n_warn} warning(s)")
    for d in report.diagnostics:
        if d.severity != "info" or show_info:
            out.print(render_diagnostic(d))
    if report.payload_keys:
        out.print(f"  [dim]the run needs payload keys:[/] {escape(', '.join(report.payload_keys))}")


FileKind = Literal["workflow", "ot2-protocol"]


def file_kind(path: Path) -> FileKind:
    """What a file to validate is: an OT-2 protocol config (equipment/commands) or, by default, a WEI workflow.

    Raises:
        InputError: the file cannot be read (a parse error is the validator's to report, as a diagnostic).
    """
    from wei_gen.tools.protocol import is_protocol_config

    text = read_text(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return "workflow"
    return "ot2-protocol" if is_protocol_config(data) else "workflow"


@app.command()
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Workflow YAML files and/or OT-2 protocol configs.", show_default=False)
    ],
    lab: LabDirOpt = None,
    workcell: WorkcellOpt = None,
    abouts: AboutsOpt = None,
    live: LiveOpt = False,
    lenient_abouts: LenientOpt = False,
    timeout: TimeoutOpt = 5.0,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="name=value supplied at run time (repeatable).")
    ] = None,
    values: Annotated[
        Path | None,
        typer.Option("--values", help="The user's values (YAML or text): OT-2 volumes must come from them."),
    ] = None,
    output_format: FormatOpt = "text",
    info: Annotated[bool, typer.Option("--info", help="Also print info-level notes.")] = False,
) -> None:
    """Check workflows against the lab and OT-2 protocol configs against labware facts (the kind is detected).

    Exit 0 = no errors, 1 = errors found, 2 = could not run. Protocol configs alone need no lab.
    """
    from wei_gen.tools.protocol import parse_values, validate_protocol_file

    fmt = check_format(output_format)
    params = parse_params(param or [])
    try:
        kinds = [(path, file_kind(path)) for path in files]
        user_values = parse_values(read_text(values)) if values is not None else None
    except InputError as exc:
        raise fail(str(exc)) from None
    the_lab: Lab | None = None
    if any(kind == "workflow" for _, kind in kinds) or lab or workcell:
        the_lab = load_lab(lab, workcell, abouts, live, lenient_abouts, timeout)
    reports: list[tuple[FileKind, ValidationReport]] = []
    for path, kind in kinds:
        try:
            if kind == "ot2-protocol":
                reports.append((kind, validate_protocol_file(path, user_values)))
            elif the_lab is not None:  # always loaded above when a workflow is among the files
                reports.append((kind, validate_file(path, the_lab, parameters=params)))
        except InputError as exc:
            raise fail(str(exc)) from None
    failed = sum(1 for _, r in reports if not r.ok)
    if fmt == "json":
        lab_info = (
            {"source": the_lab.source, "workcell": the_lab.workcell.name, "notes": the_lab.notes} if the_lab else None
        )
        payload = {
            "lab": lab_info,
            "files": [r.model_dump(mode="json") | {"ok": r.ok, "kind": kind} for kind, r in reports],
            "summary": {
                "files": len(reports),
                "failed": failed,
                "errors": sum(len(r.errors) for _, r in reports),
                "warnings": sum(len(r.warnings) for _, r in reports),
            },
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        for note in the_lab.notes if the_lab else []:
            out.print(f"[yellow]lab note:[/] {escape(note)}")
        for kind, report in reports:
            if kind == "ot2-protocol":
                out.print(f"[dim]{escape(report.source)}: OT-2 protocol config[/]")
            render_report(report, show_info=info)
        if len(reports) > 1:
            against = f" against {escape(the_lab.workcell.name)}" if the_lab else ""
            out.print(f"\n{len(reports)} file(s) checked{against}: {failed} with errors")
    raise typer.Exit(EXIT_PROBLEMS if failed else EXIT_OK)


@app.command()
def check(
    files: Annotated[list[Path], typer.Argument(help="Workflow YAML files.", show_default=False)],
    lab: LabDirOpt = None,
    workcell: WorkcellOpt = None,
    abouts: AboutsOpt = None,
    semantics: Annotated[
        Path | None, typer.Option("--semantics", help="Action semantics YAML (else the lab's semantics.yaml).")
    ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="name=value (repeatable).")] = None,
    output_format: FormatOpt = "text",
) -> None:
    """Check the labware flow with z3: exit 0 = sat, 1 = unsat (with reasons), 2 = could not run."""
    from wei_gen.tools.flow import FlowReport, check_flow, steps_from_workflow
    from wei_gen.tools.semantics import LabSemantics, load_semantics

    fmt = check_format(output_format)
    params = parse_params(param or [])
    try:
        the_lab = load_lab(lab, workcell, abouts, False, False)
        sem = LabSemantics(the_lab, load_semantics(semantics) if semantics else None)
        loaded = [(path, load_yaml_file(path).data) for path in files]
    except InputError as exc:
        raise fail(str(exc)) from None
    results: list[tuple[Path, FlowReport]] = []
    for path, data in loaded:
        if not isinstance(data, dict) or not isinstance(data.get("flowdef"), list):
            raise fail(f"{path}: not a WEI workflow (no flowdef list); run 'wei-gen validate' for details")
        results.append((path, check_flow(steps_from_workflow(data, params), the_lab, sem)))
    unsat = sum(1 for _, r in results if r.verdict == "unsat")
    if fmt == "json":
        payload = [{"file": str(p), **r.model_dump(mode="json")} for p, r in results]
        sys.stdout.write(
            json.dumps({"files": payload, "summary": {"files": len(results), "unsat": unsat}}, indent=2) + "\n"
        )
    else:
        for path, report in results:
            render_flow(path, report)
    raise typer.Exit(EXIT_PROBLEMS if unsat else EXIT_OK)


def render_flow(path: Path, report: Any) -> None:
    """Print one flow verdict: reasons, unchecked steps, required initial setup."""
    mark = "[bold green]SAT[/]" if report.verdict == "sat" else "[bold red]UNSAT[/]"
    checked = "" if not report.unchecked else f" ({len(report.unchecked)} step(s) unchecked)"
    out.print(f"{mark} {escape(str(path))}{checked}")
    for d in report.diagnostics:
        if d.severity == "error":
            out.print(render_diagnostic(d))
    for d in report.diagnostics:
        if d.code == "flow-unchecked":
            out.print(f"  [dim]unchecked: step {(d.step_index or 0) + 1}: {escape(d.message)}[/]")
    if report.verdict == "sat":
        out.print("  [bold]initial setup:[/] " + escape(report.setup_text().replace("\n", "\n  ")))


DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where the example index lives (default $WEI_GEN_DATA_DIR or .wei_gen)."),
]
ChromaOpt = Annotated[str, typer.Option("--chroma-url", help="A chroma server (http://host:port) instead of embedded.")]
examples_app = typer.Typer(help="Search the example-workflow index.", no_args_is_help=True)
app.add_typer(examples_app, name="examples")


def open_index(data_dir: Path | None, chroma_url: str) -> Any:
    """The example index, or a could-not-run exit when the offline embedding weights are missing."""
    from wei_gen.context import default_data_dir
    from wei_gen.tools.embeddings import EmbeddingUnavailable, embedder_available
    from wei_gen.tools.retriever import ExampleIndex

    ok, why = embedder_available()
    if not ok:
        raise fail(why)
    try:
        return ExampleIndex(data_dir or default_data_dir(), chroma_url=chroma_url)
    except EmbeddingUnavailable as exc:
        raise fail(str(exc)) from None


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Workflow files or folders.", show_default=False)],
    lab: LabDirOpt = None,
    data_dir: DataDirOpt = None,
    chroma_url: ChromaOpt = "",
    output_format: FormatOpt = "text",
) -> None:
    """Add example workflows to the index (idempotent: unchanged files are skipped)."""
    fmt = check_format(output_format)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"not found: {', '.join(missing)}")
    the_lab = optional_lab(lab)
    result = open_index(data_dir, chroma_url).index(paths, lab=the_lab.workcell.name if the_lab else "")
    if fmt == "json":
        sys.stdout.write(json.dumps(result.__dict__, indent=2) + "\n")
        return
    out.print(f"indexed: {len(result.added)} new, {len(result.replaced)} updated, {len(result.unchanged)} unchanged")
    for path, why in result.skipped:
        out.print(f"  [yellow]skipped[/] {escape(path)}: {escape(why)}")


@examples_app.command("search")
def examples_search(
    text: Annotated[str, typer.Argument(help="What the experiment does.", show_default=False)],
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 3,
    lab: LabDirOpt = None,
    data_dir: DataDirOpt = None,
    chroma_url: ChromaOpt = "",
    output_format: FormatOpt = "text",
) -> None:
    """Print the example workflows closest to TEXT, with their scores and sources."""
    fmt = check_format(output_format)
    the_lab = optional_lab(lab)
    hits = open_index(data_dir, chroma_url).search(text, k, lab=the_lab)
    if fmt == "json":
        sys.stdout.write(json.dumps([h.model_dump(mode="json") for h in hits], indent=2) + "\n")
        return
    if not hits:
        out.print("no examples indexed yet: run 'wei-gen index PATH...'")
    for rank, hit in enumerate(hits, 1):
        out.print(f"{rank}. [bold]{escape(hit.doc.name)}[/] score {hit.score:.3f} (similarity {hit.similarity:.3f})")
        out.print(f"   {escape(hit.doc.source)}\n   [dim]{escape(hit.doc.steps)}[/]")


@app.command()
def simulate(
    script: Annotated[Path, typer.Argument(help="The experiment script (Python).", show_default=False)],
    workflow: Annotated[
        Path,
        typer.Option("--workflow", help="The workflow YAML it runs (given as workflow.yaml).", show_default=False),
    ],
    lab: LabDirOpt = None,
    workcell: WorkcellOpt = None,
    abouts: AboutsOpt = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds the script may run.")] = 60.0,
    fail_step: Annotated[
        str | None,
        typer.Option("--fail-step", help="Make a step fail: 0-based index (WEI's step_index) or step name."),
    ] = None,
    output_format: FormatOpt = "text",
) -> None:
    """Dry-run a script against a simulated lab: exit 0 = ran its workflow cleanly, 1 = problems, 2 = could not run."""
    from wei_gen.simlab.runner import SimulationError, simulate_script

    fmt = check_format(output_format)
    the_lab = load_lab(lab, workcell, abouts, False, True)  # broken abouts = unknown modules, as in WEI
    step: int | str | None = fail_step
    if fail_step is not None and fail_step.strip().isdigit():
        step = int(fail_step)
    try:
        result = simulate_script(
            script, workflow, lab_dir=lab, workcell=workcell, abouts=abouts, timeout=timeout, fail_step=step
        )
    except (SimulationError, InputError) as exc:
        raise fail(str(exc)) from None
    if fmt == "json":
        sys.stdout.write(json.dumps(result.model_dump(mode="json") | {"ok": result.ok}, indent=2) + "\n")
        raise typer.Exit(EXIT_OK if result.ok else EXIT_PROBLEMS)
    status = "[bold green]OK[/]" if result.ok else "[bold red]PROBLEMS[/]"
    ended = "timed out" if result.timed_out else f"exit code {result.returncode}"
    out.print(f"{status} {escape(str(script))} on simulated {escape(the_lab.workcell.name)} ({ended})")
    for n, run in enumerate(result.trace.runs, 1):
        out.print(
            f"  run {n}: '{escape(run.workflow_name or run.workflow_source)}' {run.status}"
            f" [dim]parameters {escape(json.dumps(run.effective_parameters or run.parameters or {}))}[/]"
        )
        for rec in run.steps:
            mark = "[green]✓[/]" if rec.status == "succeeded" else "[bold red]✗[/]"
            args = escape(json.dumps(rec.args)) if rec.args else ""
            what = escape(f"[{rec.index}] {rec.name}: {rec.module}.{rec.action}")
            line = f"    {mark} {what} [dim]{args}[/]"
            out.print(line + (f"\n        [red]{escape(rec.error)}[/]" if rec.error else ""))
        if run.error:
            out.print(f"    [red]the script got {escape(run.error)}[/]")
    for problem in result.problems:
        out.print(f"  [bold red]✗ problem:[/] {escape(problem)}")
    if result.stderr_tail.strip():
        out.print("  [dim]stderr (last lines):[/]\n    " + escape(result.stderr_tail).replace("\n", "\n    "))
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PROBLEMS)


@app.command("lab")
def show_lab(
    lab: LabDirOpt = None,
    workcell: WorkcellOpt = None,
    abouts: AboutsOpt = None,
    live: LiveOpt = False,
    lenient_abouts: LenientOpt = False,
    timeout: TimeoutOpt = 5.0,
    output_format: FormatOpt = "text",
) -> None:
    """Show the lab as the models see it (capability cards) and how much smaller that is than a raw dump."""
    fmt = check_format(output_format)
    the_lab = load_lab(lab, workcell, abouts, live, lenient_abouts, timeout)
    cards, raw = render_capability_cards(the_lab), raw_lab_json(the_lab)
    unknown = {n: m.about_problem for n, m in the_lab.modules.items() if m.about is None}
    if fmt == "json":
        payload = {
            "workcell": the_lab.workcell.name,
            "cards": cards,
            "cards_chars": len(cards),
            "raw_json_chars": len(raw),
            "unknown_modules": unknown,
            "notes": the_lab.notes,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    out.print(escape(cards))
    for note in the_lab.notes:
        out.print(f"[yellow]lab note:[/] {escape(note)}")
    out.print(
        f"[dim]capability cards: {len(cards):,} characters; raw JSON dump of the same lab: {len(raw):,} "
        f"characters ({100 * len(cards) / max(len(raw), 1):.0f} %)[/]"
    )


def main() -> None:
    """Console-script entry point."""
    # Command groups living in their own modules register themselves on ``app`` when imported.
    from wei_gen import cli_eval, cli_run  # noqa: F401

    app()


if __name__ == "__main__":
    main()
