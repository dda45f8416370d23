"""The simulator's connection to its SQL tables: engine creation and per-dialect tuning.

Touches SQLAlchemy only. SQLite gets WAL, a busy timeout and write transactions that take the
write lock at BEGIN, so concurrent workers queue instead of failing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from backends.simulator.schema import metadata

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///occi.db"
#: Execution option marking a connection whose transaction only reads (SQLite: plain BEGIN).
READ_ONLY = "sim_read_only"
#: Execution option marking a connection that runs one statement, atomic on its own (SQLite:
#: no BEGIN at all, autocommit; the write lock is held for that statement only).
SINGLE = "sim_single"
BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Use the psycopg (3) driver for bare PostgreSQL URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str | None) -> Engine:
    url = normalise_url(url or DEFAULT_URL)
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True)
    else:
        memory = url in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in url
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        _tune_sqlite(engine, wal=not memory)
    create_tables(engine)
    return engine


def _tune_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if wal:
            # WAL with synchronous NORMAL, as the server's own store: a commit no longer waits
            # for an fsync (about 2 ms here, once per operation), and a power loss can drop
            # only the last commits, never corrupt the file.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock now: a read-then-write transaction cannot be overtaken
        # by another writer between its read and its write (no SQLITE_BUSY_SNAPSHOT).
        options = conn.get_execution_options()
        if options.get(SINGLE, False):
            return
        conn.exec_driver_sql("BEGIN" if options.get(READ_ONLY, False) else "BEGIN IMMEDIATE")


def create_tables(engine: Engine) -> None:
    """Create the sim_ tables if missing; tolerate another process creating them meanwhile."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError:
        log.info("simulator tables were created concurrently; checking again")
        metadata.create_all(engine, checkfirst=True)
