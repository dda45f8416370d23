"""Events and tasks of the test xapi server: every change becomes an event record that
`event.from(classes, token, timeout)` hands out after a token, and `Async.*` calls run as
`task` objects whose status, result and error_info the client polls."""

from __future__ import annotations

import html
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from tests.xapi import errors
from tests.xapi.errors import XapiError
from tests.xapi.store import Store

log = logging.getLogger(__name__)

#: how many events are kept: a token older than the oldest kept one gets EVENTS_LOST
KEEP = 20_000
TOKEN_WIDTH = 20


def token_of(generation: int) -> str:
    return str(generation).zfill(TOKEN_WIDTH)


class EventLog:
    """The event records, numbered by generation; `wait_from` blocks until one matches."""

    def __init__(self) -> None:
        self.generation = 0
        self.records: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.changed = threading.Condition()

    def append(self, cls: str, operation: str, ref: str, snapshot: dict[str, Any] | None) -> None:
        with self.changed:
            self.generation += 1
            record: dict[str, Any] = {
                "id": token_of(self.generation),
                "timestamp": f"{time.time():.6f}",
                "class": cls.lower(),
                "operation": operation,
                "ref": ref,
            }
            if snapshot is not None:
                record["snapshot"] = snapshot
            self.records.append(record)
            self.changed.notify_all()

    def event_from(
        self, store: Store, classes: list[str], token: str, timeout: float
    ) -> dict[str, Any]:
        """xapi's event.from: the events of `classes` ('vm', 'vm/<ref>', '*') after `token`
        ('' for the current objects as add events), waiting up to `timeout` seconds for one."""
        wanted = [c.lower() for c in classes]

        def matches(record: dict[str, Any]) -> bool:
            cls, ref = record["class"], record["ref"]
            return any(w in ("*", cls, f"{cls}/{ref.lower()}") for w in wanted)

        if token == "":
            with store.lock, self.changed:
                events = [
                    {
                        "id": token_of(self.generation),
                        "timestamp": f"{time.time():.6f}",
                        "class": cls.lower(),
                        "operation": "add",
                        "ref": ref,
                        "snapshot": store.public(rec),
                    }
                    for cls, objects in store.objects.items()
                    for ref, rec in objects.items()
                ]
                current = self.generation
            events = [e for e in events if matches(e)]
            return {"events": events, "valid_ref_counts": {}, "token": token_of(current)}
        try:
            since = int(token)
        except ValueError:
            raise XapiError(errors.EVENT_FROM_TOKEN_PARSE_FAILURE, token) from None
        deadline = time.monotonic() + max(0.0, min(float(timeout), 300.0))
        with self.changed:
            while True:
                if self.records and since < int(self.records[0]["id"]) - 1:
                    raise XapiError(errors.EVENTS_LOST)
                found = [r for r in self.records if int(r["id"]) > since and matches(r)]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return {
                        "events": found,
                        "valid_ref_counts": {},
                        "token": token_of(self.generation),
                    }
                self.changed.wait(left)


def xmlrpc_value(value: Any) -> str:
    """A task's result as xapi keeps it: the XML-RPC <value> of what the call returned."""
    if value is None:
        return ""
    return f"<value>{html.escape(str(value), quote=False)}</value>"


class Tasks:
    """`Async.<Class>.<message>` calls: a task record, the work run in a thread after
    `delay` seconds (so that clients see it pending), its result or error kept on the task."""

    def __init__(self, store: Store, delay: float = 0.0):
        self.store = store
        self.delay = delay

    def start(self, name: str, work: Callable[[], Any]) -> str:
        ref = self.store.add(
            "task",
            {
                "name_label": f"Async.{name}",
                "name_description": "",
                "status": "pending",
                "progress": 0.0,
                "result": "",
                "error_info": [],
                "created": time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime()),
                "finished": "19700101T00:00:00Z",
                "type": "",
                "other_config": {},
            },
        )
        runner = threading.Thread(target=self._run, args=(ref, work), daemon=True)
        runner.start()
        return ref

    def _run(self, ref: str, work: Callable[[], Any]) -> None:
        if self.delay:
            time.sleep(self.delay)
        fields: dict[str, Any]
        try:
            value = work()
            fields = {"status": "success", "result": xmlrpc_value(value)}
        except XapiError as exc:
            fields = {"status": "failure", "error_info": exc.description}
        except Exception as exc:  # noqa: BLE001 - reported on the task, as xapi does
            log.exception("async task failed")
            fields = {"status": "failure", "error_info": [errors.INTERNAL_ERROR, str(exc)]}
        fields.update(progress=1.0, finished=time.strftime("%Y%m%dT%H:%M:%SZ", time.gmtime()))
        with self.store.lock:
            if self.store.exists("task", ref):
                self.store.update("task", ref, **fields)

    def destroy(self, ref: str) -> None:
        self.store.remove("task", ref)

    def cancel(self, ref: str) -> None:
        task = self.store.get("task", ref)
        if task["status"] != "pending":
            raise XapiError(errors.OPERATION_NOT_ALLOWED, "the task is not pending")
        # the work of this server's tasks cannot be interrupted: it ends as it would
