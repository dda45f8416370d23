"""vSphere events: a thread with its own session waits on a property collector
(WaitForUpdatesEx) for changes of the datacenter's VMs (power state, host, size, name) and calls
back with the entity id of each VM of ours (named `occi-<id>`) that changed.

The first answer (every VM entering the view) is not delivered: the server observes at start
anyway. A lost connection is opened again after a pause.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pyVmomi import vim, vmodl

from backends import common
from backends.vsphere.config import VsphereConfig
from backends.vsphere.session import Session

log = logging.getLogger(__name__)
PC = vmodl.query.PropertyCollector
#: the VM properties whose change is an event
WATCHED = [
    "name",
    "runtime.powerState",
    "runtime.host",
    "runtime.connectionState",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
]


def entity_id(name: str | None) -> str | None:
    if name and name.startswith(common.PREFIX) and len(name) > len(common.PREFIX):
        return name[len(common.PREFIX) :]
    return None


class EventWatcher:
    """Calls `callback(entity_id)` when a VM of ours changes in vSphere."""

    def __init__(self, config: VsphereConfig, callback: Callable[[str], None], retry: float = 2.0):
        self.config = config
        self.callback = callback
        self.retry = retry
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        #: set once the watch is in place (tests wait for it)
        self.ready = threading.Event()
        self._collector: Any = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vsphere-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        collector = self._collector
        if collector is not None:
            try:  # ends the WaitForUpdatesEx under way at once
                collector.CancelWaitForUpdates()
            except Exception:  # noqa: BLE001 - it ends by itself within event_wait anyway
                log.debug("vSphere events: cancel failed", exc_info=True)
        if self._thread is not None:
            self._thread.join(0.5)  # a daemon: what is left of it ends quietly

    def _run(self) -> None:
        while not self._stopped.is_set():
            session = Session(self.config)
            try:
                self._watch(session)
            except Exception as exc:  # noqa: BLE001 - the watch goes on after any failure
                if self._stopped.is_set():
                    return
                log.warning("vSphere events: %s; watching again in %g s", exc, self.retry)
                self.ready.clear()
                self._stopped.wait(self.retry)
            finally:
                session.close()

    def _watch(self, session: Session) -> None:
        content = session.content
        collector = content.propertyCollector.CreatePropertyCollector()
        view = content.viewManager.CreateContainerView(
            session.datacenter, [vim.VirtualMachine], True
        )
        spec = PC.FilterSpec(
            objectSet=[
                PC.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        PC.TraversalSpec(name="view", path="view", skip=False, type=type(view))
                    ],
                )
            ],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=WATCHED)],
        )
        collector.CreateFilter(spec, partialUpdates=True)
        self._collector = collector
        options = PC.WaitOptions(maxWaitSeconds=self.config.event_wait)
        names: dict[str, str] = {}
        version = ""
        first = True
        try:
            while not self._stopped.is_set():
                update = collector.WaitForUpdatesEx(version, options)
                if update is None:
                    first = False
                    self.ready.set()
                    continue
                version = update.version
                for object_set in update.filterSet or []:
                    for change in object_set.objectSet or []:
                        self._changed(change, names, deliver=not first)
                if not getattr(update, "truncated", False):
                    first = False
                    self.ready.set()
        finally:
            self._collector = None
            try:
                collector.DestroyPropertyCollector()
                view.Destroy()
            except Exception:  # noqa: BLE001 - a dead session has nothing to clean
                log.debug("vSphere events: cleanup failed", exc_info=True)

    def _changed(self, change: Any, names: dict[str, str], deliver: bool) -> None:
        moid = change.obj._moId
        for prop in change.changeSet or []:
            if prop.name == "name" and prop.val:
                names[moid] = str(prop.val)
        name = names.pop(moid, None) if change.kind == "leave" else names.get(moid)
        eid = entity_id(name)
        if eid is None or not deliver:
            return
        log.debug("vSphere event for %s: %s", name, change.kind)
        try:
            self.callback(eid)
        except Exception:  # noqa: BLE001 - a failing callback must not stop the watch
            log.exception("vSphere event callback failed for %s", name)
