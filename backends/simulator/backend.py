"""The simulator backend: a pretend hypervisor whose platform state lives in SQL tables.

It is its own platform: it reads and writes only its `sim_` tables (through SQLAlchemy) and
imports occi.model / occi.infrastructure, never the store, the service or the API. Several
worker processes and servers on one database see one platform; state changes are conditional
UPDATEs, so of two concurrent `start`s exactly one wins.

Long tasks (`simulator_pending` seconds > 0): create, migrate and the actions start, stop,
restart, suspend and save answer Pending with a handle naming a row of `sim_tasks`; `poll`
carries the operation out once the task is due (a failure configured with `simulator_fail`
strikes then) and keeps its answer on the row, so that polling again answers the same. The
machine's name is its platform reference (Outcome.platform_ref), used by later operations.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Row,
    String,
    bindparam,
    cast,
    delete,
    exists,
    func,
    insert,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from backends.base import (
    CAPABILITIES,
    Backend,
    BackendFault,
    HostCapacity,
    InvalidTransition,
    NotFoundOnPlatform,
    Outcome,
    Pending,
    PlatformError,
    Unreachable,
    Unsupported,
)
from backends.common import disk_names, mac_for, next_free, nic_names, platform_name
from backends.simulator import catalog, states
from backends.simulator.database import DEFAULT_URL, READ_ONLY, SINGLE, make_engine
from backends.simulator.hosts import HostsOptionError, parse_hosts
from backends.simulator.power import is_off, off_message
from backends.simulator.schema import attachments, hosts_off, images, machines, tasks
from backends.simulator.states import MachineKind, Transition
from occi import infrastructure as infra
from occi.model import Entity, Link, Mixin, Resource

log = logging.getLogger(__name__)

NIC, DISK = "nic", "disk"
LINK_KINDS = {infra.NETWORKINTERFACE.id: NIC, infra.STORAGELINK.id: DISK}
#: Compute attributes kept in the machine's details (cores and memory have their own columns).
COMPUTE_DETAILS = ("occi.compute.architecture", "occi.compute.hostname", "occi.compute.share")
NETWORK_DETAILS = ("occi.network.vlan", "occi.network.label")
#: the actions that run as long tasks in pending mode (the others answer at once)
TASK_ACTIONS = frozenset({"start", "stop", "restart", "suspend", "save"})
TASK_PREFIX = "sim-task:"
#: a task is polled at least this often (seconds), as a real platform's long tasks are
TASK_POLL = 1.0
#: the faults a finished task can end with, by name (kept on its row as "Name: message")
TASK_FAULTS: dict[str, type[BackendFault]] = {
    c.__name__: c for c in (InvalidTransition, NotFoundOnPlatform, Unsupported, PlatformError)
}


def machine_name(entity: Entity) -> str:
    """The platform name of a resource's machine: its platform reference once the server
    stored one (what create answered), else the name derived from its id (the same)."""
    placement = entity.placement
    if not entity.is_link and placement is not None and placement.platform_ref:
        return placement.platform_ref
    return platform_name(entity)


def host_of(entity: Entity) -> str | None:
    """The simulated host the entity's placement names (None: any host, as with one
    endpoint): its address when the administrator gave one, else its name; the same rule
    gives `migrate` its target, so what a machine records is what later operations ask for."""
    placement = entity.placement
    if placement is None:
        return None
    return placement.host_uri if placement.host_uri is not None else placement.host_name


def _elsewhere(row: Any, host: str | None) -> str | None:
    """The host a machine is on when that is not `host` (None: it is there, or either side
    names no host). The simulated hosts are kept apart as a real platform's are."""
    details = row.details if not isinstance(row, Mapping) else row.get("details")
    current = (details or {}).get("host")
    return current if host and current and current != host else None


def _on(host: str | None) -> list[Any]:
    """The SQL condition of `_elsewhere` turned round: the machine is on `host` (or either
    names none), for a guarded statement that needs no read first."""
    if not host:
        return []
    on = machines.c.details["host"].as_string()
    return [or_(on.is_(None), on == host)]


def _now() -> datetime:
    return datetime.now(UTC)


#: a machine's INSERT, built once (its columns are those of the parameters)
_INSERT_MACHINE = insert(machines)


@functools.cache
def _act_in_one(dialect: str, on_host: bool) -> Any:
    """SimulatorBackend._act_in_one's guarded UPDATE, built once per dialect and shape: the
    machine named, in the state before, on its host (when it names one) and that host on."""
    where = [machines.c.name == bindparam("b_name"), machines.c.state == bindparam("b_before")]
    if on_host:
        host = bindparam("b_host", type_=String())
        on = machines.c.details["host"].as_string()
        where += [or_(on.is_(None), on == host), not_(exists().where(hosts_off.c.name == host))]
    return (
        update(machines)
        .where(*where)
        .values(
            state=bindparam("b_state"),
            details=_with_message(dialect, cast(bindparam("b_message"), String())),
            updated_at=bindparam("b_updated_at"),
        )
    )


def _gb(value: float) -> str:
    return f"{value:g} GB"


def _with_message(dialect: str, message: Any) -> Any:
    """The machine's details with their message replaced, in SQL (no read before the write)."""
    details = machines.c.details
    if dialect == "postgresql":
        merged = cast(details, JSONB).op("||")(func.jsonb_build_object("message", message))
        return cast(merged, JSON)
    return func.json_set(details, "$.message", message)


def platform_url(settings: Mapping[str, Any]) -> str:
    """Where the simulated platform keeps its state.

    It is a platform of its own, so on SQLite it gets its own file next to the server's
    (occi.db -> occi-simulator.db): the server's transaction and the platform's then never wait
    on one file lock. On PostgreSQL it shares the database (row locks, `sim_` tables).
    """
    explicit = settings.get("simulator_database_url")
    if explicit:
        return explicit
    url = settings.get("database_url") or DEFAULT_URL
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        base, dot, ext = url.rpartition(".")
        if dot and "/" not in ext:
            return f"{base}-simulator.{ext}"
        return url + "-simulator"
    return url


class SimulatorBackend(Backend):
    """Settings: simulator_database_url (default: beside the server's database, see
    `platform_url`), simulator_delay (seconds per operation), simulator_fail (comma-separated
    operations that raise PlatformError), simulator_images (extra images), simulator_hosts (the
    simulated hosts, name:cores:memory_gb,...; see backends.simulator.hosts), simulator_pending
    (seconds a long task takes: create, migrate and most actions answer Pending; 0: off)."""

    name = "simulator"
    live_attributes = frozenset({"occi.compute.cores", "occi.compute.memory"})
    #: every optional ability, migrate between simulated hosts included
    capabilities = CAPABILITIES
    #: nothing changes the simulated platform but this server
    reconcile_needed = False

    def __init__(self, settings: Mapping[str, Any] | None = None):
        super().__init__(settings)
        self.database_url: str = platform_url(self.settings)
        self.delay = float(self.settings.get("simulator_delay") or 0)
        self.failing = frozenset(catalog.parse_names(self.settings.get("simulator_fail")))
        self.pending = max(0.0, float(self.settings.get("simulator_pending") or 0))
        self.extra_images: list[str] = []
        for raw in catalog.parse_names(self.settings.get("simulator_images")):
            term = catalog.image_term(raw)
            if term != raw:
                log.warning("simulator_images: %r is not a valid image name; skipped", raw)
            else:
                self.extra_images.append(term)
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()

    # ------------------------------------------------------------------ plumbing
    @property
    def engine(self) -> Engine:
        """Created with the tables on first use, so constructing a backend touches nothing."""
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = make_engine(self.database_url)
        return self._engine

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._platform_errors(), self.engine.begin() as conn:
            yield conn

    def _write_one(self) -> contextlib.AbstractContextManager[Connection]:
        """For one statement that is atomic on its own (SQLite: autocommit, no BEGIN)."""
        return self._transaction(SINGLE)

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return self._transaction(READ_ONLY)

    @contextmanager
    def _transaction(self, option: str) -> Iterator[Connection]:
        """A transaction on a connection marked with `option` (see database.py)."""
        with self._platform_errors(), self.engine.connect() as conn:
            conn.execution_options(**{option: True})
            if option == SINGLE and conn.dialect.name != "sqlite":
                # one statement, atomic on its own: no BEGIN and COMMIT round trips
                conn.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():
                yield conn

    @staticmethod
    @contextmanager
    def _platform_errors() -> Iterator[None]:
        try:
            yield
        except (BackendFault, IntegrityError):
            raise
        except SQLAlchemyError as exc:
            log.exception("simulator database failure")
            raise PlatformError(
                f"the simulator's database failed: {exc.__class__.__name__}"
            ) from exc

    def _operate(self, op: str) -> None:
        """What every operation pays first: the configured delay, then any configured failure."""
        if self.delay > 0:
            time.sleep(self.delay)
        if op in self.failing:
            raise PlatformError(f"simulated failure of {op}")

    @staticmethod
    def _machine_kind(entity: Entity) -> MachineKind:
        kind = states.BY_KIND_ID.get(entity.kind)
        if kind is None:
            raise Unsupported(f"the simulator has no resources of kind {entity.kind}")
        return kind

    def _check_host(self, conn: Connection, entity: Entity) -> None:
        """Unreachable when the entity's host is switched off (backends.simulator.power)."""
        host = host_of(entity)
        if host is not None and is_off(conn, host):
            raise Unreachable(off_message(host))

    @staticmethod
    def _lock_machine(
        conn: Connection, kind: MachineKind, name: str, host: str | None = None
    ) -> Row:
        row = conn.execute(
            select(machines).where(machines.c.name == name).with_for_update()
        ).first()
        if row is None:
            raise NotFoundOnPlatform(f"{kind.label} {name} does not exist on the simulator")
        if _elsewhere(row, host):
            raise NotFoundOnPlatform(f"{kind.label} {name} is not on host {host}")
        return row

    @staticmethod
    def _set_message(
        conn: Connection, name: str, details: Mapping[str, Any] | None, message: str, **values: Any
    ) -> None:
        details = {**(details or {}), "message": message}
        conn.execute(
            update(machines)
            .where(machines.c.name == name)
            .values(details=details, updated_at=_now(), **values)
        )

    def _transition(
        self,
        conn: Connection,
        kind: MachineKind,
        name: str,
        op: str,
        tr: Transition,
        host: str | None = None,
    ) -> Row:
        """Move the machine along `tr` atomically; return its row as it was before."""
        before = self._lock_machine(conn, kind, name, host)
        values: dict[str, Any] = {"updated_at": _now()}
        if tr.target is not None:
            values["state"] = tr.target
        result = conn.execute(
            update(machines)
            .where(machines.c.name == name, machines.c.state.in_(tr.allowed))
            .values(**values)
        )
        if result.rowcount != 1:
            current = conn.execute(
                select(machines.c.state).where(machines.c.name == name)
            ).scalar_one_or_none()
            if current is None:
                raise NotFoundOnPlatform(f"{kind.label} {name} does not exist on the simulator")
            raise InvalidTransition(
                f"{kind.label} {name} is {current}: {op} needs it {states.describe(tr.allowed)}"
            )
        return before

    # ------------------------------------------------------------------ discovery
    def provider_mixins(self) -> list[Mixin]:
        out: dict[str, Mixin] = {}
        for term, title in catalog.BUILTIN_IMAGES.items():
            out[term] = catalog.os_tpl(term, title)
        for term in self.extra_images:
            out.setdefault(term, catalog.os_tpl(term, f"{term} (configured image)"))
        with self._read() as conn:
            for term, title in conn.execute(
                select(images.c.term, images.c.title).order_by(images.c.created_at, images.c.term)
            ):
                out.setdefault(term, catalog.os_tpl(term, title))
        return [*out.values(), *catalog.RESOURCE_TEMPLATES]

    # ------------------------------------------------------------------ resources
    def create(self, entity: Resource) -> Outcome | Pending:
        if self.pending > 0:
            self._machine_kind(entity)
            return self._start_task(entity, "create", {})
        return self._create_now(entity)

    def _create_now(self, entity: Resource) -> Outcome:
        kind = self._machine_kind(entity)
        name = platform_name(entity)
        self._operate("create")
        a = entity.attributes
        details: dict[str, Any] = {"message": states.created_message(kind)}
        if kind is states.COMPUTE and host_of(entity):
            details["host"] = host_of(entity)
        row: dict[str, Any] = {"name": name, "kind": kind.label, "state": kind.initial}
        if kind is states.COMPUTE:
            row["cores"] = int(a.get("occi.compute.cores") or 1)
            row["memory"] = float(a.get("occi.compute.memory") or 1.0)
            details.update({k: a[k] for k in COMPUTE_DETAILS if a.get(k) is not None})
            image = next((m for m in entity.mixins if m.startswith(catalog.OS_TPL_SCHEME)), None)
            if image:
                details["image"] = image[len(catalog.OS_TPL_SCHEME) :]
        elif kind is states.STORAGE:
            row["size"] = float(a.get("occi.storage.size") or 0.0)
        else:
            details.update({k: a[k] for k in NETWORK_DETAILS if a.get(k) is not None})
        now = _now()
        try:
            with self._write_one() as conn:
                conn.execute(
                    _INSERT_MACHINE,
                    {**row, "details": details, "created_at": now, "updated_at": now},
                )
        except IntegrityError:
            log.info("%s %s exists already; create is a no-op", kind.label, name)
            seen = self.observe(entity)
            seen.platform_ref = name
            return seen
        log.info("created %s %s", kind.label, name)
        return Outcome(kind.attributes(kind.initial, details["message"]), platform_ref=name)

    def update(self, entity: Resource, changed: Mapping[str, Any]) -> Outcome:
        kind = self._machine_kind(entity)
        name = machine_name(entity)
        self._operate("update")
        with self._write() as conn:
            self._check_host(conn, entity)
            row = self._lock_machine(conn, kind, name, host_of(entity))
            values: dict[str, Any] = {}
            notes: list[str] = []
            details = dict(row.details or {})
            if kind is states.COMPUTE:
                if changed.get("occi.compute.cores") is not None:
                    values["cores"] = int(changed["occi.compute.cores"])
                    notes.append(f"{values['cores']} cores")
                if changed.get("occi.compute.memory") is not None:
                    values["memory"] = float(changed["occi.compute.memory"])
                    notes.append(f"{_gb(values['memory'])} memory")
                details.update({k: changed[k] for k in COMPUTE_DETAILS if k in changed})
            elif kind is states.STORAGE:
                if changed.get("occi.storage.size") is not None:
                    size = float(changed["occi.storage.size"])
                    current = row.size or 0.0
                    if size < current:
                        raise InvalidTransition(
                            f"shrinking a volume is not supported: storage {name} is "
                            f"{_gb(current)}, asked for {_gb(size)}"
                        )
                    values["size"] = size
                    if size > current:
                        notes.append(f"grown from {_gb(current)} to {_gb(size)}")
            else:
                details.update({k: changed[k] for k in NETWORK_DETAILS if k in changed})
            message = details.get("message") or row.state
            if notes:
                if kind is states.COMPUTE and row.state != "active":
                    message = f"{row.state}, {', '.join(notes)} from the next start"
                elif kind is states.COMPUTE:
                    message = f"running, {', '.join(notes)} applied live"
                else:
                    message = f"{row.state}, {', '.join(notes)}"
            self._set_message(conn, name, details, message, **values)
        return Outcome(kind.attributes(row.state, message))

    def delete(self, entity: Entity) -> None:
        if isinstance(entity, Link) or entity.is_link:
            self.unlink(entity)  # type: ignore[arg-type]
            return
        name = machine_name(entity)
        self._operate("delete")
        host = host_of(entity)
        where = [machines.c.name == name, *_on(host)]
        with self._write() as conn:
            self._check_host(conn, entity)
            gone = conn.execute(delete(machines).where(*where)).rowcount
            if not gone and host:
                found = conn.execute(
                    select(machines.c.details).where(machines.c.name == name)
                ).first()
                if found is not None:  # on another host than its placement says: not there
                    log.warning("%s is not on host %s: nothing deleted", name, host)
                    return
            conn.execute(
                delete(attachments).where(
                    or_(attachments.c.machine == name, attachments.c.target == name)
                )
            )
        log.info("deleted %s%s", name, "" if gone else " (was already gone)")

    def action(self, entity: Resource, action: str, params: Mapping[str, Any]) -> Outcome | Pending:
        kind = self._machine_kind(entity)
        term = action.rsplit("#", 1)[-1]
        if kind.transitions.get(term) is not None and self.pending > 0 and term in TASK_ACTIONS:
            return self._start_task(entity, term, {"action": action, "params": dict(params)})
        return self._action_now(entity, action, params)

    def _action_now(self, entity: Resource, action: str, params: Mapping[str, Any]) -> Outcome:
        kind = self._machine_kind(entity)
        term = action.rsplit("#", 1)[-1]
        tr = kind.transitions.get(term)
        if tr is None:
            raise Unsupported(
                f"the simulator cannot {term} a {kind.label}; it can {', '.join(kind.transitions)}"
            )
        name = machine_name(entity)
        self._operate(term)
        done = self._act_in_one(kind, name, term, tr, params, host_of(entity))
        if done is not None:
            return done
        mixin = None
        with self._write() as conn:
            self._check_host(conn, entity)
            before = self._transition(conn, kind, name, term, tr, host_of(entity))
            state = tr.target or before.state
            if term == "save":
                mixin = self._save_image(conn, entity, name, params)
                running = "running" if state == "active" else "inactive"
                message = (
                    f"{running}, saved as os_tpl {mixin.term} "
                    f"({params.get('method') or 'hot'} copy)"
                )
            else:
                message = states.action_message(term, before.state, params)
            self._set_message(conn, name, before.details, message)
            if kind is states.COMPUTE and tr.target is not None:
                conn.execute(
                    update(attachments)
                    .where(attachments.c.machine == name)
                    .values(state="active" if state == "active" else "inactive")
                )
        log.info("%s %s: %s -> %s", kind.label, name, term, state)
        return Outcome(kind.attributes(state, message), mixin=mixin)

    def _act_in_one(
        self,
        kind: MachineKind,
        name: str,
        term: str,
        tr: Transition,
        params: Mapping[str, Any],
        host: str | None = None,
    ) -> Outcome | None:
        """An action whose machine can be in one state only (restart, suspend, start...) and
        that leaves its attachments as they are: one guarded UPDATE (state and message) in
        autocommit, which also requires its `host` switched on. None when it does not apply or
        the machine is not in that state or its host is off (the caller's transaction then says
        why, or finds it moved meanwhile)."""
        if term == "save" or len(tr.allowed) != 1:
            return None
        before = tr.allowed[0]
        state = tr.target or before
        if kind is states.COMPUTE and state != before:
            return None  # its attachments change state too
        message = states.action_message(term, before, params)
        with self._write_one() as conn:
            done = conn.execute(
                _act_in_one(conn.dialect.name, bool(host)),
                {
                    "b_name": name,
                    "b_before": before,
                    "b_host": host,
                    "b_state": state,
                    "b_message": message,
                    "b_updated_at": _now(),
                },
            )
        if done.rowcount != 1:
            return None
        log.info("%s %s: %s -> %s", kind.label, name, term, state)
        return Outcome(kind.attributes(state, message))

    def _save_image(
        self, conn: Connection, entity: Resource, name: str, params: Mapping[str, Any]
    ) -> Mixin:
        now = _now()
        wanted = str(params.get("name") or "").strip()
        base = catalog.image_term(wanted) or f"{(entity.id or name)[:8]}-{now:%Y%m%d%H%M%S}"
        title = wanted or f"Image saved from {entity.title or name} at {now:%Y-%m-%d %H:%M:%S} UTC"
        reserved = {*catalog.BUILTIN_IMAGES, *self.extra_images}
        for n in range(1, 1000):
            term = base if n == 1 else f"{base}-{n}"
            if term in reserved:
                continue
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(images).values(
                            term=term, title=title, created_from=name, created_at=now
                        )
                    )
            except IntegrityError:
                continue
            return catalog.os_tpl(term, title)
        raise PlatformError(f"no free image name left for {base!r}")

    def delete_image(self, mixin: Mixin) -> None:
        if mixin.scheme != catalog.OS_TPL_SCHEME or mixin.term in catalog.BUILTIN_IMAGES:
            raise Unsupported(f"{mixin.id} is not an image saved on the simulator")
        self._operate("delete_image")
        with self._write() as conn:
            gone = conn.execute(delete(images).where(images.c.term == mixin.term)).rowcount
        log.info("deleted image %s%s", mixin.term, "" if gone else " (was already gone)")

    # ------------------------------------------------------------------ links
    def link(self, link: Link, source: Resource, target: Resource | None) -> Outcome:
        dev_kind = LINK_KINDS.get(link.kind)
        if dev_kind is None:
            raise Unsupported(f"the simulator cannot attach links of kind {link.kind}")
        name = platform_name(link)
        machine = machine_name(source)
        target_name = machine_name(target) if target is not None else None
        self._operate("link")
        with self._write() as conn:
            self._check_host(conn, source)
            existing = conn.execute(select(attachments).where(attachments.c.name == name)).first()
            if existing is not None:
                return self._link_outcome(existing)
            src = self._lock_machine(conn, states.COMPUTE, machine, host_of(source))
            if src.kind != "compute":
                raise Unsupported(f"{name}: links start at a compute, {machine} is a {src.kind}")
            if target_name is not None:
                tgt = conn.execute(
                    select(machines.c.kind).where(machines.c.name == target_name)
                ).scalar_one_or_none()
                if tgt is None:
                    raise NotFoundOnPlatform(f"{target_name} does not exist on the simulator")
            used = (
                conn.execute(select(attachments.c.device).where(attachments.c.machine == machine))
                .scalars()
                .all()
            )
            mac = None
            if dev_kind == NIC:
                device = next_free(nic_names(), used)
                mac = link.attributes.get("occi.networkinterface.mac") or mac_for(link.id or name)
            else:
                device = link.attributes.get("occi.storagelink.deviceid") or next_free(
                    disk_names(), used
                )
                if device in used:
                    raise InvalidTransition(f"device {device} is already in use on {machine}")
            row = {
                "name": name,
                "machine": machine,
                "kind": dev_kind,
                "target": target_name,
                "mac": mac,
                "device": device,
                "state": "active" if src.state == "active" else "inactive",
            }
            conn.execute(insert(attachments).values(**row))
        log.info("attached %s %s to %s as %s", dev_kind, name, machine, device)
        return self._link_outcome(row)

    @staticmethod
    def _link_outcome(row: Any) -> Outcome:
        r = row if isinstance(row, Mapping) else row._mapping
        if r["state"] == "active":
            message = f"plugged into running {r['machine']} as {r['device']}"
        else:
            message = f"attached to {r['machine']} as {r['device']}, active while it runs"
        if r["kind"] == NIC:
            return Outcome(
                {
                    "occi.networkinterface.interface": r["device"],
                    "occi.networkinterface.mac": r["mac"],
                    "occi.networkinterface.state": r["state"],
                    "occi.networkinterface.state.message": message,
                }
            )
        return Outcome(
            {
                "occi.storagelink.deviceid": r["device"],
                "occi.storagelink.state": r["state"],
                "occi.storagelink.state.message": message,
            }
        )

    def unlink(self, link: Link) -> None:
        name = platform_name(link)
        self._operate("unlink")
        with self._write() as conn:
            conn.execute(delete(attachments).where(attachments.c.name == name))

    # ------------------------------------------------------------------ hosts
    def migrate(self, entity: Resource, target_uri: str | None, live: bool) -> Outcome | Pending:
        """Move a compute to the simulated host at `target_uri` (a host's address, or its name
        when it has none: see `host_of`). A running compute keeps running (moved live: the simulator can
        always); a stopped one moves stopped. Retried after it moved: says where it is."""
        kind = self._machine_kind(entity)
        if kind is not states.COMPUTE:
            raise Unsupported("only computes move between hosts; storage and networks stay")
        if not target_uri:
            raise PlatformError("a move needs the name of the host to move to")
        if self.pending > 0:
            return self._start_task(entity, "migrate", {"target_uri": target_uri, "live": live})
        return self._migrate_now(entity, target_uri, live)

    def _migrate_now(self, entity: Resource, target_uri: str, live: bool) -> Outcome:
        kind = states.COMPUTE
        name = machine_name(entity)
        self._operate("migrate")
        with self._write() as conn:
            row = conn.execute(
                select(machines).where(machines.c.name == name).with_for_update()
            ).first()
            if row is None:
                raise NotFoundOnPlatform(f"compute {name} does not exist on the simulator")
            details = dict(row.details or {})
            if details.get("host") == target_uri:  # moved already (a retried job)
                message = details.get("message") or row.state
                return Outcome(kind.attributes(row.state, message))
            source = host_of(entity)
            if _elsewhere(row, source):
                raise NotFoundOnPlatform(f"compute {name} is not on host {source}")
            if row.state == "active":
                how = "migrated live" if live else "stopped, moved and started again"
                message = f"running; {how} to another host"
            else:
                message = f"{row.state}; moved to another host while stopped"
            details.update(host=target_uri)
            self._set_message(conn, name, details, message)
        log.info("moved compute %s from %s to %s", name, source or "its host", target_uri)
        return Outcome(kind.attributes(row.state, message))

    # ------------------------------------------------------------------ observation
    def observe(self, entity: Entity) -> Outcome:
        """What the platform holds for an entity now (for reconciliation), as attribute values."""
        name = machine_name(entity)
        with self._read() as conn:
            if entity.is_link:
                row = conn.execute(select(attachments).where(attachments.c.name == name)).first()
                if row is None:
                    raise NotFoundOnPlatform(f"attachment {name} does not exist on the simulator")
                return self._link_outcome(row)
            kind = self._machine_kind(entity)
            self._check_host(conn, entity)
            row = conn.execute(select(machines).where(machines.c.name == name)).first()
        if row is None:
            raise NotFoundOnPlatform(f"{kind.label} {name} does not exist on the simulator")
        if _elsewhere(row, host_of(entity)):
            raise NotFoundOnPlatform(f"{kind.label} {name} is not on host {host_of(entity)}")
        attributes = kind.attributes(row.state, (row.details or {}).get("message") or row.state)
        if kind is states.COMPUTE:
            attributes.update({"occi.compute.cores": row.cores, "occi.compute.memory": row.memory})
        elif kind is states.STORAGE:
            attributes["occi.storage.size"] = row.size
        return Outcome(attributes)

    # ------------------------------------------------------------------ long tasks
    def _start_task(self, entity: Resource, operation: str, params: dict[str, Any]) -> Pending:
        """Pending mode: the operation becomes a task due in `simulator_pending` seconds (the
        configured delay is paid now; a configured failure strikes when it is carried out)."""
        if self.delay > 0:
            time.sleep(self.delay)
        task_id = uuid.uuid4().hex
        now = _now()
        with self._write_one() as conn:
            self._check_host(conn, entity)
            conn.execute(
                insert(tasks).values(
                    id=task_id,
                    machine=machine_name(entity),
                    operation=operation,
                    params=params,
                    due_at=time.time() + self.pending,
                    created=now,
                )
            )
        log.info("%s of %s: task %s started", operation, machine_name(entity), task_id)
        return Pending(
            TASK_PREFIX + task_id, min(self.pending, TASK_POLL), _task_message(operation)
        )

    def poll(self, entity: Entity, handle: str) -> Outcome | Pending:
        """A task's answer: Pending before it is due; then the operation, carried out once (its
        outcome or fault kept on the task's row and answered again to a later poll)."""
        if not handle.startswith(TASK_PREFIX):
            raise PlatformError(f"{handle!r} is not a simulator task")
        task_id = handle[len(TASK_PREFIX) :]
        with self._read() as conn:
            row = conn.execute(select(tasks).where(tasks.c.id == task_id)).first()
        if row is None:
            raise PlatformError(f"the simulator has no task {task_id}")
        if row.outcome is not None:
            return _outcome_of(row.outcome)
        if row.error:
            name, _, message = str(row.error).partition(": ")
            raise TASK_FAULTS.get(name, PlatformError)(message)
        left = row.due_at - time.time()
        if left > 0:
            return Pending(handle, min(left, TASK_POLL), _task_message(row.operation))
        assert isinstance(entity, Resource)  # tasks are started for resources only
        try:
            outcome = self._carry_out(entity, row.operation, dict(row.params or {}))
        except Unreachable:
            raise  # its host is off: the task waits for it (not kept as its end)
        except BackendFault as exc:
            self._end_task(task_id, error=f"{type(exc).__name__}: {exc}"[:1024])
            raise
        self._end_task(task_id, outcome=_outcome_row(outcome))
        return outcome

    def _carry_out(self, entity: Resource, operation: str, params: dict[str, Any]) -> Outcome:
        if operation == "create":
            return self._create_now(entity)
        if operation == "migrate":
            return self._migrate_now(entity, str(params["target_uri"]), bool(params["live"]))
        return self._action_now(entity, str(params["action"]), params.get("params") or {})

    def _end_task(self, task_id: str, **values: Any) -> None:
        """What a task ended with, kept once (a second poll of a task carried out concurrently
        leaves the first answer)."""
        with self._write_one() as conn:
            conn.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.outcome.is_(None), tasks.c.error.is_(None))
                .values(**values)
            )

    # ------------------------------------------------------------------ lifecycle
    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{READ_ONLY: True})
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - any failure means "not answering"
            log.warning("simulator database does not answer", exc_info=True)
            return False

    def host_capacity(self, uri: str | None) -> HostCapacity | None:
        """The size of a declared host (simulator_hosts), its name as its address; None for
        a host not declared there (the administrator then gives its size). Unreachable for a
        host switched off (`occi-simulator hosts off`, backends.simulator.power)."""
        if uri is not None:
            with self._read() as conn:
                if is_off(conn, uri):
                    raise Unreachable(off_message(uri))
        try:
            declared = parse_hosts(self.settings.get("simulator_hosts"))
        except HostsOptionError as exc:
            raise PlatformError(str(exc)) from None
        for host in declared:
            if host.name == uri:
                return HostCapacity(cores=host.cores, memory_mb=host.memory_mb)
        return None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _task_message(operation: str) -> str:
    return f"{operation}: a platform task is under way"


def _outcome_row(outcome: Outcome) -> dict[str, Any]:
    """An Outcome as a task's row keeps it (JSON)."""
    mixin = outcome.mixin
    return {
        "attributes": outcome.attributes,
        "platform_ref": outcome.platform_ref,
        "image": [mixin.term, mixin.title] if mixin is not None else None,
    }


def _outcome_of(row: Mapping[str, Any]) -> Outcome:
    image = row.get("image")
    return Outcome(
        dict(row.get("attributes") or {}),
        mixin=catalog.os_tpl(image[0], image[1]) if image else None,
        platform_ref=row.get("platform_ref"),
    )
