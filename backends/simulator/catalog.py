"""What the simulator offers as provider templates: its images (os_tpl) and one resource_tpl.

Pure data (the mixins are built by backends.common); the backend adds configured and saved
images.
"""

from __future__ import annotations

from backends import common
from occi.model import Mixin

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
    return common.os_tpl(OS_TPL_SCHEME, term, title)


def resource_tpl(term: str, title: str, cores: int, memory: float) -> Mixin:
    return common.resource_tpl(RESOURCE_TPL_SCHEME, term, title, cores, memory)


RESOURCE_TEMPLATES = (resource_tpl("xlarge", "Extra large instance: 8 cores, 32 GB RAM", 8, 32.0),)

#: a valid category term made from a client-chosen image name ('My image!' -> 'My-image')
image_term = common.clean_term


def parse_names(value: object) -> list[str]:
    """A comma-separated setting (or a list) as a list of non-empty names."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    return [str(i).strip() for i in items if str(i).strip()]
