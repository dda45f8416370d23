"""What an OCCI entity, category, host, cluster, zone or event shows as one flat row, and the
columns each listing shows by default."""

from __future__ import annotations

from typing import Any

from occi.client.names import cid, group_of, title_of

#: the default columns of each listing
COLUMNS = {
    "compute": ["id", "title", "state", "cores", "memory", "template", "image", "zone", "ip"],
    "storage": ["id", "title", "state", "size", "zone"],
    "network": ["id", "title", "state", "address", "zone"],
    "link": ["id", "kind", "state", "source", "target"],
    "mixin": ["group", "term", "title", "scheme", "location"],
    "kind": ["term", "title", "scheme", "location"],
    "zones": ["name", "clusters"],
    "clusters": ["name", "zone", "backend", "hosts", "cpu_overcommit", "memory_overcommit"],
    "hosts": [
        "name",
        "cluster",
        "zone",
        "state",
        "admin_state",
        "vms",
        "used_cores",
        "allocatable_cores",
        "used_memory_mb",
        "allocatable_memory_mb",
    ],
    "events": ["at", "user", "project_name", "status", "operation", "entity"],
}
#: short column names for attributes people look at
ALIASES = {
    "cores": "occi.compute.cores",
    "memory": "occi.compute.memory",
    "hostname": "occi.compute.hostname",
    "size": "occi.storage.size",
    "address": "occi.network.address",
}


def _term(category_id: Any) -> str:
    return str(category_id or "").rpartition("#")[2]


def entity_row(entity: dict[str, Any], mixins: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One entity as a row: id, title, kind, state, message, template, image, zone, ip, the
    aliases above, then every attribute by its own name. `mixins` maps mixin ids to the
    discovered mixins (to tell templates, images and zones apart)."""
    attrs = entity.get("attributes", {}) or {}
    kind = _term(entity.get("kind"))
    state_attr = next((k for k in attrs if k.endswith(".state")), None)
    row: dict[str, Any] = {
        "id": entity.get("id") or attrs.get("occi.core.id"),
        "title": title_of(entity),
        "kind": kind,
        "state": attrs.get(state_attr) if state_attr else None,
        "message": attrs.get(state_attr + ".message") if state_attr else None,
    }
    by_group: dict[str, list[str]] = {}
    for m in entity.get("mixins", []) or []:
        known = mixins.get(m)
        group = group_of(known) if known else "mixin"
        by_group.setdefault(group, []).append(_term(m))
    row["template"] = ", ".join(by_group.get("template", []))
    row["image"] = ", ".join(by_group.get("image", []))
    row["zone"] = ", ".join(by_group.get("zone", []))
    row["mixins"] = ", ".join(by_group.get("mixin", []))
    ips = []
    for link in entity.get("links", []) or []:
        address = (link.get("attributes") or {}).get("occi.networkinterface.address")
        if address:
            ips.append(str(address))
    row["ip"] = ", ".join(ips)
    for short, name in ALIASES.items():
        if name in attrs:
            row[short] = attrs[name]
    for end in ("source", "target"):
        value = entity.get(end)
        if isinstance(value, dict):
            row[end] = value.get("location")
        elif value:
            row[end] = value
    row["location"] = entity.get("location")
    row["links"] = len(entity.get("links", []) or [])
    for name, value in attrs.items():
        row.setdefault(name, value)
    return row


def category_row(category: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "group": group_of(category) if kind == "mixin" else kind,
        "id": cid(category),
        "term": category.get("term"),
        "title": category.get("title"),
        "scheme": category.get("scheme"),
        "location": category.get("location"),
        "depends": category.get("depends", []),
        "applies": category.get("applies", []),
    }
