"""The rows of recent reads (one entity, a page of one kind), kept in memory by each server
process.

A GET of one entity is the most frequent request a cloud API serves. Answered from memory it
costs no database round trip; on this project's 2-core test machines that doubles its rate.

On PostgreSQL it is kept correct by the database itself: a statement trigger on the entities
table (migration 0004) sends NOTIFY occi_entities for every change, whoever makes it: this
server, another one behind the load balancer, the job runner, an administrator's psql
session. Each process's listener drops the whole cache when one arrives. A process also drops it itself, synchronously, when one
of its own write transactions commits, so a client that writes and reads through one process
always reads its write.

What is given up: a read served by process B just after a write committed by process A can be
as old as the notification's way from PostgreSQL to B (normally well under a millisecond).
Conditional requests and requests with `Cache-Control: no-cache` always read the database, and
every write compares versions in the database (If-Match, optimistic locking), never here.

The cache is used only while its listener is connected and the trigger exists; when the
listener loses its connection the cache is emptied and switched off until it is back.

On SQLite (one host, any number of processes) there is no notification: before each use of
the cache the process asks SQLite whether any connection committed since it last asked
(`PRAGMA data_version`, SqliteChanges) and drops everything when one did. Nothing is ever
older than the last commit that finished before the read began, so SQLite gives up nothing.
Any commit drops the cache (a job's, a heartbeat's), which costs only misses.

Races: a reader notes the generation before its query and stores its rows only if no flush
happened meanwhile. A notification that arrives after the rows are stored drops them again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

#: what a DB-API cursor's fetchall() gives (PEP 249 promises a sequence of rows)
Rows = Sequence[tuple[Any, ...]]
#: what the cache keeps: an entity's rows, or what a collection read made of its rows
Kept = Sequence[Any]


class EntityCache:
    """Entity id -> the rows of its one-entity read. Thread-safe; bounded, oldest out first."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._rows: dict[str, Kept] = {}
        self._lock = threading.Lock()
        self._generation = 0
        self._enabled = False
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def generation(self) -> int:
        """Note this before reading the database; pass it to put()."""
        return self._generation

    def get(self, entity_id: str) -> Kept | None:
        rows = self._rows.get(entity_id) if self._enabled else None
        if rows is None:
            self.misses += 1
        else:
            self.hits += 1
        return rows

    def put(self, entity_id: str, rows: Kept, generation: int) -> None:
        """Keep rows read by a query that began at `generation`, unless a flush came since."""
        with self._lock:
            if not self._enabled or generation != self._generation:
                return
            if entity_id not in self._rows and len(self._rows) >= self.capacity:
                del self._rows[next(iter(self._rows))]
            self._rows[entity_id] = rows

    def flush(self) -> None:
        with self._lock:
            self._generation += 1
            self._rows = {}

    def enable(self, on: bool) -> None:
        """Switch on (the listener is LISTENing) or off (it lost its connection); empties the
        cache either way, since changes may have gone unannounced."""
        with self._lock:
            self._generation += 1
            self._rows = {}
            self._enabled = on

    def __len__(self) -> int:
        return len(self._rows)


class SqliteChanges:
    """Tells whether anything was committed to a SQLite database since the last look.

    On SQLite the read cache has no NOTIFY to hear; `PRAGMA data_version` stands in for it.
    Its value, read on a connection, changes whenever another connection (of this process or
    any other on the host) has committed since that connection last read it. These
    connections only ever run that pragma, so every commit counts, and a look costs one
    shared-memory read of the WAL index: far less than the query it may save. Each thread
    has its own connection and its own last value (no lock between the request threads); a
    commit is then seen, and the cache dropped, once by each thread that looks.

    Read before each use of the cache, so a read that begins after a commit finished never
    gets rows from before it: a client that writes through one process and reads through
    another always reads its write.
    """

    def __init__(self, path: str, timeout: float):
        self._path = path
        self._timeout = timeout
        self._local = threading.local()
        self._opened: list[tuple[int, sqlite3.Connection]] = []  # (pid, every thread's one)
        self._lock = threading.Lock()  # guards _opened only

    def changed(self) -> bool:
        """True when a commit may have happened since this thread's last call (always, the
        first time and whenever the database cannot be read: the caller then drops what it
        keeps)."""
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        try:
            if conn is None or local.pid != os.getpid():  # a connection never crosses a fork
                conn = sqlite3.connect(
                    self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
                )
                local.conn, local.pid, local.version = conn, os.getpid(), None
                with self._lock:
                    self._opened.append((os.getpid(), conn))
            (version,) = conn.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error:
            local.conn = None
            return True
        if version == local.version:
            return False
        local.version = version
        return True

    def close(self) -> None:
        """Close this process's connections (a parent's, inherited through a fork, are left
        alone: closing them here would release the parent's locks)."""
        with self._lock:
            opened, self._opened = self._opened, []
        pid = os.getpid()
        for owner, conn in opened:
            if owner == pid:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
        self._local.conn = None
