"""The instrument shortlist: which lab modules the workflow will use, each checked to exist in the lab.

The model proposes; deterministic code keeps only real modules and adds every module the (checked) plan uses, so
the shortlist can never name an instrument the lab does not have nor miss one the plan needs.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from wei_gen.context import Context
from wei_gen.lab import Lab
from wei_gen.models import call_structured
from wei_gen.nodes.common import chat_model, is_offline, lab_and_cards, turns
from wei_gen.offline.nodes import offline_shortlist
from wei_gen.prompts import SHORTLIST_SYSTEM, SHORTLIST_USER
from wei_gen.state import Plan, Shortlist, ShortlistEntry, State


def reconcile_shortlist(proposed: Shortlist | None, plan: Plan | None, lab: Lab) -> tuple[Shortlist, list[str]]:
    """Keep proposed modules that exist, add the plan's modules; return notes on what was dropped or added."""
    notes: list[str] = []
    kept: dict[str, ShortlistEntry] = {}
    for entry in proposed.modules if proposed else []:
        if lab.module(entry.module) is None:
            notes.append(f"dropped '{entry.module}': not a module of this lab")
        elif entry.module not in kept:
            kept[entry.module] = entry
    for step in plan.steps if plan else []:
        if step.instrument not in kept and lab.module(step.instrument) is not None:
            kept[step.instrument] = ShortlistEntry(module=step.instrument, why=step.purpose or step.action)
            notes.append(f"added '{step.instrument}': the plan uses it")
    return Shortlist(modules=list(kept.values())), notes


def make_shortlist(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask which instruments are needed, then reconcile the answer with the lab and the plan."""
    if is_offline(runtime, "framework"):
        return offline_shortlist(state, runtime)
    lab, cards = lab_and_cards(state, runtime)
    plan = state.get("plan")
    user = SHORTLIST_USER.format(plan=plan.model_dump_json() if plan else "(no plan)")
    out = call_structured(
        chat_model(runtime, "framework"),
        Shortlist,
        [SystemMessage(SHORTLIST_SYSTEM.format(lab_cards=cards)), HumanMessage(user)],
    )
    shortlist, notes = reconcile_shortlist(out.value, plan, lab)
    answer = ", ".join(e.module for e in shortlist.modules) + (f" ({'; '.join(notes)})" if notes else "")
    return {
        "shortlist": shortlist,
        "usage": {"make_shortlist": out.usage},
        "contexts": {"framework": turns(user, answer if out.value else f"{out.error}; using the plan's modules")},
    }
