"""The XML-RPC endpoint of the test xapi server: sessions, dispatch of `Class.message(session,
...)` and `Async.Class.message` to the handlers, and the wire format (every reply a
`{'Status': ..., 'Value' | 'ErrorDescription': ...}` struct, integers as strings)."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from tests.xapi import errors
from tests.xapi.devices import Devices
from tests.xapi.errors import XapiError
from tests.xapi.events import EventLog, Tasks
from tests.xapi.pool import HOSTS, HostSpec, populate
from tests.xapi.power import Power
from tests.xapi.store import Store, class_key, new_ref
from tests.xapi.vm import VMs

log = logging.getLogger(__name__)


def wire(value: Any) -> Any:
    """A value as xapi puts it on the wire: every integer (64-bit in xapi) as a string."""
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {str(k): wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [wire(v) for v in value]
    return value


def arity(handler: Callable[..., Any]) -> int:
    """How many parameters (after the session) a message takes: the handler's positional
    parameters without a default."""
    return sum(
        1
        for p in inspect.signature(handler).parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


class Xapi:
    """The pool and everything that answers for it, without the HTTP part."""

    def __init__(
        self,
        user: str = "root",
        password: str = "xapi-test",
        task_delay: float = 0.0,
        hosts: tuple[HostSpec, ...] = HOSTS,
    ):
        self.user, self.password = user, password
        self.events = EventLog()
        self.store = Store(self.events.append)
        self.power = Power(self.store)
        self.tasks = Tasks(self.store, task_delay)
        self.vms = VMs(self.store, self.power)
        self.devices = Devices(self.store, self.power, self.vms, self.tasks)
        self.sessions: dict[str, str] = {}
        self.sessions_lock = threading.Lock()
        self.handlers: dict[str, Callable[..., Any]] = {
            **self.vms.handlers(),
            **self.devices.handlers(),
            "event.from": lambda classes, token, timeout: self.events.event_from(
                self.store, list(classes), str(token), float(timeout)
            ),
        }
        populate(self.store, self.power, hosts)

    # ------------------------------------------------------------------ sessions
    def login(self, user: str, password: str, *rest: Any) -> str:
        if user != self.user or password != self.password:
            raise XapiError(errors.SESSION_AUTHENTICATION_FAILED, user, "Authentication failure")
        ref = new_ref()
        with self.sessions_lock:
            self.sessions[ref] = user
        return ref

    def logout(self, session: str) -> None:
        with self.sessions_lock:
            self.sessions.pop(session, None)

    def expire_sessions(self) -> None:
        """Forget every session (as a restarted xapi does): clients get SESSION_INVALID."""
        with self.sessions_lock:
            self.sessions.clear()

    # ------------------------------------------------------------------ dispatch
    def call(self, method: str, params: tuple[Any, ...]) -> dict[str, Any]:
        try:
            return {"Status": "Success", "Value": wire(self._call(method, params))}
        except XapiError as exc:
            return {"Status": "Failure", "ErrorDescription": exc.description}
        except Exception as exc:  # noqa: BLE001 - xapi answers INTERNAL_ERROR, never a fault
            log.exception("%s failed", method)
            return {"Status": "Failure", "ErrorDescription": [errors.INTERNAL_ERROR, str(exc)]}

    def _call(self, method: str, params: tuple[Any, ...]) -> Any:
        if method == "session.login_with_password":
            if not 2 <= len(params) <= 4:
                raise XapiError(errors.MESSAGE_PARAMETER_COUNT_MISMATCH, method, 4, len(params))
            return self.login(*params)
        if method == "session.logout":
            return self.logout(*params[:1])
        asynchronous = method.startswith("Async.")
        name = method[len("Async.") :] if asynchronous else method
        cls_name, _, message = name.partition(".")
        handler = self._handler(cls_name, message)
        if handler is None:
            raise XapiError(errors.MESSAGE_METHOD_UNKNOWN, method)
        if not params or params[0] not in self.sessions:
            raise XapiError(errors.SESSION_INVALID, params[0] if params else "")
        args = params[1:]
        expected = arity(handler)
        if len(args) != expected:
            raise XapiError(errors.MESSAGE_PARAMETER_COUNT_MISMATCH, method, expected, len(args))
        if asynchronous:
            return self.tasks.start(name, lambda: handler(*args))
        return handler(*args)

    def _handler(self, cls_name: str, message: str) -> Callable[..., Any] | None:
        cls = class_key(cls_name) or cls_name
        own = self.handlers.get(f"{cls}.{message}")
        if own is not None:
            return own
        return self.store.generic(cls, message) if cls in self.store.objects else None


class Member:
    """A pool member's xapi: it refuses logins with HOST_IS_SLAVE naming the master's address
    (clients go there), and knows no session."""

    def __init__(self, master_address: str):
        self.master_address = master_address

    def call(self, method: str, params: tuple[Any, ...]) -> dict[str, Any]:
        if method.startswith("session.login"):
            error = [errors.HOST_IS_SLAVE, self.master_address]
        else:
            error = [errors.SESSION_INVALID, str(params[0]) if params else ""]
        return {"Status": "Failure", "ErrorDescription": error}


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ()  # xapi answers on any path ('/', '/RPC2')

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("xapi %s", format % args)


class XapiHTTPServer(ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, xapi: Xapi | Member, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), requestHandler=_Handler, allow_none=True, logRequests=False)
        self.xapi = xapi
        self.register_instance(self)

    def _dispatch(self, method: str, params: tuple[Any, ...]) -> Any:
        return self.xapi.call(method, params)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def start(
    host: str = "127.0.0.1", port: int = 0, **options: Any
) -> tuple[XapiHTTPServer, threading.Thread]:
    """A server answering in a daemon thread (stop it with `server.shutdown()`)."""
    server = XapiHTTPServer(Xapi(**options), host, port)
    thread = threading.Thread(target=server.serve_forever, name="xapi", daemon=True)
    thread.start()
    return server, thread


def start_member(master: XapiHTTPServer) -> tuple[XapiHTTPServer, threading.Thread]:
    """A member of `master`'s pool answering at its own address (stop it with `shutdown()`)."""
    host, port = master.server_address[:2]
    server = XapiHTTPServer(Member(f"{host}:{port}"))
    thread = threading.Thread(target=server.serve_forever, name="xapi-member", daemon=True)
    thread.start()
    return server, thread
