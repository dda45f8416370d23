"""libvirt lifecycle events: one event-loop thread per process and a watcher per backend.

Touches the libvirt SDK only. libvirt delivers events through an event loop the application
runs: virEventRegisterDefaultImpl() once per process, then a thread calling
virEventRunDefaultImpl() forever. A watcher per host registers for domain and network lifecycle
events and calls back with the OCCI entity id (from the `occi-<id>` name). It opens its own
connection, and when that drops (libvirtd restarted) it reconnects; or it is given the
backend's connection (`shared`): the test driver's state is per connection when the host comes
from a file (test:///path/host.xml), so only that connection sees the changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import libvirt

log = logging.getLogger(__name__)

PREFIX = "occi-"
_loop_lock = threading.Lock()
_loop_thread: threading.Thread | None = None


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread (once)."""
    global _loop_thread
    with _loop_lock:
        if _loop_thread is not None and _loop_thread.is_alive():
            return
        libvirt.virEventRegisterDefaultImpl()

        def run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # noqa: BLE001 - the loop must go on
                    log.exception("libvirt event loop iteration failed")
                    time.sleep(1)

        _loop_thread = threading.Thread(target=run, name="libvirt-events", daemon=True)
        _loop_thread.start()


def entity_id(platform_name: str) -> str | None:
    if platform_name.startswith(PREFIX) and len(platform_name) > len(PREFIX):
        return platform_name[len(PREFIX) :]
    return None


class EventWatcher:
    """Calls `callback(entity_id)` whenever a domain or network of ours changes state."""

    def __init__(
        self,
        uri: str,
        callback: Callable[[str], None],
        retry: float = 2.0,
        shared: Callable[[], libvirt.virConnect] | None = None,
    ):
        self.uri = uri
        #: gives the backend's connection to use instead of an own one (never closed here)
        self.shared = shared
        self.callback = callback
        self.retry = retry
        self._conn: libvirt.virConnect | None = None
        self._ids: list[tuple[str, int]] = []
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._reconnector: threading.Thread | None = None

    # ------------------------------------------------------------------ callbacks
    def _deliver(self, name: str, what: str) -> None:
        eid = entity_id(name)
        if eid is None:
            return
        log.debug("libvirt event for %s: %s", name, what)
        try:
            self.callback(eid)
        except Exception:  # noqa: BLE001 - a failing callback must not stop the loop
            log.exception("event callback failed for %s", name)

    def _on_domain(self, conn, dom, event, detail, opaque) -> None:  # noqa: ANN001
        self._deliver(dom.name(), f"domain event {event}/{detail}")

    def _on_network(self, conn, net, event, detail, opaque) -> None:  # noqa: ANN001
        self._deliver(net.name(), f"network event {event}/{detail}")

    def _on_close(self, conn, reason, opaque) -> None:  # noqa: ANN001
        log.warning("libvirt event connection to %s closed (reason %s)", self.uri, reason)
        with self._lock:
            self._conn = None
            self._ids = []
        if not self._stopped.is_set():
            self._reconnect_later()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        ensure_event_loop()
        self._connect()

    def _connect(self) -> None:
        conn = self.shared() if self.shared is not None else libvirt.open(self.uri)
        ids = [
            (
                "domain",
                conn.domainEventRegisterAny(
                    None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_domain, None
                ),
            ),
            (
                "network",
                conn.networkEventRegisterAny(
                    None, libvirt.VIR_NETWORK_EVENT_ID_LIFECYCLE, self._on_network, None
                ),
            ),
        ]
        if self.shared is None:
            try:
                conn.registerCloseCallback(self._on_close, None)
            except libvirt.libvirtError:
                log.debug("the %s driver has no close callback", self.uri)
            try:
                conn.setKeepAlive(5, 3)
            except libvirt.libvirtError:
                pass  # local drivers (test://) have no keepalive
        with self._lock:
            self._conn, self._ids = conn, ids

    def _reconnect_later(self) -> None:
        def loop() -> None:
            while not self._stopped.wait(self.retry):
                try:
                    self._connect()
                    log.info("libvirt event connection to %s is back", self.uri)
                    return
                except libvirt.libvirtError as exc:
                    log.debug("reconnecting to %s: %s", self.uri, exc)

        self._reconnector = threading.Thread(
            target=loop, name="libvirt-events-reconnect", daemon=True
        )
        self._reconnector.start()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            conn, ids = self._conn, self._ids
            self._conn, self._ids = None, []
        if conn is None:
            return
        for kind, cb_id in ids:
            try:
                if kind == "domain":
                    conn.domainEventDeregisterAny(cb_id)
                else:
                    conn.networkEventDeregisterAny(cb_id)
            except libvirt.libvirtError:
                pass
        if self.shared is not None:
            return  # the backend's connection: it closes it
        try:
            conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        try:
            conn.close()
        except libvirt.libvirtError:
            pass
