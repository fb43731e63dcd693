"""The scripted model answers for the browser test: the PCR experiment of the end-to-end tests, plus a chat reply."""

from __future__ import annotations

from tests.integration.test_pipeline_e2e import DESCRIPTION, VALUES, pcr_rules
from tests.support.scripted_openai import Reply, Rule, rule

__all__ = ["CHAT_REPLY", "DESCRIPTION", "VALUES", "scripted_rules"]

CHAT_REPLY = "The peeler runs at its default settings; nothing in the workflow needs changing for that."


def scripted_rules() -> list[Rule]:
    """Every task of the PCR session, and one plain-text answer for chat refinements (no new artifact)."""
    return [*pcr_rules(), rule(Reply.text(CHAT_REPLY), contains="<task>refine", repeat=True)]
