"""What the console's tables show of the neutral model: an entity, a template, a quota or a
host as a plain dict for the templates. Pure: no HTTP, no store."""

from __future__ import annotations

from typing import Any

from occi import infrastructure as infra
from occi import states
from occi.identity.model import UNLIMITED
from occi.model import Entity, Link, Mixin, Resource
from occi.registry import Registry

#: the compute actions the console offers (save is for the API: it needs a name)
COMPUTE_ACTIONS = ("start", "stop", "restart", "suspend")
MACHINES = {"compute": states.COMPUTE, "storage": states.STORAGE, "network": states.NETWORK}
#: what each quota is called on the dashboard
QUOTA_LABELS = {
    "instances": "Instances",
    "cores": "Cores",
    "memory_gb": "Memory (GB)",
    "volumes": "Volumes",
    "storage_gb": "Storage (GB)",
    "networks": "Networks",
}


def is_image(m: Mixin) -> bool:
    return infra.OS_TPL.id in m.depends


def is_size(m: Mixin) -> bool:
    return infra.RESOURCE_TPL.id in m.depends


def images(reg: Registry) -> list[Mixin]:
    return sorted((m for m in reg.mixins.values() if is_image(m)), key=lambda m: m.term)


def sizes(reg: Registry) -> list[Mixin]:
    """The resource templates, smallest first."""

    def key(m: Mixin) -> tuple[float, float, str]:
        d = template_defaults(m)
        return (d.get("occi.compute.cores", 0), d.get("occi.compute.memory", 0), m.term)

    return sorted((m for m in reg.mixins.values() if is_size(m)), key=key)


def zones(reg: Registry, scheme: str) -> list[Mixin]:
    return sorted((m for m in reg.mixins.values() if m.scheme == scheme), key=lambda m: m.term)


def template_defaults(m: Mixin) -> dict[str, Any]:
    return {name: a.default for name, a in m.attributes.items() if a.default is not None}


def resource(e: Entity, reg: Registry, zone_scheme: str, busy: bool = False) -> dict[str, Any]:
    """A compute, storage or network as a row: its state, where it lives, what it runs."""
    kind = reg.kinds.get(e.kind)
    label = kind.term if kind is not None else "resource"
    machine = MACHINES.get(label)
    a = e.attributes
    state = str(a.get(machine.state_attr, "")) if machine else ""
    message = str(a.get(machine.message_attr, "") or "") if machine else ""
    mixins = [reg.mixins[m] for m in e.mixins if m in reg.mixins]
    image = next((m for m in mixins if is_image(m)), None)
    size = next((m for m in mixins if is_size(m)), None)
    zone = next((m.term for m in mixins if m.scheme == zone_scheme), "")
    if not zone:
        zone = next((m[len(zone_scheme) :] for m in e.mixins if m.startswith(zone_scheme)), "")
    links = e.links if isinstance(e, Resource) else []
    actions: list[str] = []
    if machine is not None and not busy and label == "compute":
        actions = [t for t in COMPUTE_ACTIONS if state in machine.transitions[t].allowed]
    elif machine is not None and not busy:
        actions = [t for t, tr in machine.transitions.items() if state in tr.allowed]
    return {
        "id": e.id,
        "kind": label,
        "title": e.title or e.id,
        "state": state,
        "message": message,
        "busy": busy,
        "zone": zone,
        "image": (image.title or image.term) if image else "",
        "size": size.term if size else "",
        "cores": a.get("occi.compute.cores"),
        "memory": a.get("occi.compute.memory"),
        "storage_size": a.get("occi.storage.size"),
        "address": a.get("occi.network.address") or "",
        "ips": [
            str(ln.attributes["occi.networkinterface.address"])
            for ln in links
            if isinstance(ln, Link) and ln.attributes.get("occi.networkinterface.address")
        ],
        "attached": [ln.target for ln in links if isinstance(ln, Link)],
        "actions": actions,
    }


def quota(resource: str, used: float, limit: int) -> dict[str, Any]:
    shown = int(used) if float(used).is_integer() else round(used, 1)
    return {
        "resource": resource,
        "label": QUOTA_LABELS.get(resource, resource),
        "used": shown,
        "limit": limit,
        "limited": limit != UNLIMITED,
        "percent": (min(100, round(100 * used / limit)) if limit > 0 else 100)
        if limit != UNLIMITED
        else 0,
    }


def capacity(hosts: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Hosts' capacity and use summed per zone or per cluster (`by`)."""
    out: dict[str, dict[str, Any]] = {}
    for h in hosts:
        row = out.setdefault(
            h[by],
            {"name": h[by], "zone": h["zone"], "hosts": 0, "vms": 0, "used_cores": 0,
             "allocatable_cores": 0, "used_memory_mb": 0, "allocatable_memory_mb": 0},
        )  # fmt: skip
        row["hosts"] += 1
        for k in ("vms", "used_cores", "allocatable_cores", "used_memory_mb",
                  "allocatable_memory_mb"):  # fmt: skip
            row[k] += h[k]
    return sorted(out.values(), key=lambda r: (r["zone"], r["name"]))
