"""`occi-server zones|clusters|hosts`: the administration of the inventory (occi.inventory) on
the command line, as the system (an administrator of the machine the database is reached from).

Each command has create, list, show, update and delete; hosts also enable, disable, maintenance
and cancel-maintenance. Output is a table or `key: value` lines for people, or with `--json` the
documents the HTTP admin API answers (occi.api.admin). Secret settings are masked either way.

Exit codes as for every command: 0 done, 1 refused (bad value, unknown or taken name, something
still in the way of a deletion, a state that does not allow the action, a wrong secret key) or a
database error, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from occi.settings import Settings

log = logging.getLogger(__name__)

COMMANDS = ("zones", "clusters", "hosts")
HOST_ACTIONS = ("enable", "disable", "maintenance", "cancel-maintenance")
EPILOG = (
    "exit codes: 0 done; 1 refused (bad value, unknown or taken name, something in the way of a "
    "deletion, a state that does not allow the action, a wrong secret key) or a database "
    "error; 2 usage; hosts maintenance also: 3 its VMs are still moving when the wait ends "
    "(job_wait; `hosts show` tells later), 4 error-in-maintenance (some VMs could not move: "
    "the message names them)"
)
#: exit codes of `hosts maintenance` when the host did not reach `maintenance`
STILL_MOVING, SOME_STAYED = 3, 4


def add_parsers(sub: Any, kw: dict[str, Any]) -> None:
    """The three commands and their actions, each with `--help`, under `sub`."""
    kw = {**kw, "epilog": EPILOG}

    def group(name: str, help: str) -> Any:
        parser = sub.add_parser(name, help=help, **kw)
        return parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(parent: Any, name: str, help: str, named: bool = True) -> Any:
        p = parent.add_parser(name, help=help, **kw)
        if named:
            p.add_argument("name", metavar="NAME")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        return p

    zones = group("zones", "create, list, show, update or delete zones (they hold clusters)")
    action(zones, "create", "create a zone")
    action(zones, "list", "list the zones", named=False)
    action(zones, "show", "show a zone")
    p = action(zones, "update", "rename a zone")
    p.add_argument("--name", dest="new_name", metavar="NEW", help="its new name")
    action(zones, "delete", "delete a zone that holds no cluster")

    clusters = group(
        "clusters", "create, list, show, update or delete clusters (hosts of one backend)"
    )
    p = action(clusters, "create", "create a cluster in a zone, driven by one backend")
    p.add_argument("--zone", required=True, metavar="ZONE", help="the zone it is in")
    # --backend is the global option's flag: here it names the cluster's backend
    _cluster_options(p)
    p = action(clusters, "list", "list the clusters", named=False)
    p.add_argument("--zone", metavar="ZONE", help="only those of this zone")
    action(clusters, "show", "show a cluster (secret settings masked)")
    p = action(clusters, "update", "change a cluster's name, overcommit, settings or tags")
    p.add_argument("--name", dest="new_name", metavar="NEW", help="its new name")
    _cluster_options(p)
    p.add_argument("--no-tags", action="store_true", help="remove all its tags")
    action(clusters, "delete", "delete a cluster that holds no host")

    hosts = group(
        "hosts",
        "create, list, show, update, delete hosts; enable, disable, maintenance, "
        "cancel-maintenance",
    )
    p = action(hosts, "create", "add a host to a cluster; its size is read from the platform")
    p.add_argument("--cluster", required=True, metavar="CLUSTER", help="the cluster it is in")
    _host_options(p)
    p = action(hosts, "list", "list the hosts: capacity, use, states, VMs", named=False)
    p.add_argument("--cluster", metavar="CLUSTER", help="only those of this cluster")
    action(hosts, "show", "show a host")
    p = action(hosts, "update", "change a host's name, address, size or tags")
    p.add_argument("--name", dest="new_name", metavar="NEW", help="its new name")
    _host_options(p)
    p.add_argument("--no-tags", action="store_true", help="remove all its tags")
    action(hosts, "delete", "delete a host nothing is placed on")
    p = action(
        hosts,
        "discover",
        "make a cluster's hosts the ones its platform lists (vCenter, a Xen pool)",
        named=False,
    )
    p.add_argument("name", metavar="CLUSTER", help="the cluster whose hosts to list")
    action(hosts, "enable", "let new placements use the host")
    action(hosts, "disable", "stop new placements on the host (its VMs stay)")
    action(hosts, "maintenance", "stop new placements on the host, to move its VMs away")
    action(hosts, "cancel-maintenance", "end a host's maintenance: it is enabled again")


def _cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cpu-overcommit", type=float, metavar="RATIO", help="virtual cores per core (1)"
    )
    p.add_argument(
        "--memory-overcommit", type=float, metavar="RATIO", help="memory sold per byte (1)"
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backend option, e.g. libvirt_uri=qemu+ssh://h1/system (repeatable; KEY= "
        "removes it on update); secrets are stored encrypted",
    )
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="(repeatable)")


def _host_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--uri", metavar="URI", help="the platform's address of the host")
    p.add_argument("--cores", type=int, metavar="N", help="its cores (else read from the uri)")
    p.add_argument("--memory-gb", type=int, metavar="GB", help="its memory (else read)")
    p.add_argument("--cpu-mhz", type=int, metavar="MHZ", help="its CPU speed (else read)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="(repeatable)")


def _settings_of(pairs: list[str]) -> dict[str, str | None]:
    from occi.errors import BadRequest

    out: dict[str, str | None] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise BadRequest(f"--setting {pair[:60]!r}: give KEY=VALUE")
        out[key.strip()] = value or None
    return out


def _document(args: argparse.Namespace) -> dict[str, Any]:
    """The request document of a create or update, as the HTTP admin API takes it."""
    doc: dict[str, Any] = {}
    if args.action == "create":
        doc["name"] = args.name
    elif getattr(args, "new_name", None) is not None:
        doc["name"] = args.new_name
    if args.command == "clusters":
        if args.action == "create":
            doc["zone"] = args.zone
            doc["backend"] = getattr(args, "backend", None)
        for ratio in ("cpu_overcommit", "memory_overcommit"):
            if getattr(args, ratio) is not None:
                doc[ratio] = getattr(args, ratio)
        if args.setting:
            settings = _settings_of(args.setting)
            if args.action == "create":
                settings = {k: v for k, v in settings.items() if v is not None}
            doc["settings"] = settings
    if args.command == "hosts":
        if args.action == "create":
            doc["cluster"] = args.cluster
        for name in ("uri", "cores", "memory_gb", "cpu_mhz"):
            if getattr(args, name) is not None:
                doc[name] = getattr(args, name)
    if args.command in ("clusters", "hosts"):
        if args.tag or getattr(args, "no_tags", False):
            doc["tags"] = list(args.tag)
    return doc


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one inventory command; raises occi.errors' errors for refusals."""
    from occi.context import RequestContext
    from occi.errors import BadRequest
    from occi.inventory.service import InventoryService
    from occi.store.sql import SqlStore

    if args.command == "clusters" and args.action == "create" and not getattr(args, "backend", ""):
        raise BadRequest("give the cluster's backend: --backend NAME (e.g. libvirt)")
    store = SqlStore(settings.database_url)
    service = InventoryService(store, settings)
    ctx = RequestContext.system()
    what = args.command.rstrip("s")
    try:
        if args.action == "discover":
            return _print_list(args, service.discover_hosts(ctx, args.name))
        if args.action == "list":
            if args.command == "zones":
                docs = service.list_zones(ctx)
            elif args.command == "clusters":
                docs = service.list_clusters(ctx, args.zone)
            else:
                docs = service.list_hosts(ctx, args.cluster)
            return _print_list(args, docs)
        if args.action == "delete":
            getattr(service, f"delete_{what}")(ctx, args.name)
            if args.json:
                print(json.dumps({"deleted": args.name}))
            else:
                print(f"{what} {args.name} deleted")
            return 0
        if args.action == "show":
            doc = getattr(service, f"show_{what}")(ctx, args.name)
        elif args.action == "create":
            doc = getattr(service, f"create_{what}")(ctx, _document(args))
        elif args.action == "update":
            doc = getattr(service, f"update_{what}")(ctx, args.name, _document(args))
        elif args.action == "maintenance":
            with _jobs_here(store, settings, service):
                doc = service.host_action(ctx, args.name, args.action)
        else:
            doc = service.host_action(ctx, args.name, args.action)
        return _print_one(args, what, doc)
    finally:
        store.close()


@contextmanager
def _jobs_here(store: Any, settings: Settings, inventory: Any) -> Iterator[None]:
    """While a host's maintenance waits for the moves of its computes, this process runs
    those no server has taken yet (as a server's request would), so the command usually ends
    with the host in maintenance even when no server runs. With job_wait 0 it queues them only."""
    if settings.job_wait <= 0:
        yield
        return
    from occi.plugins import load_backend
    from occi.service import Service

    try:
        backend = load_backend(settings.backend, settings.backend_settings())
    except Exception as exc:  # not loadable here: the servers' job runners do the moves
        log.warning("the moves run on the servers (%s cannot load here: %s)", settings.backend, exc)
        backend = None
    if backend is None:
        yield
        return
    service = Service(
        store,
        backend,
        job_settings=settings.job_settings(),
        placement_strategy=settings.placement_strategy,
    )
    service.pool.settings_of = inventory.cluster_settings
    inventory.settle = lambda ids, timeout: service._runner().settle(ids, timeout)
    try:
        yield
    finally:
        inventory.settle = None
        if service.runner is not None:
            service.runner.stop()
        service.pool.close()
        backend.close()


def _print_one(args: argparse.Namespace, what: str, doc: dict[str, Any]) -> int:
    """Print the document; the exit code says whether a maintenance is complete, so that a
    script does not take a host down with VMs still on it."""
    code = 0
    if args.action == "maintenance":
        code = {"prepare-for-maintenance": STILL_MOVING, "error-in-maintenance": SOME_STAYED}.get(
            doc.get("admin_state", ""), 0
        )
    if args.json:
        print(json.dumps(doc))
        return code
    if args.action in ("create", "update"):
        print(f"{what} {doc['name']} {args.action}d (id {doc['id']})")
    elif args.action in HOST_ACTIONS:
        print(f"host {doc['name']}: admin state {doc['admin_state']}")
        if code and doc.get("state_message"):
            print(doc["state_message"], file=sys.stderr)
    if args.action == "show":
        for key, value in doc.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
            elif isinstance(value, list):
                value = ", ".join(value) or "-"
            print(f"{key}: {'-' if value is None else value}")
    return code


def _print_list(args: argparse.Namespace, docs: list[dict[str, Any]]) -> int:
    if args.json:
        print(json.dumps(docs))
        return 0
    if args.command == "zones":
        print(f"{'ZONE':24} {'CLUSTERS':>8}  CREATED")
        for d in docs:
            print(f"{d['name']:24} {d['clusters']:>8}  {d['created_at'][:16]}")
    elif args.command == "clusters":
        print(
            f"{'CLUSTER':20} {'ZONE':16} {'BACKEND':10} {'CPU×':>5} {'MEM×':>5} {'HOSTS':>5}  TAGS"
        )
        for d in docs:
            print(
                f"{d['name']:20} {d['zone']:16} {d['backend']:10} {d['cpu_overcommit']:>5g} "
                f"{d['memory_overcommit']:>5g} {d['hosts']:>5}  {','.join(d['tags']) or '-'}"
            )
    else:
        print(
            f"{'HOST':16} {'CLUSTER':16} {'CORES':>6} {'MEM_GB':>7} {'CORES USED':>16} "
            f"{'MEMORY USED GB':>18} {'STATE':12} {'ADMIN':20} {'VMS':>5}"
        )
        for d in docs:
            print(f"{d['name']:16} {d['cluster']:16} {d['cores']:>6} {_gb(d['memory_mb']):>7} "
                  f"{use(d, 'cores'):>16} {use(d, 'memory'):>18} {d['state']:12} "
                  f"{d['admin_state']:20} {d['vms']:>5}")  # fmt: skip
    return 0


def _gb(mb: int) -> str:
    return f"{mb / 1024:g}"


def use(doc: dict[str, Any], what: str) -> str:
    """'3/16x16' (used / size x overcommit), memory in GB."""
    if what == "cores":
        return f"{doc['used_cores']}/{doc['cores']}x{doc['cpu_overcommit']:g}"
    return f"{_gb(doc['used_memory_mb'])}/{_gb(doc['memory_mb'])}x{doc['memory_overcommit']:g}"
