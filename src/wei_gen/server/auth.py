"""Bearer tokens: each configured token is an owner; sessions and threads belong to the owner that created them.

The owner id stored in the registry and in thread metadata is a hash of the token, never the token. ``auth`` is the
LangGraph custom-auth object (``langgraph.json`` ``auth.path``): it protects the LangGraph threads/runs API with the
same tokens and shows each owner only its own threads. Our REST endpoints check tokens themselves (`owner_for`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from langgraph_sdk import Auth

from wei_gen.context import AppConfig, load_config

CONFIG_ENV = "WEI_GEN_CONFIG"
"""Environment variable naming the server's wei-gen config file (``wei-gen serve --config`` sets it)."""


@lru_cache(maxsize=1)
def server_config() -> AppConfig:
    """The server's configuration: ``$WEI_GEN_CONFIG`` (if set) plus the environment, loaded once."""
    path = os.environ.get(CONFIG_ENV)
    return load_config(Path(path) if path else None)


def owner_id(token: str) -> str:
    """The owner a token stands for: a short hash (the token itself is never stored)."""
    return "o_" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:24]


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header ("" when there is none)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def owner_for(authorization: str | None, tokens: Iterable[str]) -> str | None:
    """The owner of a request's bearer token, or None when it is missing or not one of ``tokens``."""
    token = bearer_token(authorization)
    if not token:
        return None
    # Compare against every token in constant time, so timing does not reveal how much of a token matched.
    matched = [t for t in tokens if hmac.compare_digest(t.encode("utf-8"), token.encode("utf-8"))]
    return owner_id(token) if matched else None


auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    """LangGraph API requests need one of the configured bearer tokens."""
    owner = owner_for(authorization, server_config().api_tokens)
    if owner is None:
        raise Auth.exceptions.HTTPException(status_code=401, detail="missing or unknown bearer token")
    return {"identity": owner}


@auth.on.threads
async def own_threads(ctx: Auth.types.AuthContext, value: Any) -> dict[str, str]:
    """Threads (and their runs, state and history) are visible only to their owner; new ones get the caller's."""
    if isinstance(value, dict) and ctx.action in ("create", "update"):
        # The owner is set by the server, never by the caller (an update cannot hand a thread to someone else).
        value["metadata"] = {**(value.get("metadata") or {}), "owner": ctx.user.identity}
    return {"owner": ctx.user.identity}


@auth.on.assistants.read
async def read_assistants(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Every token may see the graphs' assistants (Studio and clients need them to start runs)."""
    return True


@auth.on.assistants.search
async def search_assistants(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Every token may list the graphs' assistants."""
    return True


@auth.on
async def deny_the_rest(ctx: Auth.types.AuthContext, value: Any) -> bool:
    """Everything else (changing assistants, crons, the shared store) is refused: wei-gen does not use it."""
    return False
