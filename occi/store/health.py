"""Whether this process reaches its database, as its transactions find it.

While the database is down every transaction fails: requests, job threads polling, heartbeats,
the change listener. Each used to log its own failure, thousands of lines a minute saying the
same thing. The store reports every failure and every success here instead; the log gets one
line when the database becomes unreachable and one when it is reachable again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("occi.store")


class Reachability:
    """The database's state as this process last saw it; logs each change of it once."""

    def __init__(self, on_lost: Callable[[], None] | None = None) -> None:
        """`on_lost` runs once when the database becomes unreachable (the store drops its
        pooled connections then: they are dead, and would each fail once after it is back)."""
        self._down_since: float | None = None
        self._lock = threading.Lock()
        self._on_lost = on_lost

    @property
    def reachable(self) -> bool:
        return self._down_since is None

    def failed(self, exc: BaseException) -> None:
        """A transaction could not reach the database (or lost it)."""
        with self._lock:
            if self._down_since is not None:
                log.debug("database still unreachable: %s", describe_failure(exc))
                return
            self._down_since = time.monotonic()
        log.warning("database unreachable: %s", describe_failure(exc))
        if self._on_lost is not None:
            self._on_lost()

    def ok(self) -> None:
        """A transaction went through. Cheap when nothing changed (every request calls it)."""
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.warning("database reachable again after %.1f s", time.monotonic() - since)


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means the database cannot be reached (down, restarting, the
    connection lost) rather than that one statement failed (a deadlock, SQLite's busy lock):
    those are the request's own trouble and are logged with it."""
    if getattr(exc, "connection_invalidated", False):
        return True
    orig = getattr(exc, "orig", None)
    if orig is not None and hasattr(orig, "sqlstate"):  # psycopg: no state when no server answered
        state = orig.sqlstate or ""
        return not state or state.startswith(("08", "57P"))
    text = str(orig or exc).lower()
    return not ("locked" in text or "busy" in text)


def describe_failure(exc: BaseException) -> str:
    """The driver's own message, first line: SQLAlchemy adds the statement and a link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
