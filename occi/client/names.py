"""Names a person types (`--image debian12 --size medium --zone z1`, a VM's title) resolved
against what the server discovered: its kinds, templates, images, zones and user mixins, and
its entities. A name matches a category's term, title, full id or location."""

from __future__ import annotations

from typing import Any

from occi.client.api import OcciApi
from occi.client.failures import NotFound, UsageFailure

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
CORE = "http://schemas.ogf.org/occi/core#"
RESOURCE_TPL = INFRA + "resource_tpl"
OS_TPL = INFRA + "os_tpl"
#: the scheme ending of availability zones (ooi's and this server's)
ZONE_SCHEME = "availability_zone#"
#: the groups of mixins `discover` and `mixin list` show
GROUPS = ("template", "image", "zone", "mixin")


def cid(category: dict[str, Any]) -> str:
    return str(category.get("scheme", "")) + str(category.get("term", ""))


def group_of(mixin: dict[str, Any]) -> str:
    depends = mixin.get("depends") or []
    if RESOURCE_TPL in depends:
        return "template"
    if OS_TPL in depends:
        return "image"
    if str(mixin.get("scheme", "")).endswith(ZONE_SCHEME):
        return "zone"
    return "mixin"


class Catalog:
    """The categories of the query interface, looked up by name."""

    def __init__(self, categories: dict[str, list[dict[str, Any]]]):
        self.kinds = categories["kinds"]
        self.mixins = categories["mixins"]
        self.actions = categories["actions"]

    def in_group(self, group: str) -> list[dict[str, Any]]:
        return [m for m in self.mixins if group_of(m) == group]

    def kind(self, term: str) -> dict[str, Any]:
        for k in self.kinds:
            if term in (k.get("term"), cid(k)):
                return k
        raise NotFound(f"the server has no kind {term!r}")

    def kind_location(self, term: str) -> str:
        """The collection of a kind: its `location`, else /<term>/."""
        try:
            return str(self.kind(term).get("location") or f"/{term}/")
        except NotFound:
            return f"/{term}/"

    def resolve(self, name: str, group: str) -> dict[str, Any]:
        """The mixin of `group` (template, image, zone, mixin; "" for any) that `name` names."""
        pool = self.in_group(group) if group else self.mixins
        wanted = name.strip()
        for match in (
            lambda m: wanted == cid(m),
            lambda m: wanted in (m.get("term"), m.get("location")),
            lambda m: wanted.casefold() == str(m.get("title", "")).casefold(),
        ):
            found = [m for m in pool if match(m)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UsageFailure(
                    f"{name!r} names several {group or 'mixin'}s: "
                    + ", ".join(cid(m) for m in found)
                    + " (give the full id)"
                )
        known = ", ".join(sorted(str(m.get("term")) for m in pool)) or "none"
        raise UsageFailure(f"no {group or 'mixin'} {name!r} on this server (known: {known})")

    def action(self, kind: dict[str, Any], term: str) -> str:
        for a in kind.get("actions", []):
            if a.rpartition("#")[2] == term:
                return str(a)
        raise UsageFailure(f"{kind.get('term')} has no action {term!r}")


def find_entity(api: OcciApi, kind_term: str, ref: str, path: str) -> dict[str, Any]:
    """The entity `ref` names: its URL, its path, its id (in the kind's collection `path`, or
    anywhere in its listing), or its title (when exactly one entity of the listing has it)."""
    ref = ref.strip()
    if not ref:
        raise UsageFailure(f"name a {kind_term}: its id, location or title")
    if ref.startswith(("http://", "https://", "/")):
        return api.get(ref)
    if "/" not in ref and "?" not in ref:
        try:
            return api.get(path + ref)
        except NotFound:
            pass
    listed = api.collection(path)
    found = [e for e in listed if ref == e.get("id")] or [e for e in listed if title_of(e) == ref]
    if len(found) > 1:
        ids = ", ".join(str(e.get("id")) for e in found)
        raise UsageFailure(f"several {kind_term}s are titled {ref!r}: {ids} (give the id)")
    if not found:
        raise NotFound(f"no {kind_term} {ref!r}")
    return found[0]


def title_of(entity: dict[str, Any]) -> str | None:
    return entity.get("title") or entity.get("attributes", {}).get("occi.core.title")


def location_of(entity: dict[str, Any]) -> str:
    loc = entity.get("location")
    if not loc:
        raise UsageFailure("the server's rendering of the entity carries no location")
    return str(loc)
