"""What the vSphere backend offers as provider templates: an os_tpl mixin per VM template of
the datacenter (config.template), and the CRTP resource_tpl sizes.

Pure functions over template names (the mixins are built by backends.common); the backend lists
the templates.
"""

from __future__ import annotations

from collections.abc import Iterable

from backends import common
from occi import infrastructure as infra
from occi.model import Mixin


def image_term(template_name: str) -> str:
    """The os_tpl term for a template ('Debian 12 (cloud)' -> 'Debian-12-cloud'); '' if none."""
    return common.clean_term(template_name)


def images(template_names: Iterable[str]) -> dict[str, str]:
    """term -> template name (the first template of each term wins, by name)."""
    out: dict[str, str] = {}
    for name in sorted(template_names):
        term = image_term(name)
        if term and term not in out:
            out[term] = name
    return out


def mixins(scheme: str, template_names: Iterable[str]) -> list[Mixin]:
    found = images(template_names)
    out = [common.os_tpl(scheme, term, f"vSphere template {name}") for term, name in found.items()]
    return [*out, *infra.CRTP_TEMPLATES]


def free_term(wanted: str, taken: Iterable[str]) -> str:
    """A term for a new image: `wanted` (cleaned) where free, else with -2, -3, ..."""
    base = image_term(wanted) or "image"
    used = set(taken)
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"
