"""The console's create wizard for an instance: zone, image, size, storage, network, SSH key,
user data and a name, with a summary that follows the form; the create is the service's, with
the same entity an OCCI client would POST (a compute with its templates and inline links),
then `start` unless the form says not to."""

from __future__ import annotations

import base64
from typing import Any

from occi import errors
from occi import infrastructure as infra
from occi.console import describe
from occi.console.views_cloud import listing
from occi.console.web import Call
from occi.model import ActionInvocation, Link, Resource
from occi.registry import Registry

MAX_SSH_KEY = 16 * 1024
MAX_USER_DATA = 64 * 1024


def _choices(call: Call) -> dict[str, Any]:
    assert call.ctx is not None
    service = call.console.service
    reg: Registry = service.registry(project=call.ctx.project)
    volumes, _ = listing(call, infra.STORAGE)
    networks, _ = listing(call, infra.NETWORK)
    return {
        "zones": describe.zones(reg, service.zone_scheme),
        "images": describe.images(reg),
        "sizes": [(m, describe.template_defaults(m)) for m in describe.sizes(reg)],
        "volumes": volumes,
        "networks": networks,
        "reg": reg,
    }


def form(call: Call) -> None:
    choices = _choices(call)
    call.render("wizard.html", **choices, summary=_summary(call, choices))


def _pick(call: Call, name: str, options: dict[str, Any], *, required: bool = False) -> Any:
    value = call.form.get(name) or call.req.get_param(name) or ""
    if not value:
        if required:
            raise errors.BadRequest(f"choose a {name}")
        return None
    if value not in options:
        raise errors.BadRequest(f"there is no {name} {value[:80]!r} to choose")
    return options[value]


def _summary(call: Call, choices: dict[str, Any]) -> dict[str, Any]:
    """What the form asks for so far (a GET with the form's fields as parameters)."""
    get = call.req.get_param
    sizes = {m.id: (m, d) for m, d in choices["sizes"]}
    size = sizes.get(get("size") or "")
    image = next((m for m in choices["images"] if m.id == get("image")), None)
    zone = next((m for m in choices["zones"] if m.id == get("zone")), None)
    volume = next((v for v in choices["volumes"] if v["id"] == get("volume")), None)
    network = next((n for n in choices["networks"] if n["id"] == get("network")), None)
    return {
        "title": (get("title") or "")[:255],
        "zone": zone.term if zone else "the default zone",
        "image": (image.title or image.term) if image else "",
        "size": size[0].term if size else "",
        "cores": size[1].get("occi.compute.cores") if size else None,
        "memory": size[1].get("occi.compute.memory") if size else None,
        "volume": volume["title"] if volume else "",
        "network": network["title"] if network else "",
        "ssh_key": bool(get("ssh_key")),
        "user_data": bool(get("user_data")),
    }


def summary(call: Call) -> None:
    call.render("_summary.html", summary=_summary(call, _choices(call)))


def create(call: Call) -> None:
    call.audit("create compute")
    assert call.ctx is not None
    choices = _choices(call)
    title = call.field("title", 255, required=True)
    zone = _pick(call, "zone", {m.id: m for m in choices["zones"]})
    image = _pick(call, "image", {m.id: m for m in choices["images"]}, required=True)
    size = _pick(call, "size", {m.id: m for m, _ in choices["sizes"]}, required=True)
    volume = _pick(call, "volume", {v["id"]: v for v in choices["volumes"]})
    network = _pick(call, "network", {n["id"]: n for n in choices["networks"]})
    ssh_key = call.field("ssh_key", MAX_SSH_KEY)
    user_data = call.form.get("user_data", "")
    if len(user_data) > MAX_USER_DATA:
        raise errors.BadRequest(f"user data is longer than {MAX_USER_DATA} characters")
    mixins = [image.id, size.id] + ([zone.id] if zone is not None else [])
    attributes: dict[str, Any] = {}
    if ssh_key:
        mixins.append(infra.SSH_KEY.id)
        attributes["occi.credentials.ssh.publickey"] = ssh_key
    if user_data.strip():
        mixins.append(infra.USER_DATA.id)
        attributes["occi.compute.userdata"] = base64.b64encode(user_data.encode()).decode()
    links = [
        Link("", target=f"{kind.location}{chosen['id']}")
        for kind, chosen in ((infra.NETWORK, network), (infra.STORAGE, volume))
        if chosen is not None
    ]
    entity = Resource(infra.COMPUTE.id, title=title, mixins=mixins, attributes=attributes)
    entity.links = list(links)
    service = call.console.service
    (made,) = service.create(call.ctx, infra.COMPUTE.location, [entity])
    call.audit("create compute", made.location)
    if call.form.get("start", "") == "on" and made.id:
        service.act(call.ctx, infra.COMPUTE, made.id, "start", ActionInvocation(None))
    call.redirect("/instances")
