"""The console's views of a project's cloud: the dashboard (quota use, and for administrators
capacity), instances with their actions (rows under way refresh themselves), volumes, networks,
saved images and the audit log. Every read and change is a call of the service layer with the
session's context."""

from __future__ import annotations

from typing import Any

from occi import errors
from occi import infrastructure as infra
from occi.console import describe
from occi.console.web import Call
from occi.model import ActionInvocation, CategoryRef, Entity, Kind, Resource
from occi.registry import Registry
from occi.service import Filter, Page

#: the most rows one table shows
MAX_ROWS = 500
KINDS: dict[str, Kind] = {"instances": infra.COMPUTE, "volumes": infra.STORAGE,
                          "networks": infra.NETWORK}  # fmt: skip


def _ctx(call: Call) -> Any:
    assert call.ctx is not None  # views behind a session
    return call.ctx


def listing(call: Call, kind: Kind) -> tuple[list[dict[str, Any]], Registry]:
    """The project's entities of `kind` as rows (those with work under way marked busy)."""
    service = call.console.service
    number = min(MAX_ROWS, service.max_page_size)
    found, reg = service.list_collection(_ctx(call), kind.location, Filter(), Page(number, 1))
    entities: list[Entity] = list(found)
    busy = service.busy(_ctx(call), [e.id for e in entities if e.id])
    scheme = service.zone_scheme
    rows = [describe.resource(e, reg, scheme, e.id in busy) for e in entities]
    return sorted(rows, key=lambda r: (str(r["title"]).lower(), r["id"])), reg


def one(call: Call, kind: Kind, entity_id: str) -> dict[str, Any]:
    service = call.console.service
    ctx = _ctx(call)
    entity = service.get(ctx, kind, entity_id, fresh=True)
    reg = service.registry(project=ctx.project)
    return describe.resource(entity, reg, service.zone_scheme, bool(service.busy(ctx, [entity_id])))


# ------------------------------------------------------------------ dashboard
def dashboard(call: Call) -> None:
    ctx = _ctx(call)
    usage = call.console.service.quota_usage(ctx)
    quotas = [describe.quota(r, used, limit) for r, (used, limit) in usage.items()]
    instances, _ = listing(call, infra.COMPUTE)
    states: dict[str, int] = {}
    for row in instances:
        states[row["state"]] = states.get(row["state"], 0) + 1
    capacity: dict[str, list[dict[str, Any]]] = {}
    if ctx.is_admin:
        hosts = call.console.inventory.list_hosts(ctx)
        capacity = {
            "zones": describe.capacity(hosts, "zone"),
            "clusters": describe.capacity(hosts, "cluster"),
            "hosts": hosts,
        }
    events = call.console.identity.events(ctx, limit=8)
    call.render(
        "dashboard.html", quotas=quotas, states=states, capacity=capacity, events=events,
        count=len(instances),
    )  # fmt: skip


# ------------------------------------------------------------------ instances
def instances(call: Call) -> None:
    rows, _ = listing(call, infra.COMPUTE)
    call.render("instances.html", rows=rows)


def instance_row(call: Call) -> None:
    """One row, for the polling of a row whose state is changing: nothing once it is gone."""
    try:
        row = one(call, infra.COMPUTE, call.params["entity_id"])
    except errors.NotFound:
        call.resp.content_type = "text/html; charset=utf-8"
        call.resp.text = ""
        return
    call.render("_instance_row.html", row=row)


def resource_action(call: Call) -> None:
    """POST /console/{instances|volumes|networks}/{id}/{action}: an action the state allows, or
    delete. An htmx request gets the row back (nothing once deleted); a form, the list."""
    what, entity_id, term = call.params["what"], call.params["entity_id"], call.params["action"]
    kind = KINDS.get(what)
    if kind is None:
        raise errors.NotFound(f"no console page {what[:40]}")
    service = call.console.service
    ctx = _ctx(call)
    call.audit(f"action {term}", f"{kind.location}{entity_id}")
    if term == "delete":
        call.audit(f"delete {kind.term}")
        service.delete(ctx, kind, entity_id)
    else:
        if term not in {a.term for a in kind.actions}:
            raise errors.BadRequest(f"a {kind.term} has no action {term[:40]}")
        service.act(ctx, kind, entity_id, term, ActionInvocation(None))
    if not call.htmx or kind is not infra.COMPUTE:
        return call.redirect(f"/{what}")
    return instance_row(call)


# ------------------------------------------------------------------ volumes and networks
def volumes(call: Call) -> None:
    if call.req.method == "POST":
        call.audit("create storage")
        title = call.field("title", 255, required=True)
        size = call.number("size", 1, 65536)
        entity = Resource(
            infra.STORAGE.id, title=title, attributes={"occi.storage.size": float(size)}
        )
        (made,) = call.console.service.create(_ctx(call), infra.STORAGE.location, [entity])
        call.audit("create storage", made.location)
        return call.redirect("/volumes")
    rows, _ = listing(call, infra.STORAGE)
    call.render("volumes.html", rows=rows)


def networks(call: Call) -> None:
    if call.req.method == "POST":
        call.audit("create network")
        title = call.field("title", 255, required=True)
        address = call.field("address", 64)
        mixins, attributes = [], {}
        if address:
            mixins.append(infra.IPNETWORK.id)
            attributes["occi.network.address"] = address
        entity = Resource(infra.NETWORK.id, title=title, mixins=mixins, attributes=attributes)
        (made,) = call.console.service.create(_ctx(call), infra.NETWORK.location, [entity])
        call.audit("create network", made.location)
        return call.redirect("/networks")
    rows, _ = listing(call, infra.NETWORK)
    call.render("networks.html", rows=rows)


# ------------------------------------------------------------------ images and events
def images(call: Call) -> None:
    ctx = _ctx(call)
    reg = call.console.service.registry(project=ctx.project)
    saved = {m.id for m in call.console.service.saved_images(ctx)}
    rows = [
        {"id": m.id, "term": m.term, "title": m.title or m.term, "saved": m.id in saved}
        for m in describe.images(reg)
    ]
    call.render("images.html", rows=rows)


def image_delete(call: Call) -> None:
    call.audit("delete image")
    ctx = _ctx(call)
    image_id = call.field("image", 1024, required=True)
    scheme, _, term = image_id.rpartition("#")
    ref = CategoryRef(scheme + "#", term, "mixin")
    call.console.service.remove_user_mixins(ctx, [ref])
    call.redirect("/images")


def events(call: Call) -> None:
    call.render("events.html", events=call.console.identity.events(_ctx(call), limit=200))
