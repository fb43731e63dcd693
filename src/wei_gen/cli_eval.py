"""CLI command ``wei-gen eval``: generation quality over a gold set (registered on ``wei_gen.cli.app``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from wei_gen.cli import EXIT_OK, EXIT_PROBLEMS, FormatOpt, app, check_format, err, fail, out
from wei_gen.context import load_config
from wei_gen.evaluation import evaluate, load_gold, render_table
from wei_gen.yamlio import InputError


@app.command("eval")
def eval_gold(
    gold: Annotated[Path, typer.Argument(help="Gold file: a YAML list of tasks.", show_default=False)],
    lab: Annotated[
        Path | None,
        typer.Option("--lab", help="Run every task on this lab (default: each task's own lab).", show_default=False),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="provider:model (or 'offline') for every agent.", show_default=False),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="wei-gen config file (models, settings).", show_default=False)
    ] = None,
    output_format: FormatOpt = "text",
) -> None:
    """Run every gold task through the pipeline and score it (feasibility, validity, z3, F1, order, args, cost).

    Exit 0 when every task's feasibility verdict is right, 1 when one is wrong, 2 when it could not run.
    """
    fmt = check_format(output_format)
    try:
        tasks = load_gold(gold)
        context = load_config(config).context
    except InputError as exc:
        raise fail(str(exc)) from None
    if lab is not None and not (lab / "workcell.yaml").is_file():
        raise fail(f"{lab} is not a lab directory (no workcell.yaml)")
    if model:
        context = context.with_model(model)
    notice = context.planner_notice()
    if notice:
        err.print(f"[yellow]{escape(notice)}[/]")
    report = evaluate(tasks, context, str(lab.resolve()) if lab is not None else None)
    if fmt == "json":
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        out.print(escape(render_table(report)))
    wrong = any(not t["verdict_correct"] for t in report["tasks"])
    raise typer.Exit(EXIT_PROBLEMS if wrong else EXIT_OK)
