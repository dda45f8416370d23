"""`--wait`: read an entity again and again, showing its state and state message beside a
spinner on stderr, until it reaches the state asked (exit 0), falls into `error` (exit 1, its
message printed) or `--timeout` passes (exit 3)."""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from rich.console import Console

from occi.client.api import OcciApi
from occi.client.failures import Failed, NotFound, TimedOut

#: state messages saying work is still under way (this server's; others' states just change)
PENDING = re.compile(r"^(creating|attaching|deleting|detaching)$|\brequested$")
#: the state each action leads to (GFD.224); an action not here keeps the state
ACTION_TARGETS = {
    "start": "active",
    "stop": "inactive",
    "restart": "active",
    "suspend": "suspended",
    "online": "online",
    "offline": "offline",
    "up": "active",
    "down": "inactive",
}
FIRST_POLL = 0.2
LONGEST_POLL = 1.0


class Progress(AbstractContextManager["Progress"]):
    """A spinner with a line of text on a terminal (stderr); elsewhere (a log, a pipe) each new
    line printed once, so what happened stays readable."""

    def __init__(self, text: str):
        self.console = Console(stderr=True)
        self.text = text
        self.status = self.console.status(text) if self.console.is_terminal else None

    def __enter__(self) -> Progress:
        if self.status is not None:
            self.status.start()
        else:
            self.console.print(self.text, highlight=False, soft_wrap=True)
        return self

    def update(self, text: str) -> None:
        if text == self.text:
            return
        self.text = text
        if self.status is not None:
            self.status.update(text)
        else:
            self.console.print(text, highlight=False, soft_wrap=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.status is not None:
            self.status.stop()


def state_of(entity: dict[str, Any]) -> tuple[str | None, str]:
    attrs = entity.get("attributes", {}) or {}
    name = next((k for k in attrs if k.endswith(".state")), None)
    if name is None:
        return None, ""
    return attrs.get(name), str(attrs.get(name + ".message") or "")


def settled(entity: dict[str, Any], targets: Collection[str]) -> bool:
    """In one of `targets` (any state when empty) with no work under way; Failed in error."""
    state, message = state_of(entity)
    if PENDING.search(message):  # also an entity in error given the action that recovers it
        return False
    if state == "error":
        raise Failed(f"{entity.get('location') or entity.get('id')} is in error: {message}")
    return state is None or not targets or state in targets


def wait_for(
    api: OcciApi,
    entity: dict[str, Any],
    targets: Collection[str],
    timeout: float,
    what: str,
) -> dict[str, Any]:
    """The entity once settled() in `targets`, read again every FIRST_POLL..LONGEST_POLL s."""
    if settled(entity, targets):
        return entity
    location = str(entity.get("location"))
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL
    with Progress(_line(what, entity)) as status:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                state, message = state_of(entity)
                raise TimedOut(
                    f"{what}: still {state} ({message}) after {timeout:g} s; "
                    f"it carries on at {location}"
                )
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, LONGEST_POLL)
            entity = api.get(location)
            status.update(_line(what, entity))
            if settled(entity, targets):
                return entity


def wait_gone(api: OcciApi, location: str, timeout: float, what: str) -> None:
    """Until reading `location` answers 404 (a delete the platform finishes later)."""
    deadline = time.monotonic() + timeout
    delay = FIRST_POLL
    with Progress(f"{what}: deleting") as status:
        while True:
            try:
                entity = api.get(location)
            except NotFound:
                return
            status.update(_line(what, entity))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimedOut(f"{what}: still there after {timeout:g} s")
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, LONGEST_POLL)


def _line(what: str, entity: dict[str, Any]) -> str:
    state, message = state_of(entity)
    return f"{what}: {state or '?'}" + (f" ({message})" if message else "")
