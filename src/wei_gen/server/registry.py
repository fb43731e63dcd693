"""The server's durable record of sessions: owner, description, and the run last asked for.

The LangGraph dev runtime keeps threads and runs in memory and flushes them to disk every few seconds, so a server
killed in between forgets recent threads (the checkpoints themselves are safe in SQLite/PostgreSQL). This registry
is written before a run is started, in its own table: after a crash the server re-creates missing threads with
their owner and re-starts or resumes the runs that were cut off (see ``wei_gen.server.app``).

SQLite (a file beside the sessions) by default; the checkpointer's PostgreSQL database when sessions live there.
Calls are synchronous and short: the server runs them in a worker thread.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wei_gen.checkpoints import is_postgres

REGISTRY_FILE = "server.sqlite"
_COLUMNS = "session_id, owner, created_at, updated_at, description, pending"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS wei_gen_sessions (session_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
    "created_at TEXT NOT NULL, updated_at TEXT NOT NULL, description TEXT NOT NULL, pending TEXT NOT NULL)"
)


@dataclass(frozen=True)
class SessionRecord:
    """One registered session."""

    session_id: str
    """Thread id."""
    owner: str
    """Owner id (hash of the creating token)."""
    created_at: str
    """ISO time of creation."""
    updated_at: str
    """ISO time of the last run started."""
    description: str
    """The experiment as first described."""
    pending: dict[str, Any]
    """The run last asked for: ``{"input": ..., "since": <checkpoint id before it>}`` ({} when none)."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Registry:
    """Session records in SQLite (``path``) or PostgreSQL (``url``)."""

    def __init__(self, *, path: Path | None = None, url: str = ""):
        """Open (and create) the table; give exactly one of ``path`` and ``url``."""
        if (path is None) == (not url):
            raise ValueError("give a SQLite path or a PostgreSQL url")
        self.path, self.url = path, url
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        with self._cursor() as cur:
            cur.execute(_SCHEMA)

    @classmethod
    def for_store(cls, checkpointer: str, data_dir: Path) -> Registry:
        """The registry beside a session store: the same PostgreSQL database, or a SQLite file in ``data_dir``."""
        if is_postgres(checkpointer):
            return cls(url=checkpointer)
        return cls(path=data_dir / REGISTRY_FILE)

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.url:
            import psycopg

            with psycopg.connect(self.url, autocommit=True) as pg, pg.cursor() as cur:
                yield _PgCursor(cur)
            return
        assert self.path is not None
        # A fresh connection per call: calls come from worker threads; 30 s waits out another writer's lock.
        lite = sqlite3.connect(str(self.path), timeout=30)
        try:
            with lite:
                yield lite.cursor()
        finally:
            lite.close()

    def add(self, session_id: str, owner: str, description: str) -> bool:
        """Register a new session; False when the id is taken."""
        now = _now()
        with self._cursor() as cur:
            cur.execute("SELECT 1 FROM wei_gen_sessions WHERE session_id = ?", (session_id,))
            if cur.fetchone() is not None:
                return False
            cur.execute(
                f"INSERT INTO wei_gen_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, owner, now, now, description, "{}"),
            )
        return True

    def get(self, session_id: str) -> SessionRecord | None:
        """The record of a session, if registered."""
        with self._cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM wei_gen_sessions WHERE session_id = ?", (session_id,))
            row = cur.fetchone()
        return _record(row) if row is not None else None

    def set_pending(self, session_id: str, pending: dict[str, Any], description: str | None = None) -> None:
        """Record the run about to be started (and a new experiment's description)."""
        with self._cursor() as cur:
            if description is None:
                cur.execute(
                    "UPDATE wei_gen_sessions SET pending = ?, updated_at = ? WHERE session_id = ?",
                    (json.dumps(pending), _now(), session_id),
                )
            else:
                cur.execute(
                    "UPDATE wei_gen_sessions SET pending = ?, updated_at = ?, description = ? WHERE session_id = ?",
                    (json.dumps(pending), _now(), description, session_id),
                )

    def owned_by(self, owner: str) -> list[SessionRecord]:
        """An owner's sessions, most recently used first."""
        with self._cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM wei_gen_sessions WHERE owner = ? ORDER BY updated_at DESC", (owner,))
            return [_record(row) for row in cur.fetchall()]

    def all(self) -> list[SessionRecord]:
        """Every registered session."""
        with self._cursor() as cur:
            cur.execute(f"SELECT {_COLUMNS} FROM wei_gen_sessions ORDER BY updated_at DESC")
            return [_record(row) for row in cur.fetchall()]


def _record(row: Any) -> SessionRecord:
    sid, owner, created, updated, description, pending = row
    return SessionRecord(str(sid), str(owner), str(created), str(updated), str(description), json.loads(pending))


class _PgCursor:
    """A psycopg cursor taking SQLite's ``?`` placeholders (our statements contain no literal ``?``)."""

    def __init__(self, cur: Any):
        self._cur = cur

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self._cur.execute(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cur.fetchall())
