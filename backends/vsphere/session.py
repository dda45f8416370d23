"""The vSphere connection: one pyvmomi session per process, logged in again when vCenter drops
it, and vSphere's faults turned into the backend contract's.

Also the inventory this backend works in (datacenter, cluster or host, resource pool, datastore,
VM folder, distributed switch), looked up once per session, and the reading of tasks and
properties through the property collector (a task's `info` read as a whole fails to
deserialize for tasks of non-entities such as the VirtualDiskManager's).
"""

from __future__ import annotations

import functools
import http.client
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from backends.base import (
    InvalidTransition,
    NotFoundOnPlatform,
    PlatformError,
    Unreachable,
    Unsupported,
)
from backends.vsphere import states
from backends.vsphere.config import VsphereConfig

log = logging.getLogger(__name__)
T = TypeVar("T")
PC = vmodl.query.PropertyCollector

#: seconds a connection or an answer of vSphere may take (WaitForUpdatesEx waits less)
TIMEOUT = 60
#: faults meaning "not in this state" (the service answers 409)
STATE_FAULTS = (vim.fault.InvalidPowerState, vim.fault.InvalidState, vim.fault.InvalidDeviceSpec)
#: faults meaning the object is gone
GONE_FAULTS = (vmodl.fault.ManagedObjectNotFound, vim.fault.NotFound, vim.fault.FileNotFound)


def fault_text(fault: Any) -> str:
    """vCenter's message for a fault: its localized message, else its type."""
    msg = str(getattr(fault, "msg", "") or getattr(fault, "localizedMessage", "") or "")
    name = type(fault).__name__.rsplit(".", 1)[-1]
    if not msg or msg.lstrip("*").startswith("types."):  # the simulator's "*types.X"
        return name
    return f"{msg} ({name})" if name not in msg else msg


def as_fault(exc: BaseException, doing: str) -> Exception:
    """The contract's fault for an exception of pyvmomi or the network."""
    text = f"{doing}: {fault_text(exc)}"
    if isinstance(exc, vmodl.fault.MethodNotFound):
        return Unsupported(f"{doing}: this vSphere endpoint does not implement it")
    if isinstance(exc, vmodl.fault.NotSupported):
        return Unsupported(text)
    if isinstance(exc, vim.fault.ToolsUnavailable):  # a guest operation without VMware Tools
        return Unsupported(f"{doing}: VMware Tools do not run in the guest")
    if isinstance(exc, STATE_FAULTS):
        return InvalidTransition(text)
    if isinstance(exc, GONE_FAULTS):
        return NotFoundOnPlatform(text)
    if isinstance(exc, vim.fault.InvalidLogin):
        return PlatformError(f"{doing}: vSphere refused the login (user or password wrong)")
    if isinstance(exc, vmodl.MethodFault):
        return PlatformError(text)
    return Unreachable(f"{doing}: cannot reach vSphere: {type(exc).__name__}: {exc}")


#: what a connection failure raises (anything else from pyvmomi is a fault of vSphere's)
NETWORK_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError, EOFError)
#: what a pooled connection that vCenter closed meanwhile raises on its next use
STALE_ERRORS = (
    http.client.RemoteDisconnected,
    ssl.SSLEOFError,
    ConnectionResetError,
    BrokenPipeError,
)


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    """A backend method whose pyvmomi faults and network errors that escaped Session.call
    (a lazy inventory lookup) become the contract's: never an SDK exception to the server."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(self, *args, **kwargs)
        except (Unsupported, InvalidTransition, NotFoundOnPlatform, PlatformError):
            raise
        except (vmodl.MethodFault, *NETWORK_ERRORS) as exc:
            if isinstance(exc, vim.fault.NotAuthenticated):
                self.session.relogin()
            raise as_fault(exc, fn.__name__.replace("_", " ")) from None

    return wrapper


class Session:
    """The pyvmomi ServiceInstance of this process and the inventory it works in."""

    def __init__(self, config: VsphereConfig):
        self.config = config
        self._si: Any = None
        self._pid = 0
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    # ------------------------------------------------------------------ connection
    def _connect(self) -> Any:
        host, port, path = self.config.address
        context = None
        if not self.config.insecure:
            context = ssl.create_default_context(cafile=self.config.ca_file or None)
        try:
            si = SmartConnect(
                host=host,
                port=port,
                path=path,
                user=self.config.user,
                pwd=self.config.password,
                sslContext=context,
                disableSslCertValidation=self.config.insecure,
                connectionPoolTimeout=-1,
                httpConnectionTimeout=TIMEOUT,
            )
        except vim.fault.InvalidLogin:
            raise PlatformError(
                f"vSphere at {host}:{port} refused the login of {self.config.user}"
            ) from None
        except NETWORK_ERRORS as exc:
            raise Unreachable(f"cannot reach vSphere at {host}:{port}: {exc}") from None
        except vmodl.MethodFault as exc:
            raise PlatformError(
                f"connecting to vSphere at {host}:{port}: {fault_text(exc)}"
            ) from None
        log.info("vSphere session opened at %s:%s as %s", host, port, self.config.user)
        return si

    @property
    def si(self) -> Any:
        with self._lock:
            if self._si is None or self._pid != os.getpid():
                self._si, self._pid, self._cache = self._connect(), os.getpid(), {}
            return self._si

    def relogin(self) -> None:
        """Log in again on the same connection (so the managed objects read before stay
        usable); a new connection when that fails. The inventory is looked up afresh."""
        with self._lock:
            si, self._cache = self._si, {}
            if si is not None and self._pid == os.getpid():
                try:
                    si.content.sessionManager.Login(self.config.user, self.config.password)
                    log.info("vSphere session lost; logged in again")
                    return
                except Exception as exc:  # noqa: BLE001 - a new connection then
                    log.info("vSphere login on the old connection failed (%s)", type(exc).__name__)
            self._si = None

    def close(self) -> None:
        with self._lock:
            si, self._si, self._cache = self._si, None, {}
        if si is not None and self._pid == os.getpid():
            try:
                Disconnect(si)
            except Exception:  # noqa: BLE001 - closing a dead session is fine
                log.debug("vSphere logout failed", exc_info=True)

    @property
    def content(self) -> Any:
        return self._cached("content", lambda: self.si.RetrieveContent())

    @property
    def stub(self) -> Any:
        return self.si._stub

    def call(self, doing: str, fn: Callable[[], T]) -> T:
        """Run `fn` (pyvmomi calls); a lost session logs in again and runs it once more, a
        connection vCenter closed meanwhile is replaced once; faults become the contract's,
        with `doing` saying what failed."""
        relogged = reconnected = False
        while True:
            try:
                return fn()
            except vim.fault.NotAuthenticated:
                if relogged:
                    raise PlatformError(f"{doing}: vSphere does not accept the session") from None
                relogged = True
                self.relogin()
            except (Unsupported, InvalidTransition, NotFoundOnPlatform, PlatformError):
                raise
            except STALE_ERRORS as exc:
                # a connection vCenter closed meanwhile (idle, restarted): pyvmomi dropped it,
                # the call goes again on a new one (the request never reached vCenter)
                if reconnected:
                    raise as_fault(exc, doing) from None
                reconnected = True
            except (vmodl.MethodFault, *NETWORK_ERRORS) as exc:
                raise as_fault(exc, doing) from None

    @contextmanager
    def doing(self, what: str) -> Iterator[None]:
        """`call` as a block, for a sequence of calls (no retry: the caller's call() retries)."""
        try:
            yield
        except (vmodl.MethodFault, *NETWORK_ERRORS) as exc:
            if isinstance(exc, vim.fault.NotAuthenticated):
                raise
            raise as_fault(exc, what) from None

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    # ------------------------------------------------------------------ properties
    def props(self, obj: Any, paths: list[str]) -> dict[str, Any]:
        """The properties `paths` of one managed object (missing ones absent)."""
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=obj)],
            propSet=[PC.PropertySpec(type=type(obj), pathSet=paths)],
        )
        found = self.content.propertyCollector.RetrieveContents([spec])
        return {p.name: p.val for p in found[0].propSet} if found else {}

    def all_of(self, kind: Any, paths: list[str], root: Any = None) -> list[tuple[Any, dict]]:
        """Every object of `kind` under `root` (the datacenter) with its properties `paths`."""
        content = self.content
        view = content.viewManager.CreateContainerView(root or self.datacenter, [kind], True)
        try:
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
                propSet=[PC.PropertySpec(type=kind, pathSet=paths)],
            )
            found = content.propertyCollector.RetrieveContents([spec])
        finally:
            view.Destroy()
        return [(o.obj, {p.name: p.val for p in o.propSet}) for o in found]

    def ref(self, kind: Any, moid: str) -> Any:
        """The managed object `kind` with this id (not checked to exist)."""
        return kind(moid, self.stub)

    # ------------------------------------------------------------------ tasks
    def task_state(self, task: Any) -> tuple[str, Any, Any]:
        """(state, result, error) of a task; ("gone", None, None) when vCenter forgot it."""
        try:
            p = self.props(task, ["info.state", "info.result", "info.error"])
        except vmodl.fault.ManagedObjectNotFound:
            return "gone", None, None
        return str(p.get("info.state")), p.get("info.result"), p.get("info.error")

    def wait(self, task: Any, timeout: float, doing: str) -> tuple[bool, Any]:
        """Wait up to `timeout` seconds for a task: (done, result); a task that failed raises
        the contract's fault with vCenter's message."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            state, result, error = self.task_state(task)
            if state == "error":
                raise as_fault(error, doing) if error is not None else PlatformError(doing)
            if states.TASK_DONE.get(state, state == "gone"):
                return True, result
            if time.monotonic() >= deadline:
                return False, None
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)

    def run(self, doing: str, start: Callable[[], Any], timeout: float = 600.0) -> Any:
        """Start a task and wait for it to end (for the short steps of an operation)."""
        task = self.call(doing, start)
        done, result = self.call(doing, lambda: self.wait(task, timeout, doing))
        if not done:
            raise PlatformError(f"{doing}: the vSphere task {task._moId} takes too long")
        return result

    # ------------------------------------------------------------------ inventory
    @property
    def datacenter(self) -> Any:
        return self._cached("datacenter", self._find_datacenter)

    def _find_datacenter(self) -> Any:
        dcs = [e for e in self.content.rootFolder.childEntity if isinstance(e, vim.Datacenter)]
        wanted = self.config.datacenter
        for dc in dcs:
            if wanted is None or dc.name == wanted:
                return dc
        raise NotFoundOnPlatform(f"no datacenter {wanted or ''} on {self.config.address[0]}")

    @property
    def compute_resource(self) -> Any:
        """The cluster (or a standalone host's compute resource) this backend drives."""
        return self._cached("compute", self._find_compute_resource)

    def _find_compute_resource(self) -> Any:
        resources = [obj for obj, _ in self.all_of(vim.ComputeResource, ["name"])]
        if self.config.host:
            host = self.host_named(self.config.host)
            return host.parent
        wanted = self.config.cluster
        for r in resources:
            if wanted is None or r.name == wanted:
                return r
        raise NotFoundOnPlatform(f"no cluster {wanted or ''} in datacenter {self.datacenter.name}")

    def host_named(self, name: str) -> Any:
        for obj, p in self.all_of(vim.HostSystem, ["name"]):
            if p.get("name") == name:
                return obj
        raise NotFoundOnPlatform(f"no host {name} in datacenter {self.datacenter.name}")

    def hosts(self) -> list[Any]:
        """The hosts this backend drives: the configured host, else the cluster's."""
        if self.config.host:
            return [self.host_named(self.config.host)]
        return list(self.compute_resource.host)

    @property
    def pool(self) -> Any:
        return self._cached("pool", self._find_pool)

    def _find_pool(self) -> Any:
        root = self.compute_resource.resourcePool
        wanted = self.config.resource_pool
        if not wanted:
            return root
        for obj, p in self.all_of(vim.ResourcePool, ["name"], root=self.compute_resource):
            if p.get("name") == wanted:
                return obj
        raise NotFoundOnPlatform(f"no resource pool {wanted}")

    @property
    def datastore(self) -> Any:
        return self._cached("datastore", self._find_datastore)

    def _find_datastore(self) -> Any:
        wanted = self.config.datastore
        for ds, p in self.all_of(vim.Datastore, ["name"]):
            if wanted is None or p.get("name") == wanted:
                self._cache["datastore_name"] = p.get("name")
                return ds
        raise NotFoundOnPlatform(f"no datastore {wanted or ''} in {self.datacenter.name}")

    @property
    def datastore_name(self) -> str:
        self.datastore  # noqa: B018 - finding it caches its name
        return str(self._cached("datastore_name", lambda: self.datastore.name))

    @property
    def folder(self) -> Any:
        return self._cached("folder", self._find_folder)

    def _find_folder(self) -> Any:
        folder = self.datacenter.vmFolder
        for part in (self.config.folder or "").strip("/").split("/"):
            if not part:
                continue
            child = next((c for c in folder.childEntity if c.name == part), None)
            if child is None:
                try:
                    child = folder.CreateFolder(part)
                except vim.fault.DuplicateName:
                    child = next(c for c in folder.childEntity if c.name == part)
            folder = child
        return folder

    @property
    def dvswitch(self) -> Any:
        """The distributed switch OCCI networks get port groups on; None: standard ones."""
        return self._cached("dvs", self._find_dvswitch)

    def _find_dvswitch(self) -> Any:
        if self.config.host and not self.config.dvswitch:
            return None
        wanted = self.config.dvswitch
        for obj, p in self.all_of(vim.DistributedVirtualSwitch, ["name"]):
            if wanted is None or p.get("name") == wanted:
                return obj
        if wanted:
            raise NotFoundOnPlatform(f"no distributed switch {wanted}")
        return None
