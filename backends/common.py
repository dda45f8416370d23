"""Helpers every backend shares: how platform objects, volumes and devices are named, how MACs
are derived, and how image (os_tpl) and size (resource_tpl) mixins are built.

One place, so that the backends agree on what the contract promises about names (`occi-<entity
id>`, which makes retried jobs idempotent) and a new backend (vSphere, XenServer) starts from
the same rules. Pure functions over occi.model / occi.infrastructure; no platform SDK.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import count

from occi import infrastructure as infra
from occi.model import TERM_RE, Entity, Mixin, attrs

#: every platform object the server makes is named with this prefix (and so never mistaken for
#: an image or an administrator's object)
PREFIX = "occi-"
#: QEMU's range (libvirt, KVM); locally administered unicast addresses (any other platform)
QEMU_MAC_PREFIX = "52:54:00"
LOCAL_MAC_PREFIX = "02"


# ---------------------------------------------------------------------------- naming
def platform_name(entity: Entity) -> str:
    """The platform's name for the object behind an entity: stable, so retries are idempotent."""
    if not entity.id:
        raise ValueError("the entity has no id yet; the service assigns it before the backend")
    return f"{PREFIX}{entity.id}"


def name_at(location: str | None) -> str | None:
    """The platform name for the resource at a location ('/compute/abc' -> 'occi-abc')."""
    if not location:
        return None
    last = location.rstrip("/").rsplit("/", 1)[-1]
    return f"{PREFIX}{last}" if last else None


def root_volume(name: str, fmt: str = "qcow2") -> str:
    """The root disk of the compute named `name` (cloned from its image)."""
    return f"{name}-root.{fmt}"


def seed_volume(name: str) -> str:
    """The cloud-init seed (an ISO) of the compute named `name`."""
    return f"{name}-seed.iso"


def storage_volume(name: str, fmt: str = "qcow2") -> str:
    """The volume behind the storage resource named `name`."""
    return f"{name}.{fmt}"


# ---------------------------------------------------------------------------- devices
def mac_for(link_id: str, prefix: str = LOCAL_MAC_PREFIX) -> str:
    """A MAC starting with `prefix`, its other bytes derived from the link id (same id, same
    MAC: a retried link gets the address the first attempt gave)."""
    head = prefix.split(":") if prefix else []
    digest = hashlib.sha256(link_id.encode()).digest()
    return ":".join([*head, *(f"{b:02x}" for b in digest[: 6 - len(head)])])


def nic_names() -> Iterator[str]:
    """eth0, eth1, ..."""
    for i in count():
        yield f"eth{i}"


def disk_names() -> Iterator[str]:
    """vdb, vdc, ..., vdz, vdaa, vdab, ... (vda is the root disk)."""
    for i in count(1):
        letters, n = "", i
        while True:
            letters = chr(ord("a") + n % 26) + letters
            n = n // 26 - 1
            if n < 0:
                break
        yield "vd" + letters


def next_free(names: Iterator[str], used: Iterable[str]) -> str:
    """The first of `names` (an endless generator above) not in `used`."""
    taken = set(used)
    for name in names:
        if name not in taken:
            return name
    raise AssertionError("unreachable: name generators are infinite")


# ---------------------------------------------------------------------------- templates
def clean_term(wanted: str) -> str:
    """A valid category term made from a name ('My image!' -> 'My-image'), '' if none."""
    term = re.sub(r"[^A-Za-z0-9_.\-]+", "-", wanted.strip()).strip("-.")
    term = re.sub(r"^[_\-.]+", "", term)
    return term[:200] if term and TERM_RE.fullmatch(term) else ""


def os_tpl(scheme: str, term: str, title: str | None) -> Mixin:
    """The os_tpl mixin for one image of a provider."""
    return Mixin(
        scheme,
        term,
        title,
        depends=(infra.OS_TPL.id,),
        applies=(infra.COMPUTE.id,),
        location=f"/mixin/os_tpl/{term}/",
    )


def resource_tpl(
    scheme: str, term: str, title: str, cores: int, memory: float, disk: float | None = None
) -> Mixin:
    """A resource_tpl mixin: a size (cores, memory in GB, optionally a root disk in GB) given
    as the defaults of the compute attributes."""
    base = infra.COMPUTE.attributes
    defs = [
        replace(base["occi.compute.cores"], default=cores),
        replace(base["occi.compute.memory"], default=memory),
    ]
    if disk is not None:
        defs.append(replace(infra.CRTP_ATTRS["occi.compute.ephemeral_storage.size"], default=disk))
    return Mixin(
        scheme,
        term,
        title,
        attrs(*defs),
        depends=(infra.RESOURCE_TPL.id,),
        applies=(infra.COMPUTE.id,),
        location=f"/mixin/resource_tpl/{term}/",
    )
