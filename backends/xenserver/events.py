"""XenServer events: a thread per process calling `event.from` on a session of its own, so that
changes made anywhere (XenCenter, `xe`, another server) reach the API within seconds.

Each event names an object of a watched class; the entity id comes from the object's
other_config (`occi_entity_id`) in the event's snapshot, or, for a deleted object (whose event
has no snapshot), from the id its earlier events carried. Objects without an entity id (other
VMs of the pool, templates, tasks) are not ours and are skipped. A lost connection or an
EVENTS_LOST is followed by a new session and a fresh token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from backends.xenserver.catalog import ENTITY_KEY
from backends.xenserver.client import XenClient

log = logging.getLogger(__name__)

#: the classes whose objects stand for entities (computes, storage, networks, links)
CLASSES = ["vm", "vdi", "network", "vbd", "vif"]
RETRY = 2.0


class EventWatcher:
    """Calls `callback(entity_id)` for each change of an object of ours."""

    def __init__(self, client: XenClient, callback: Callable[[str], None], timeout: float = 10.0):
        self.client = client
        self.callback = callback
        self.timeout = timeout
        self._stopped = threading.Event()
        self._ids: dict[str, str] = {}  # object ref -> entity id
        self._thread: threading.Thread | None = None
        self._session: Any = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="xenserver-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        session, self._session = self._session, None
        if session is not None:
            try:
                session.xenapi.session.logout()
            except Exception:  # noqa: BLE001 - stopping
                pass

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        token = ""
        while not self._stopped.is_set():
            try:
                if self._session is None:
                    self._session = self.client.new_session(self.timeout + 30.0)
                    token = ""
                reply = getattr(self._session.xenapi.event, "from")(
                    CLASSES, token, float(self.timeout)
                )
                first = token == ""
                token = str(reply["token"])
                self._deliver(reply.get("events") or [], initial=first)
            except Exception as exc:  # noqa: BLE001 - the watcher must go on
                if self._stopped.is_set():
                    return
                log.warning("xenserver events: %s; again in %.0f s", exc, RETRY)
                self._session = None
                self._stopped.wait(RETRY)

    def _deliver(self, events: list[dict[str, Any]], initial: bool) -> None:
        seen: list[str] = []
        for event in events:
            ref = str(event.get("ref", ""))
            snapshot = event.get("snapshot")
            entity = None
            if isinstance(snapshot, dict):
                entity = (snapshot.get("other_config") or {}).get(ENTITY_KEY)
                if entity:
                    self._ids[ref] = str(entity)
            if event.get("operation") == "del":
                entity = self._ids.pop(ref, entity)
            if entity and not initial and entity not in seen:
                seen.append(str(entity))
        for entity in seen:
            log.debug("xenserver event for %s", entity)
            try:
                self.callback(entity)
            except Exception:  # noqa: BLE001 - a failing callback must not stop the loop
                log.exception("event callback failed for %s", entity)
