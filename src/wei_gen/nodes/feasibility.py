"""Feasibility: can the lab run this experiment? P(yes) from the first answer token's logprobs.

P(yes) is the sum of ``exp(logprob)`` over the first token's top candidates that read "yes" (any case, any
surrounding space). Providers that return no logprobs get a structured verdict instead. Below the threshold the run
ends with status ``infeasible`` and the missing capability named; that is an answer, not an exception.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from wei_gen.context import Context
from wei_gen.models import call_structured, retry_after_respected, usage_of
from wei_gen.nodes.common import chat_model, experiment_text, is_offline, lab_and_cards, turns
from wei_gen.offline.nodes import offline_feasibility
from wei_gen.prompts import DATA_RULE, FEASIBILITY_FALLBACK_SYSTEM, FEASIBILITY_SYSTEM, INFEASIBLE_SYSTEM
from wei_gen.state import Feasibility, State, Status, Usage, add_usage


class FeasibilityVerdict(BaseModel):
    """Structured verdict, used when the provider gives no logprobs."""

    feasible: bool = Field(description="whether the lab can carry out the experiment")
    confidence: float = Field(description="confidence in this verdict, 0 to 1")
    missing_capability: str = Field(default="", description="what the lab lacks, when not feasible")
    reason: str = Field(default="", description="why, in one or two sentences")


class Infeasibility(BaseModel):
    """Why an experiment cannot run in the lab."""

    missing_capability: str = Field(description="the instrument or action the lab lacks, in a few words")
    reason: str = Field(description="why, in one or two sentences")


def p_yes_from_logprobs(message: AIMessage) -> float | None:
    """P(yes) from the first token's top logprobs, or None when the answer carries none."""
    content = ((message.response_metadata or {}).get("logprobs") or {}).get("content") or []
    if not content:
        return None
    first: dict[str, Any] = content[0]
    candidates = first.get("top_logprobs") or [{"token": first.get("token", ""), "logprob": first.get("logprob")}]
    total = sum(
        math.exp(float(c["logprob"]))
        for c in candidates
        if c.get("logprob") is not None and str(c.get("token", "")).strip().lower() == "yes"
    )
    return min(total, 1.0)


def check_feasibility(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the framework model whether the lab can do the experiment and store P(yes) as validity."""
    if is_offline(runtime, "framework"):
        return offline_feasibility(state, runtime)
    _, cards = lab_and_cards(state, runtime)
    model = chat_model(runtime, "framework")
    user = experiment_text(state)
    messages: list[BaseMessage] = [
        SystemMessage(FEASIBILITY_SYSTEM.format(lab_cards=cards, data_rule=DATA_RULE)),
        HumanMessage(user),
    ]
    with retry_after_respected():
        answer = model.bind(logprobs=True, top_logprobs=5, max_tokens=1).invoke(messages)
    usage = {"feasibility": usage_of(answer, messages)}
    p_yes = p_yes_from_logprobs(answer) if isinstance(answer, AIMessage) else None
    missing, reason = "", ""
    method: Literal["logprobs", "structured"] = "logprobs"
    if p_yes is None:  # no logprobs from this provider: ask for a structured verdict
        method = "structured"
        p_yes, missing, reason, fallback_usage = _structured_verdict(model, cards, user)
        usage = add_usage(usage, {"feasibility": fallback_usage})
    feasible = p_yes > runtime.context.feasibility_threshold
    if not feasible and not missing:
        missing, reason, explain_usage = _explain(model, cards, user)
        usage = add_usage(usage, {"feasibility": explain_usage})
    verdict = Feasibility(p_yes=p_yes, feasible=feasible, method=method, missing_capability=missing, reason=reason)
    update: dict[str, Any] = {
        "feasibility": verdict,
        "usage": usage,
        "contexts": {"framework": turns(user, f"feasible: {feasible} (P(yes) = {p_yes:.2f}) {reason}".strip())},
    }
    if not feasible:
        why = f"the lab lacks {missing}: {reason}" if missing else reason or "the model judged it infeasible"
        update["status"] = Status(state="infeasible", step="check_feasibility", reason=f"P(yes) = {p_yes:.2f}; {why}")
    return update


def _structured_verdict(model: Any, cards: str, user: str) -> tuple[float, str, str, Usage]:
    system = FEASIBILITY_FALLBACK_SYSTEM.format(lab_cards=cards, data_rule=DATA_RULE)
    out = call_structured(model, FeasibilityVerdict, [SystemMessage(system), HumanMessage(user)])
    if out.value is None:
        # An unreadable verdict is no evidence either way: P = 0.5 fails the strict "> threshold" test.
        return 0.5, "", f"no usable feasibility verdict ({out.error})", out.usage
    confidence = min(max(out.value.confidence, 0.0), 1.0)
    p_yes = confidence if out.value.feasible else 1.0 - confidence
    return p_yes, out.value.missing_capability, out.value.reason, out.usage


def _explain(model: Any, cards: str, user: str) -> tuple[str, str, Usage]:
    system = INFEASIBLE_SYSTEM.format(lab_cards=cards, data_rule=DATA_RULE)
    out = call_structured(model, Infeasibility, [SystemMessage(system), HumanMessage(user)])
    if out.value is None:
        return "", f"(no explanation: {out.error})", out.usage
    return out.value.missing_capability, out.value.reason, out.usage
