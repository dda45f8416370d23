"""EC2 tags on the project's instances, volumes, images and key pairs (kept by EC2 id beside
the entities): CreateTags, DescribeTags, DeleteTags. A resource must be the project's.
"""

from __future__ import annotations

from typing import Any

from occi.ec2 import ids
from occi.ec2.actions import catalog, lists
from occi.ec2.actions.instance_views import listing
from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Action, Call
from occi.model import Entity

#: tags of one resource at most (EC2's limit)
MAX_TAGS = 50
TYPES = {ids.INSTANCE: "instance", ids.VOLUME: "volume", ids.IMAGE: "image", "key-": "key-pair"}


def resource_type(rid: str) -> str:
    for prefix, name in TYPES.items():
        if rid.startswith(prefix):
            return name
    return "unknown"


def _resources(call: Call) -> list[str]:
    listed = call.params.listed("ResourceId")
    if not listed:
        raise Ec2Error("MissingParameter", "The request must contain the parameter ResourceId")
    return list(dict.fromkeys(listed))


def _existing(call: Call, resources: list[str]) -> set[str]:
    """Which of the resources the project has (instances with their tombstones)."""
    from occi.ec2.actions.volumes import volumes_of

    have: set[str] = set()
    prefixes = {resource_type(r) for r in resources}
    if "instance" in prefixes:
        have.update(s.description["instanceId"] for s in listing(call))
    if "volume" in prefixes:
        have.update(volumes_of(call))
    if "image" in prefixes:
        have.update(catalog.images(catalog.registry(call)))
    if "key-pair" in prefixes:
        have.update(k.id for k in call.records.keypairs(call.ctx))
    return have


def _known(call: Call, resources: list[str]) -> None:
    """InvalidID unless every resource is one of the project's."""
    bad = [r for r in resources if resource_type(r) == "unknown"]
    if bad:
        raise Ec2Error("InvalidID", f"The ID '{bad[0][:80]}' is not valid")
    have = _existing(call, resources)
    missing = [r for r in resources if r not in have]
    if missing:
        raise Ec2Error("InvalidID", f"The ID '{missing[0][:80]}' does not exist")


def create_tags(call: Call) -> dict[str, Any]:
    resources = _resources(call)
    tags = call.params.tags()
    if not tags:
        raise Ec2Error("MissingParameter", "The request must contain the parameter Tag")
    if len(tags) > MAX_TAGS:
        raise invalid(f"a resource has at most {MAX_TAGS} tags")
    call.service.authorize(call.ctx, "update")
    _known(call, resources)
    if not call.records.set_tags(call.ctx, resources, [(k, v or "") for k, v in tags], MAX_TAGS):
        raise Ec2Error("TagLimitExceeded", f"a resource has at most {MAX_TAGS} tags")
    name = dict(tags).get("Name")
    if name is not None:
        _title(call, resources, name)
    return {}  # EC2's model: only the request id


def _title(call: Call, resources: list[str], name: str) -> None:
    """The Name tag of an instance or a volume is its entity's title, as OCCI shows it."""
    from occi.ec2.actions.instance_views import project_computes
    from occi.ec2.actions.volumes import volumes_of

    entities: dict[str, Entity] = {}
    if any(resource_type(r) == "instance" for r in resources):
        computes, _ = project_computes(call)
        entities.update({ids.ec2_id(ids.INSTANCE, e.id or ""): e for e in computes})
    if any(resource_type(r) == "volume" for r in resources):
        entities.update(volumes_of(call))
    for rid in resources:
        e = entities.get(rid)
        if e is not None and e.title != name:
            call.service.update(call.ctx, e.kind, e.id or "", Entity(e.kind, title=name))


def delete_tags(call: Call) -> dict[str, Any]:
    resources = _resources(call)
    tags = call.params.tags()
    call.records.delete_tags(call.ctx, resources, tags)
    return {}


def describe_tags(call: Call) -> dict[str, Any]:
    tagged = call.records.tags(call.ctx)
    # what went through OCCI took no tags with it: those tags are not shown
    live = _existing(call, list(tagged))
    tagged = {rid: tags for rid, tags in tagged.items() if rid in live}
    items = [
        {"resourceId": rid, "resourceType": resource_type(rid), "key": k, "value": v}
        for rid, tags in sorted(tagged.items())
        for k, v in sorted(tags.items())
    ]
    items = lists.apply_filters(
        items,
        call.params.filters(),
        {
            "resource-id": lambda t: t["resourceId"],
            "resource-type": lambda t: t["resourceType"],
            "key": lambda t: t["key"],
            "value": lambda t: t["value"],
        },
    )
    chunk, token = lists.page(call, items)
    return {"tagSet": chunk, "nextToken": token}


ACTIONS = {
    "CreateTags": Action(create_tags, "tag", "update"),
    "DeleteTags": Action(delete_tags, "tag", "update"),
    "DescribeTags": Action(describe_tags, "tag", "read"),
}
