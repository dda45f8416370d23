"""The XenServer backend's connection to the pool master through the XenAPI SDK: one logged-in
session per thread and process (the SDK's transport is not thread-safe), xapi failures and
connection errors turned into the backend's faults, and Async tasks waited on or looked up
again by uuid. SESSION_INVALID is the SDK's own business: its Session logs in again and
retries the call."""

from __future__ import annotations

import http.client
import logging
import os
import re
import ssl
import threading
import time
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import XenAPI

from backends.base import BackendFault, PlatformError, Unreachable
from backends.xenserver import states
from backends.xenserver.config import XenConfig

log = logging.getLogger(__name__)

API_VERSION = "2.21"
ORIGINATOR = "occi-server"
_RESULT = re.compile(r"^\s*<value>(.*)</value>\s*$", re.S)


class TaskStatus:
    """How an Async task stands: pending, or done with its result (a ref, or '') or fault."""

    def __init__(self, pending: bool, result: str = "", fault: BackendFault | None = None):
        self.pending = pending
        self.result = result
        self.fault = fault


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """XenAPI failures and connection errors as backend faults, saying what was being done."""
    try:
        yield
    except XenAPI.Failure as exc:
        raise states.fault(exc.details, doing) from None
    except (OSError, xmlrpc.client.ProtocolError, xmlrpc.client.Fault) as exc:
        raise Unreachable(f"{doing}: the pool master does not answer ({exc})") from None


class XenClient:
    """Sessions on the pool master for the calling thread (made on first use, again after a
    fork), all logged out by `close()`."""

    def __init__(self, config: XenConfig):
        self.config = config
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[tuple[int, XenAPI.Session]] = []
        #: the master's URL: the configured one, until a member says where the master is
        self.master_url = config.url

    def new_session(self, timeout: float | None = None) -> XenAPI.Session:
        """A logged-in session on the pool master; `timeout` bounds each call (the event
        watcher's is longer than its event.from waits). A URL naming a pool member (after a
        master change) answers HOST_IS_SLAVE with the master's address: the login goes there,
        and so do later ones."""
        for _ in range(2):
            url = self.master_url
            session = XenAPI.Session(
                url,
                transport=_transport(url, self.config.verify_tls, timeout or self.config.timeout),
            )
            try:
                with translated(f"logging in to {url} as {self.config.user}"):
                    session.xenapi.login_with_password(
                        self.config.user, self.config.password, API_VERSION, ORIGINATOR
                    )
                return session
            except Unreachable as exc:
                master = getattr(exc, "xapi_params", None)
                if getattr(exc, "xapi_code", "") != "HOST_IS_SLAVE" or not master:
                    raise
                self.master_url = url_of_master(url, str(master[0]))
                log.warning("%s is a pool member: the pool master is %s", url, self.master_url)
        raise Unreachable(f"no pool master answers at {self.config.url}")

    @property
    def api(self) -> Any:
        """The calling thread's `session.xenapi` (log in first if needed)."""
        pid = os.getpid()
        mine = getattr(self._local, "session", None)
        if mine is None or mine[0] != pid:
            session = self.new_session()
            self._local.session = (pid, session)
            with self._lock:
                self._sessions.append((pid, session))
            mine = self._local.session
        return mine[1].xenapi

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for pid, session in sessions:
            if pid != os.getpid():
                continue  # the parent's: logging out from a child would end it for the parent
            try:
                session.xenapi.session.logout()
            except Exception:  # noqa: BLE001 - closing: the master may be gone
                log.debug("logout failed", exc_info=True)
        self._local = threading.local()

    # ------------------------------------------------------------------ tasks
    def task_status(self, task_uuid: str) -> TaskStatus | None:
        """The task with this uuid (None when xapi has forgotten it)."""
        x = self.api
        try:
            ref = x.task.get_by_uuid(task_uuid)
            record = x.task.get_record(ref)
        except XenAPI.Failure as exc:
            if exc.details and exc.details[0] in ("UUID_INVALID", "HANDLE_INVALID"):
                return None
            raise
        status = record.get("status")
        if status in ("pending", "cancelling"):
            return TaskStatus(True)
        if status == "success":
            return TaskStatus(False, parse_result(str(record.get("result") or "")))
        info = list(record.get("error_info") or []) or ["TASK_FAILED", str(status)]
        return TaskStatus(False, fault=states.fault(info, record.get("name_label", "task")))

    def wait(self, task_uuid: str, seconds: float) -> TaskStatus | None:
        """The task's status once it ended, or pending after `seconds`."""
        deadline = time.monotonic() + seconds
        delay = 0.02
        while True:
            status = self.task_status(task_uuid)
            if status is None or not status.pending or time.monotonic() >= deadline:
                return status
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.25)

    def forget(self, task_uuid: str) -> None:
        """Destroy an ended task (xapi keeps them until then); gone already is fine."""
        x = self.api
        try:
            x.task.destroy(x.task.get_by_uuid(task_uuid))
        except XenAPI.Failure:
            pass


class _Transport(xmlrpc.client.Transport):
    """HTTP with a timeout on every call (a master that hangs is then Unreachable)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


class _SafeTransport(xmlrpc.client.SafeTransport):
    """HTTPS with a timeout, verifying the master's certificate unless told not to."""

    def __init__(self, timeout: float, verify: bool):
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        super().__init__(context=context)
        self.timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def _transport(url: str, verify: bool, timeout: float) -> xmlrpc.client.Transport:
    if url.startswith("https://"):
        return _SafeTransport(timeout, verify)
    return _Transport(timeout)


def url_of_master(url: str, address: str) -> str:
    """The URL of the master at `address` (HOST_IS_SLAVE's parameter: an address, perhaps with
    a port), with the scheme and port of `url` where the address has none."""
    parts = urlsplit(url)
    if ":" not in address.strip("[]") and parts.port is not None:
        address = f"{address}:{parts.port}"
    return urlunsplit((parts.scheme, address, parts.path, "", ""))


def parse_result(text: str) -> str:
    """A task's result (the XML-RPC <value> of what the call returned) as a string."""
    if not text:
        return ""
    match = _RESULT.match(text)
    if match is None:
        try:
            (value,), _ = xmlrpc.client.loads(
                f"<methodResponse><params><param>{text}</param></params></methodResponse>"
            )
            return str(value)
        except Exception:  # noqa: BLE001
            raise PlatformError(f"a task result xapi sent cannot be read: {text[:200]}") from None
    inner = match.group(1)
    if inner.startswith("<"):
        (value,), _ = xmlrpc.client.loads(
            f"<methodResponse><params><param>{text}</param></params></methodResponse>"
        )
        return str(value)
    import html

    return html.unescape(inner)
