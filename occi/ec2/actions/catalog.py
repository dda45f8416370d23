"""The parts of the project's registry EC2 shows: its zones (availability zones), its os_tpl
mixins (images, by EC2 id) and its resource templates (instance types, by term). No HTTP.
"""

from __future__ import annotations

from occi import infrastructure as infra
from occi.ec2 import ids
from occi.ec2.errors import Ec2Error
from occi.ec2.front import Call
from occi.model import Mixin
from occi.registry import Registry


def registry(call: Call) -> Registry:
    call.service.authorize(call.ctx, "read")
    return call.service.registry(project=call.ctx.project)


def zones(call: Call, reg: Registry) -> list[str]:
    scheme = call.service.zone_scheme
    return sorted(m.term for m in reg.mixins.values() if m.scheme == scheme)


def is_image(m: Mixin) -> bool:
    return infra.OS_TPL.id in m.depends


def is_type(m: Mixin) -> bool:
    return infra.RESOURCE_TPL.id in m.depends


def images(reg: Registry) -> dict[str, Mixin]:
    """EC2 image id -> os_tpl mixin."""
    return {ids.image_id(m.id): m for m in reg.mixins.values() if is_image(m)}


def instance_types(reg: Registry) -> dict[str, Mixin]:
    """Instance type name (the resource_tpl term) -> mixin; the first of a term wins."""
    out: dict[str, Mixin] = {}
    for m in sorted(reg.mixins.values(), key=lambda m: m.id):
        if is_type(m):
            out.setdefault(m.term, m)
    return out


def find_image(reg: Registry, value: str) -> Mixin:
    """The os_tpl an ImageId names: its EC2 id, or its term or type identifier."""
    found = images(reg).get(value)
    if found is None:
        for m in reg.mixins.values():
            if is_image(m) and value in (m.term, m.id):
                return m
        raise Ec2Error("InvalidAMIID.NotFound", f"The image id '[{value[:80]}]' does not exist")
    return found
