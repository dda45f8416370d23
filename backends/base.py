"""The backend contract: what the service asks of a hypervisor platform.

A backend translates OCCI operations into its platform's calls and reports the resulting state
as attribute values; it does not decide OCCI semantics (validation, defaults, templates are the
service's). Backends import occi.model and their SDK, never the API or the store.

Loaded through the `occi.backends` entry point group by name (OCCI_BACKEND).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from occi.model import Entity, Link, Mixin, Resource


class BackendFault(Exception):
    """Base of what a backend raises; the message is shown to the client.

    The service retries a job that failed with PlatformError (or with an exception of the
    platform's SDK); the others are final. A request whose job failed answers with the status
    named below."""


class InvalidTransition(BackendFault):
    """The operation is impossible in the entity's current state (HTTP 409)."""


class Unsupported(BackendFault):
    """The platform cannot do this at all (HTTP 501 with the reason)."""


class PlatformError(BackendFault):
    """The platform failed; the entity goes to `error` with this message (HTTP 502)."""


class Unreachable(PlatformError):
    """The platform cannot be reached: connection refused, daemon down (HTTP 503)."""


class NotFoundOnPlatform(BackendFault):
    """The platform object behind an entity is gone, or something it needs is (a storage
    pool): HTTP 502. Never raised by `delete` or `unlink`: there, gone is done."""


#: Optional abilities a backend declares in `Backend.capabilities` (the contract suite checks
#: that what is not declared raises Unsupported instead of being skipped):
STORAGE_RESIZE = "storage.resize"  # update of occi.storage.size grows the volume
LINK_HOTPLUG = "link.hotplug"  # links can be attached to / detached from a running compute
LINK_OFFLINE = "link.offline"  # links can be attached to / detached from a stopped compute
COMPUTE_SAVE = "compute.save"  # the save action makes a new os_tpl image
CONTEXTUALISATION = "compute.contextualisation"  # ssh_key and user_data reach the guest
COMPUTE_MIGRATE = "compute.migrate"  # migrate moves a compute between hosts of its cluster
CAPABILITIES = frozenset(
    {STORAGE_RESIZE, LINK_HOTPLUG, LINK_OFFLINE, COMPUTE_SAVE, CONTEXTUALISATION, COMPUTE_MIGRATE}
)

#: Called by a backend's event watcher with the id of an entity whose platform object changed.
EventCallback = Callable[[str], None]


@dataclass
class Outcome:
    """What an operation did: attribute values to store (states, assigned MACs, device ids...),
    and for compute `save` the new os_tpl mixin.

    `platform_ref`: the backend's private reference to the entity's platform object (a
    vCenter managed object id, a Xen VM uuid); the server stores it in the entity's placement
    (Placement.platform_ref, never rendered) and every later operation finds it in
    `entity.placement.platform_ref`. None leaves the stored reference as it is."""

    attributes: dict[str, Any] = field(default_factory=dict)
    mixin: Mixin | None = None
    platform_ref: str | None = None


#: bounds of Pending: a handle is stored in the job's row; a poll is never sooner or later
MAX_HANDLE = 512
MIN_POLL_AFTER, MAX_POLL_AFTER = 0.05, 60.0


@dataclass
class Pending:
    """An operation the platform carries out as a long task (a vCenter clone task, a Xen
    Async task): what the backend answers instead of an Outcome when it started the task and
    does not want to hold a thread until it ends.

    `handle` is the backend's opaque reference to the task (a JSON-safe string of at most
    MAX_HANDLE characters); the server keeps it in the job and calls `Backend.poll(entity,
    handle)` after `poll_after` seconds (bounded to MIN_POLL_AFTER..MAX_POLL_AFTER), from any
    server process. `message`, when given, is shown as the entity's state message meanwhile."""

    handle: str
    poll_after: float = 1.0
    message: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.handle, str) or not 0 < len(self.handle) <= MAX_HANDLE:
            raise ValueError(f"a pending handle is a string of 1 to {MAX_HANDLE} characters")

    @property
    def delay(self) -> float:
        """`poll_after` within its bounds (a backend's 0 or an hour are not taken literally)."""
        try:
            wanted = float(self.poll_after)
        except (TypeError, ValueError):
            wanted = 1.0
        if wanted != wanted:  # NaN
            wanted = 1.0
        return min(MAX_POLL_AFTER, max(MIN_POLL_AFTER, wanted))


@dataclass(frozen=True)
class HostCapacity:
    """What a host offers, as its platform reports it (libvirt getInfo, vCenter host hardware,
    Xen host metrics): logical cores, memory, CPU speed."""

    cores: int
    memory_mb: int
    cpu_mhz: int = 0


@dataclass(frozen=True)
class DiscoveredHost:
    """A host of a backend's cluster as its platform lists it (a vCenter cluster's or a
    standalone ESXi's host, a Xen pool's host): its name, the address the backend takes in
    `entity.placement.host_uri` and `host_capacity(uri)` (a managed object id, a host
    OpaqueRef or uuid), and its size."""

    name: str
    uri: str
    capacity: HostCapacity


#: the OCCI methods of the compute actions (occi.infrastructure); None leaves it to the backend
StopMethod = Literal["graceful", "acpioff", "poweroff"]
RestartMethod = Literal["graceful", "warm", "cold"]
SuspendMethod = Literal["hibernate", "suspend"]
SaveMethod = Literal["hot", "deferred"]

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
KINDS = {INFRA + "compute": "compute", INFRA + "storage": "storage", INFRA + "network": "network"}
CORES, MEMORY, SIZE = "occi.compute.cores", "occi.compute.memory", "occi.storage.size"
#: the attributes whose change is a typed resize (the rest go to a backend's own `update`)
RESIZE_ATTRIBUTES = {"compute": frozenset({CORES, MEMORY}), "storage": frozenset({SIZE})}

#: which typed methods stand for each generic one: a backend overrides the generic method or
#: every typed method of its group (checked when the class is made, so that neither default
#: calls the other for ever)
TYPED_GROUPS: dict[str, tuple[str, ...]] = {
    "create": ("compute_create", "storage_create", "network_create"),
    "update": ("compute_resize", "storage_resize"),
    "delete": ("compute_delete", "storage_delete", "network_delete"),
    "action": (
        "compute_start",
        "compute_stop",
        "compute_restart",
        "compute_suspend",
        "compute_save",
        "storage_online",
        "storage_offline",
        "network_up",
        "network_down",
    ),
    "link": ("link_attach",),
    "unlink": ("link_detach",),
}


def kind_of(entity: Entity) -> str | None:
    """compute, storage or network for a resource of those kinds; None for any other."""
    return KINDS.get(entity.kind)


class Backend(ABC):
    """One hypervisor platform.

    Operations come in two forms: typed per kind (compute_start, storage_resize, link_attach,
    ...: what the server calls, each with its postcondition and idempotency) and generic
    (create, update, action, link, unlink, delete). A backend implements either form of each
    operation; the defaults of one call the other (see `__init_subclass__`).

    Long platform tasks: `create`, `update`, `action`, `link`, `delete` and `migrate` (and
    their typed forms) may
    answer `Pending(handle)` instead of their Outcome (or None) once the platform has started
    the work. Then nothing is recorded but the handle: the job goes back to the queue without
    holding a thread, and when it is due any server calls `poll(entity, handle)`, which
    answers Pending again while the task runs, the operation's final Outcome when it is done
    (recorded exactly as if the operation had answered it), or raises the BackendFault the task
    ended with (handled as if the operation had raised it; a retry starts the operation again).

    `settings` holds the OCCI_* configuration (lower-case keys without the prefix) so a backend
    can read its own options (e.g. `libvirt_uri`) and the database URL when it keeps state.
    """

    name = "abstract"
    #: attributes that can change on a running compute without a restart
    live_attributes: frozenset[str] = frozenset()
    #: optional abilities (see CAPABILITIES); a backend that does not say offers all of them.
    #: Instances may narrow it (the libvirt test driver cannot hot-plug or resize).
    capabilities: frozenset[str] = CAPABILITIES
    #: whether the platform changes behind the server's back (a guest powering itself off, an
    #: admin with virsh), so that the server must observe it periodically
    reconcile_needed: bool = True

    def __init__(self, settings: Mapping[str, Any] | None = None):
        self.settings = dict(settings or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [
            f"{generic} (or all of {', '.join(n for n in typed if not _overrides(cls, n))})"
            for generic, typed in TYPED_GROUPS.items()
            if not _overrides(cls, generic) and not all(_overrides(cls, n) for n in typed)
        ]
        if missing:
            raise TypeError(
                f"backend {cls.__qualname__} implements neither the generic nor the typed "
                f"contract for: {'; '.join(missing)}"
            )

    # ------------------------------------------------------------------ discovery
    @abstractmethod
    def provider_mixins(self) -> list[Mixin]:
        """Provider templates: os_tpl mixins (images) and resource_tpl mixins beyond CRTP."""

    # ------------------------------------------------------------------ generic operations
    # The server calls the typed operations below (see `dispatch_*`); these generic methods
    # are the older form of the same contract. A backend implements either side for each
    # operation (`__init_subclass__` checks it): the generic method's default dispatches to the
    # typed methods by kind and action term, the typed methods' defaults call the generic one.

    def create(self, entity: Resource) -> Outcome | Pending:
        """Create the platform object for a compute, storage or network resource."""
        if kind_of(entity) is None:
            raise _unknown(self, entity, "create")
        return dispatch_create(self, entity)

    def update(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome | Pending:
        """Apply changed attributes (new values in `changed`, full entity in `entity`). The
        default applies the sizes through the typed resizes; a backend that applies other
        attributes (a hostname, a VLAN) overrides it."""
        kind = kind_of(entity)
        others = sorted(set(changed) - RESIZE_ATTRIBUTES.get(kind or "", frozenset()))
        if kind is None or others:
            raise Unsupported(
                f"the {self.name} platform cannot change {', '.join(others) or 'anything'} "
                f"of a {kind or entity.kind}"
            )
        if kind == "compute":
            cores = changed.get(CORES)
            return self.compute_resize(
                entity, None if cores is None else int(cores), _float_or_none(changed.get(MEMORY))
            )
        if kind == "storage" and changed.get(SIZE) is not None:
            return self.storage_resize(entity, float(changed[SIZE]))
        return self.observe(entity)  # nothing to change

    def delete(self, entity: Entity) -> Pending | None:
        """Remove the platform object. Idempotent: an object that is gone already, or that the
        platform never made (its create failed, its pool is missing), is deleted. A storage
        still attached to a running compute is detached first, or the delete raises
        InvalidTransition and changes nothing (never a volume pulled from under a guest)."""
        if not isinstance(entity, Link) and kind_of(entity) is None:
            return None  # a kind the platform has no objects of: nothing there, so done
        return dispatch_delete(self, entity)

    def action(self, entity: Resource, action: str, params: Mapping[str, Any]) -> Outcome | Pending:
        """Carry out an action (its term, or scheme and term: start, stop, ..., up, down,
        online, offline). Raises InvalidTransition when the current state does not allow it."""
        return dispatch_action(self, entity, action, params, generic=False)

    def link(self, link: Link, source: Resource, target: Resource | None) -> Outcome | Pending:
        """Attach (networkinterface: NIC; storagelink: disk). `target` is None when external."""
        return self.link_attach(link, source, target)

    def unlink(self, link: Link) -> Pending | None:
        """Detach. Idempotent: a link never attached, or whose compute is gone, is detached.
        Returns only once the device is gone from the compute (live and configured)."""
        return self.link_detach(link)

    # ------------------------------------------------------------------ typed: compute
    # Each typed operation returns its Outcome (delete and detach: None) or Pending; raises
    # InvalidTransition when the entity's state does not allow it (and changes nothing),
    # Unsupported when the platform cannot do it at all, PlatformError when the platform failed.
    # Actions are state transitions: one whose target state is reached already (start of a
    # running compute) raises InvalidTransition; a retried job that meets it observes and
    # accepts the state (the server's Executor._already_done), so a retry is safe.

    def compute_create(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: a stopped (`inactive`) compute with the entity's cores, memory
        and image exists on the platform; the Outcome carries its state and usually its
        platform_ref. Idempotent: a compute of this entity that exists already is answered as
        it is (a retry after a crash does not make a second one)."""
        return self.create(entity)

    def compute_start(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: the compute runs (`active`); a suspended one resumes. A running one
        raises InvalidTransition (safe to retry, see above)."""
        return self.action(entity, "start", {})

    def compute_stop(self, entity: Resource, method: StopMethod | None = None) -> Outcome | Pending:
        """Postcondition: the compute is stopped (`inactive`). `method`: graceful (the guest
        shuts down; the backend waits for it, then cuts power), acpioff (the ACPI button),
        poweroff (power cut at once). A guest stop may answer `active` with a "stopping"
        message and end `inactive` later (observe() reports it). A stopped or suspended
        compute raises InvalidTransition (safe to retry)."""
        return self.action(entity, "stop", _params(method=method))

    def compute_restart(
        self, entity: Resource, method: RestartMethod | None = None
    ) -> Outcome | Pending:
        """Postcondition: the compute runs again after a reboot (graceful), a soft reset
        (warm) or a power cycle (cold). Not idempotent: each call reboots. A compute that does
        not run raises InvalidTransition."""
        return self.action(entity, "restart", _params(method=method))

    def compute_suspend(
        self, entity: Resource, method: SuspendMethod | None = None
    ) -> Outcome | Pending:
        """Postcondition: the compute is `suspended`, its memory kept in RAM (suspend) or
        written to disk (hibernate). A suspended or stopped compute raises InvalidTransition
        (safe to retry)."""
        return self.action(entity, "suspend", _params(method=method))

    def compute_save(
        self, entity: Resource, method: SaveMethod | None = None, name: str | None = None
    ) -> Outcome | Pending:
        """Postcondition: a new image of the compute's disk exists, answered as the Outcome's
        os_tpl `mixin` (named after `name` where free); hot copies it now, deferred when the
        compute next stops. Not idempotent: each call makes an image (COMPUTE_SAVE
        capability; else Unsupported)."""
        return self.action(entity, "save", _params(method=method, name=name))

    def compute_resize(
        self, entity: Resource, cores: int | None, memory_gb: float | None
    ) -> Outcome | Pending:
        """Postcondition: the compute has `cores` and `memory_gb` (None: unchanged), live
        where the platform can (the state message says what waits for the next start).
        Idempotent: the sizes it has already are a no-op."""
        changed: dict[str, Any] = {}
        if cores is not None:
            changed[CORES] = cores
        if memory_gb is not None:
            changed[MEMORY] = memory_gb
        return self.update(entity, changed)

    def compute_delete(self, entity: Resource) -> Pending | None:
        """Postcondition: the compute and its own devices are gone from the platform (its
        links' storage volumes stay). Idempotent: gone is done, a compute never made too."""
        return self.delete(entity)

    def compute_migrate(
        self, entity: Resource, target_uri: str | None, live: bool
    ) -> Outcome | Pending:
        """Postcondition: the compute runs (or stays stopped) on the host at `target_uri`
        only; see `migrate`. Idempotent: a compute already on the target is answered as it is.
        Default: Unsupported (COMPUTE_MIGRATE capability)."""
        if type(self).migrate is not Backend.migrate:
            return self.migrate(entity, target_uri, live)
        raise Unsupported(f"the {self.name} platform cannot move a compute between hosts")

    # ------------------------------------------------------------------ typed: storage
    def storage_create(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: a volume of `occi.storage.size` GB exists, `offline` until
        storage_online. Idempotent: a volume of this entity that exists already is answered
        as it is."""
        return self.create(entity)

    def storage_resize(self, entity: Resource, size_gb: float) -> Outcome | Pending:
        """Postcondition: the volume has `size_gb`. Grows only: shrinking raises
        InvalidTransition and changes nothing; a platform that cannot grow volumes raises
        Unsupported (STORAGE_RESIZE capability). Idempotent: the current size is a no-op."""
        return self.update(entity, {SIZE: size_gb})

    def storage_online(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: the volume is `online`. An online one raises InvalidTransition (safe
        to retry)."""
        return self.action(entity, "online", {})

    def storage_offline(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: the volume is `offline`. An offline one raises InvalidTransition
        (safe to retry)."""
        return self.action(entity, "offline", {})

    def storage_delete(self, entity: Resource) -> Pending | None:
        """Postcondition: the volume is gone. Idempotent: gone is done. Attached to a running
        compute: detached first, or InvalidTransition with nothing changed."""
        return self.delete(entity)

    # ------------------------------------------------------------------ typed: network
    def network_create(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: the network exists, `inactive` until network_up. Idempotent: a network
        of this entity that exists already is answered as it is."""
        return self.create(entity)

    def network_up(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: the network is `active`. An active one raises InvalidTransition (safe
        to retry)."""
        return self.action(entity, "up", {})

    def network_down(self, entity: Resource) -> Outcome | Pending:
        """Postcondition: the network is `inactive`. An inactive one raises InvalidTransition
        (safe to retry)."""
        return self.action(entity, "down", {})

    def network_delete(self, entity: Resource) -> Pending | None:
        """Postcondition: the network is gone. Idempotent: gone is done."""
        return self.delete(entity)

    # ------------------------------------------------------------------ typed: links
    def link_attach(
        self, link: Link, source: Resource, target: Resource | None
    ) -> Outcome | Pending:
        """Postcondition: the device (networkinterface: a NIC on `target`'s network, or
        external when `target` is None; storagelink: a disk of `target`) is on the compute
        `source`, live on a running one (LINK_HOTPLUG) or configured on a stopped one
        (LINK_OFFLINE), else Unsupported; the Outcome carries the link's state and assigned
        values (MAC, device). Idempotent: a device of this link already attached is answered
        as it is."""
        return self.link(link, source, target)

    def link_detach(self, link: Link) -> Pending | None:
        """Postcondition: the device is gone from the compute, live and configured. Idempotent:
        a link never attached, or whose compute is gone, is detached. A Pending is allowed only
        when the detach is the link's own delete; the server's other detaches (before a
        storage's delete, a link moved) need it done on return."""
        return self.unlink(link)

    # ------------------------------------------------------------------ reconciliation
    @abstractmethod
    def observe(self, entity: Entity) -> Outcome:
        """What the platform holds for this entity now, as attribute values (state, message,
        sizes, link states). The server calls it periodically and after lifecycle events to
        bring SQL in line with the hypervisor. Raises NotFoundOnPlatform when it is gone."""

    # ------------------------------------------------------------------ long tasks
    def poll(self, entity: Entity, handle: str) -> Outcome | Pending:
        """How the platform task behind `handle` (a Pending this backend answered for
        `entity`) stands: Pending while it runs, the operation's Outcome once it is done; raises
        the fault it ended with. Idempotent: after a server's crash another server polls the
        same handle again, also after the task ended (answer its outcome again, or observe).
        Only a backend that answers Pending needs it."""
        raise Unsupported(f"the {self.name} platform has no long tasks to poll")

    # ------------------------------------------------------------------ optional hooks
    def delete_image(self, mixin: Mixin) -> None:
        """Remove the image behind an os_tpl mixin that `save` made (idempotent: gone already
        is fine). The service calls it only for images users saved, never provider images."""
        raise Unsupported(f"the {self.name} platform cannot delete images")

    def start_events(self, callback: EventCallback) -> bool:
        """Start delivering platform events: `callback(entity_id)` is called (from a backend
        thread) whenever the platform object behind an entity changes state, inside or outside
        the server; the server then calls `observe()` for it. Returns False when the backend has
        no events (the periodic reconcile is then all there is). Call once per process, after
        forking."""
        return False

    def stop_events(self) -> None:  # noqa: B027 - optional hook, nothing to stop by default
        """Stop what `start_events` started."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""

    def ping(self) -> bool:
        return True

    # ------------------------------------------------------------------ hosts (issue 12)
    # A backend instance drives one cluster (its connection settings are the cluster's); the
    # host an entity lives on reaches every operation as `entity.placement` (host_uri,
    # host_name), set by the server's placement. An entity without a placement runs where the
    # backend's own settings point (the one-cluster shorthand of a single endpoint).

    def host_capacity(self, uri: str | None) -> HostCapacity | None:
        """The capacity of the host at this platform address (None: the backend's default
        host), or None when the platform cannot tell (the administrator then gives it).
        Raises Unreachable when the host does not answer (host monitoring marks it down)."""
        return None

    def discover_hosts(self) -> list[DiscoveredHost] | None:
        """The hosts of this backend's cluster as the platform lists them, for a platform that
        manages many hosts behind one endpoint (vCenter, a Xen pool master); None (the
        default) for one host at the backend's own address (libvirt) or hosts the settings
        declare (the simulator). The one-cluster shorthand and `occi-server hosts discover`
        keep the inventory's hosts in line with it. Raises Unreachable when the platform
        does not answer."""
        return None

    def host_maintenance(self, uri: str | None, entering: bool) -> None:  # noqa: B027
        """Put the host at this platform address into its platform's own maintenance mode
        (`entering`), once the server has moved its computes away, or take it out again when
        the administrator cancels the maintenance (vCenter's EnterMaintenanceMode_Task and
        ExitMaintenanceMode_Task). Optional: the default does nothing (a platform without such a
        mode). A failure raises a BackendFault; the server logs it and keeps its own state."""

    def migrate(self, entity: Resource, target_uri: str | None, live: bool) -> Outcome | Pending:
        """Move a compute to the host at `target_uri` (its placement still names the source).
        `live`: without stopping it, where the platform can; where it cannot, the backend moves
        it offline itself (stop, move, start again) and says so in the state message. A
        platform that cannot move computes at all raises Unsupported. Postcondition: the
        platform object runs (or stays stopped) on the target only."""
        if type(self).compute_migrate is not Backend.compute_migrate:
            return self.compute_migrate(entity, target_uri, live)
        raise Unsupported(f"the {self.name} platform cannot move a compute between hosts")


def _overrides(cls: type, name: str) -> bool:
    return getattr(cls, name) is not getattr(Backend, name)


def _params(**given: Any) -> dict[str, Any]:
    """An action's parameters from the typed arguments (None: not given)."""
    return {k: v for k, v in given.items() if v is not None}


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _unknown(backend: Backend, entity: Entity, what: str) -> Unsupported:
    return Unsupported(
        f"the {backend.name} platform cannot {what} a resource of kind {entity.kind}"
    )


# ---------------------------------------------------------------------- dispatch (the server's)
# The server calls a backend through these: each operation goes to its typed method, by the
# entity's kind and the action's term; what has no typed method (an attribute beyond the sizes,
# a kind or action of the backend's own) goes to the generic method.


def dispatch_create(backend: Backend, entity: Resource) -> Outcome | Pending:
    kind = kind_of(entity)
    if kind == "compute":
        return backend.compute_create(entity)
    if kind == "storage":
        return backend.storage_create(entity)
    if kind == "network":
        return backend.network_create(entity)
    return backend.create(entity)


def dispatch_update(
    backend: Backend, entity: Resource, changed: Mapping[str, Any]
) -> Outcome | Pending:
    kind = kind_of(entity)
    sizes = RESIZE_ATTRIBUTES.get(kind or "", frozenset())
    typed = bool(changed) and set(changed) <= sizes and None not in changed.values()
    if typed and kind == "compute":
        cores = changed.get(CORES)
        return backend.compute_resize(
            entity, None if cores is None else int(cores), _float_or_none(changed.get(MEMORY))
        )
    if typed and kind == "storage":
        return backend.storage_resize(entity, float(changed[SIZE]))
    return backend.update(entity, changed)


def dispatch_delete(backend: Backend, entity: Entity) -> Pending | None:
    if isinstance(entity, Link):
        return backend.link_detach(entity)
    kind = kind_of(entity)
    if isinstance(entity, Resource) and kind == "compute":
        return backend.compute_delete(entity)
    if isinstance(entity, Resource) and kind == "storage":
        return backend.storage_delete(entity)
    if isinstance(entity, Resource) and kind == "network":
        return backend.network_delete(entity)
    return backend.delete(entity)


def dispatch_action(
    backend: Backend,
    entity: Resource,
    action: str,
    params: Mapping[str, Any],
    *,
    generic: bool = True,
) -> Outcome | Pending:
    """Carry out the action `action` (its term, or scheme and term) through its typed method.
    An action without one goes to `backend.action` (`generic`), or is Unsupported (from
    `Backend.action`'s own default, which has nowhere else to go)."""
    term = action.rsplit("#", 1)[-1]
    kind = kind_of(entity)
    method = params.get("method")
    if kind == "compute":
        if term == "start":
            return backend.compute_start(entity)
        if term == "stop":
            return backend.compute_stop(entity, method)
        if term == "restart":
            return backend.compute_restart(entity, method)
        if term == "suspend":
            return backend.compute_suspend(entity, method)
        if term == "save":
            return backend.compute_save(entity, method, params.get("name"))
    elif kind == "storage":
        if term == "online":
            return backend.storage_online(entity)
        if term == "offline":
            return backend.storage_offline(entity)
    elif kind == "network":
        if term == "up":
            return backend.network_up(entity)
        if term == "down":
            return backend.network_down(entity)
    if generic:
        return backend.action(entity, action, params)
    raise _unknown(backend, entity, term)
