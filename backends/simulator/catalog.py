"""What the simulator offers as provider templates: its images (os_tpl) and one resource_tpl.

Pure data over occi.model / occi.infrastructure; the backend adds configured and saved images.
"""

from __future__ import annotations

import re
from dataclasses import replace

from occi import infrastructure as infra
from occi.model import TERM_RE, Mixin, attrs

OS_TPL_SCHEME = "http://occi.simulator.local/os_tpl#"
RESOURCE_TPL_SCHEME = "http://occi.simulator.local/resource_tpl#"

#: Images every simulator has: term -> title.
BUILTIN_IMAGES: dict[str, str] = {
    "debian12": "Debian 12 (bookworm)",
    "ubuntu2404": "Ubuntu 24.04 LTS",
    "cirros": "CirrOS 0.6 test image",
}


def os_tpl(term: str, title: str | None) -> Mixin:
    """The os_tpl mixin for one image."""
    return Mixin(
        OS_TPL_SCHEME,
        term,
        title,
        depends=(infra.OS_TPL.id,),
        applies=(infra.COMPUTE.id,),
        location=f"/mixin/os_tpl/{term}/",
    )


def resource_tpl(term: str, title: str, cores: int, memory: float) -> Mixin:
    base = infra.COMPUTE.attributes
    return Mixin(
        RESOURCE_TPL_SCHEME,
        term,
        title,
        attrs(
            replace(base["occi.compute.cores"], default=cores),
            replace(base["occi.compute.memory"], default=memory),
        ),
        depends=(infra.RESOURCE_TPL.id,),
        applies=(infra.COMPUTE.id,),
        location=f"/mixin/resource_tpl/{term}/",
    )


RESOURCE_TEMPLATES = (resource_tpl("xlarge", "Extra large instance: 8 cores, 32 GB RAM", 8, 32.0),)


def image_term(wanted: str) -> str:
    """A valid category term made from a client-chosen image name ('My image!' -> 'My-image')."""
    term = re.sub(r"[^A-Za-z0-9_.\-]+", "-", wanted.strip()).strip("-.")
    term = re.sub(r"^[_\-.]+", "", term)
    return term[:200] if term and TERM_RE.fullmatch(term) else ""


def parse_names(value: object) -> list[str]:
    """A comma-separated setting (or a list) as a list of non-empty names."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return [str(i).strip() for i in items if str(i).strip()]
