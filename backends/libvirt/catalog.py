"""What the libvirt backend offers as provider templates: os_tpl mixins for the images in the
image pool, and resource_tpl mixins (the CRTP ones plus any from settings).

Pure functions over occi.model / occi.infrastructure; the backend lists the pool.
"""

from __future__ import annotations

import re
from dataclasses import replace

from backends.libvirt.config import TemplateSpec
from occi import infrastructure as infra
from occi.model import TERM_RE, Mixin, attrs

IMAGE_SUFFIXES = (".qcow2", ".img", ".raw", ".iso")
#: volumes of ours in a shared pool (root disks, seeds, storage) are not images
PRIVATE_PREFIX = "occi-"


def image_term(volume_name: str) -> str:
    """The os_tpl term for an image volume ('debian-12.qcow2' -> 'debian-12'); '' if unusable."""
    base = volume_name
    for suffix in IMAGE_SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return clean_term(base)


def clean_term(wanted: str) -> str:
    """A valid category term made from a name ('My image!' -> 'My-image'), '' if none."""
    term = re.sub(r"[^A-Za-z0-9_.\-]+", "-", wanted.strip()).strip("-.")
    term = re.sub(r"^[_\-.]+", "", term)
    return term[:200] if term and TERM_RE.fullmatch(term) else ""


def is_image(volume_name: str) -> bool:
    return not volume_name.startswith(PRIVATE_PREFIX) and bool(image_term(volume_name))


def os_tpl(scheme: str, term: str, title: str | None) -> Mixin:
    return Mixin(
        scheme,
        term,
        title,
        depends=(infra.OS_TPL.id,),
        applies=(infra.COMPUTE.id,),
        location=f"/mixin/os_tpl/{term}/",
    )


def resource_tpl(scheme: str, spec: TemplateSpec) -> Mixin:
    base = infra.COMPUTE.attributes
    defs = [
        replace(base["occi.compute.cores"], default=spec.cores),
        replace(base["occi.compute.memory"], default=spec.memory),
    ]
    title = f"{spec.term}: {spec.cores} cores, {spec.memory:g} GB RAM"
    if spec.disk is not None:
        defs.append(
            replace(infra.CRTP_ATTRS["occi.compute.ephemeral_storage.size"], default=spec.disk)
        )
        title += f", {spec.disk:g} GB disk"
    return Mixin(
        scheme,
        spec.term,
        title,
        attrs(*defs),
        depends=(infra.RESOURCE_TPL.id,),
        applies=(infra.COMPUTE.id,),
        location=f"/mixin/resource_tpl/{spec.term}/",
    )
