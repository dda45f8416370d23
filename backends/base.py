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
from typing import Any

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


class Backend(ABC):
    """One hypervisor platform.

    Long platform tasks: `create`, `update`, `action`, `link`, `delete` and `migrate` may
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

    # ------------------------------------------------------------------ discovery
    @abstractmethod
    def provider_mixins(self) -> list[Mixin]:
        """Provider templates: os_tpl mixins (images) and resource_tpl mixins beyond CRTP."""

    # ------------------------------------------------------------------ resources
    @abstractmethod
    def create(self, entity: Resource) -> Outcome | Pending:
        """Create the platform object for a compute, storage or network resource."""

    @abstractmethod
    def update(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome | Pending:
        """Apply changed attributes (new values in `changed`, full entity in `entity`)."""

    @abstractmethod
    def delete(self, entity: Entity) -> Pending | None:
        """Remove the platform object. Idempotent: an object that is gone already, or that the
        platform never made (its create failed, its pool is missing), is deleted. A storage
        still attached to a running compute is detached first, or the delete raises
        InvalidTransition and changes nothing (never a volume pulled from under a guest)."""

    @abstractmethod
    def action(self, entity: Resource, action: str, params: Mapping[str, Any]) -> Outcome | Pending:
        """Carry out an action (its term: start, stop, ..., up, down, online, offline).
        Raises InvalidTransition when the current state does not allow it."""

    # ------------------------------------------------------------------ links
    @abstractmethod
    def link(self, link: Link, source: Resource, target: Resource | None) -> Outcome | Pending:
        """Attach (networkinterface: NIC; storagelink: disk). `target` is None when external."""

    @abstractmethod
    def unlink(self, link: Link) -> None:
        """Detach. Idempotent: a link never attached, or whose compute is gone, is detached.
        Returns only once the device is gone from the compute (live and configured)."""

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

    def migrate(self, entity: Resource, target_uri: str | None, live: bool) -> Outcome | Pending:
        """Move a compute to the host at `target_uri` (its placement still names the source).
        `live`: without stopping it, where the platform can; where it cannot, the backend moves
        it offline itself (stop, move, start again) and says so in the state message. A
        platform that cannot move computes at all raises Unsupported. Postcondition: the
        platform object runs (or stays stopped) on the target only."""
        raise Unsupported(f"the {self.name} platform cannot move a compute between hosts")
