"""What the libvirt backend offers as provider templates: os_tpl mixins for the images in the
image pool, and resource_tpl mixins (the CRTP ones plus any from settings).

Pure functions (the mixins are built by backends.common); the backend lists the pool.
"""

from __future__ import annotations

from backends import common
from backends.libvirt.config import TemplateSpec
from occi.model import Mixin

IMAGE_SUFFIXES = (".qcow2", ".img", ".raw", ".iso")
#: volumes of ours in a shared pool (root disks, seeds, storage) are not images
PRIVATE_PREFIX = common.PREFIX


def image_term(volume_name: str) -> str:
    """The os_tpl term for an image volume ('debian-12.qcow2' -> 'debian-12'); '' if unusable."""
    base = volume_name
    for suffix in IMAGE_SUFFIXES:
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
            break
    return clean_term(base)


#: a valid category term made from a name ('My image!' -> 'My-image'), '' if none
clean_term = common.clean_term


def is_image(volume_name: str) -> bool:
    return not volume_name.startswith(PRIVATE_PREFIX) and bool(image_term(volume_name))


os_tpl = common.os_tpl


def resource_tpl(scheme: str, spec: TemplateSpec) -> Mixin:
    title = f"{spec.term}: {spec.cores} cores, {spec.memory:g} GB RAM"
    if spec.disk is not None:
        title += f", {spec.disk:g} GB disk"
    return common.resource_tpl(scheme, spec.term, title, spec.cores, spec.memory, spec.disk)
