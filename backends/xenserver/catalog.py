"""What the XenServer backend offers as provider templates: an os_tpl mixin per pool template
(filtered by the template source setting) and resource_tpl mixins (CRTP's and the configured
ones). Pure functions over VM records as XenAPI returns them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from backends import common
from backends.xenserver.config import TemplateSpec
from occi.model import Mixin

#: other_config keys the backend writes on platform objects
ENTITY_KEY = "occi_entity_id"
#: a template saved from a compute (compute.save) carries this key (the compute's id)
SAVED_KEY = "occi_saved_from"


def is_template(record: Mapping[str, Any]) -> bool:
    """A template a compute can be cloned from (not a snapshot, not a control domain)."""
    return (
        bool(record.get("is_a_template"))
        and not record.get("is_a_snapshot")
        and not record.get("is_control_domain")
    )


def offered(record: Mapping[str, Any], source: str) -> bool:
    """Whether the template is offered under the template source setting."""
    if not is_template(record):
        return False
    if source == "custom":
        other = record.get("other_config") or {}
        return other.get("default_template") != "true" and not record.get("is_default_template")
    if source.startswith("tag:"):
        return source[4:] in (record.get("tags") or [])
    return True


def template_term(record: Mapping[str, Any]) -> str:
    """The os_tpl term of a template: its name label made a valid term ('' if none)."""
    return common.clean_term(str(record.get("name_label") or ""))


def templates(records: Mapping[str, Mapping[str, Any]], source: str) -> dict[str, str]:
    """term -> template ref of every offered template (the first of a name wins; sorted)."""
    found: dict[str, str] = {}
    for ref, record in sorted(records.items(), key=lambda item: str(item[1].get("name_label"))):
        term = template_term(record)
        if term and term not in found and offered(record, source):
            found[term] = ref
    return found


def os_tpl(scheme: str, term: str, title: str) -> Mixin:
    return common.os_tpl(scheme, term, title)


def resource_tpl(scheme: str, spec: TemplateSpec) -> Mixin:
    title = f"{spec.term}: {spec.cores} cores, {spec.memory:g} GB RAM"
    return common.resource_tpl(scheme, spec.term, title, spec.cores, spec.memory)
