"""EC2 images are the os_tpl mixins the project sees: the provider's (public) and the ones its
computes saved (CreateImage is the compute's `save` action; DeregisterImage removes a saved
one, with its platform image).
"""

from __future__ import annotations

import time
from typing import Any

from occi import infrastructure as infra
from occi.ec2 import ids
from occi.ec2.actions import catalog, lists
from occi.ec2.actions.instances import instance_entity
from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Action, Call
from occi.model import ActionInvocation, CategoryRef, Mixin

#: seconds CreateImage waits for a save the platform is still carrying out
SAVE_WAIT = 300.0


def _describe(
    call: Call, image_id: str, m: Mixin, tags: dict[str, str], saved: bool
) -> dict[str, Any]:
    return {
        "imageId": image_id,
        "imageLocation": m.id,
        "imageState": "available",
        "imageOwnerId": call.ctx.project if saved else "provider",
        "isPublic": not saved,
        "architecture": "x86_64",
        "imageType": "machine",
        "name": m.term,
        "description": m.title or m.term,
        "rootDeviceType": "ebs",
        "rootDeviceName": "/dev/sda1",
        "blockDeviceMapping": [],
        "virtualizationType": "hvm",
        "hypervisor": "xen",
        "tagSet": lists.tag_set(tags),
    }


def describe_images(call: Call) -> dict[str, Any]:
    reg = catalog.registry(call)
    images = catalog.images(reg)
    wanted = call.params.listed("ImageId")
    missing = [w for w in wanted if w not in images]
    if missing:
        raise Ec2Error(
            "InvalidAMIID.NotFound", f"The image id '[{missing[0][:80]}]' does not exist"
        )
    tags = call.records.tags(call.ctx, list(images))
    saved = _saved(call)
    items = [
        _describe(call, iid, m, tags.get(iid, {}), m.id in saved)
        for iid, m in sorted(images.items(), key=lambda kv: kv[1].term)
        if not wanted or iid in wanted
    ]
    owners = call.params.listed("Owner")
    if owners:
        items = [
            i
            for i in items
            if ("self" in owners and not i["isPublic"])
            or (i["isPublic"] and {"amazon", "provider"} & set(owners))
            or i["imageOwnerId"] in owners
        ]
    items = lists.apply_filters(
        items,
        call.params.filters(),
        {
            "image-id": lambda i: i["imageId"],
            "name": lambda i: i["name"],
            "state": lambda i: i["imageState"],
            "is-public": lambda i: "true" if i["isPublic"] else "false",
            "owner-id": lambda i: i["imageOwnerId"],
            "architecture": lambda i: i["architecture"],
            "image-type": lambda i: i["imageType"],
            "description": lambda i: i["description"],
        },
        lambda i: {t["key"]: t["value"] for t in i["tagSet"]},
    )
    chunk, token = lists.page(call, items)
    return {"imagesSet": chunk, "nextToken": token}


def create_image(call: Call) -> dict[str, Any]:
    iid = call.params.required("InstanceId")
    name = call.params.required("Name")
    if len(name) > 128:
        raise invalid("the image name is longer than 128 characters")
    entity_id = instance_entity(call, iid)
    before = _saved(call)
    result = call.service.act(
        call.ctx, infra.COMPUTE, entity_id, "save", ActionInvocation(None, {"name": name})
    )
    if isinstance(result, Mixin):
        return {"imageId": ids.image_id(result.id)}
    # the platform is still saving (past job_wait): EC2 answers the image id at once, so wait
    # for the image to be recorded (the request would be sent again otherwise, saving twice)
    deadline = time.monotonic() + SAVE_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.5)
        made = _saved(call) - before
        if made:
            reg = call.service.registry(project=call.ctx.project)
            named = [m for m in made if m in reg.mixins and reg.mixins[m].title == name]
            return {"imageId": ids.image_id(sorted(named or made)[0])}
    raise Ec2Error(
        "InternalError",
        f"the image {name} is still being saved after {SAVE_WAIT:.0f} seconds; it will be "
        "listed by DescribeImages under its name once saved",
        500,
    )


def deregister_image(call: Call) -> dict[str, Any]:
    image_id = call.params.required("ImageId")
    reg = catalog.registry(call)
    found = catalog.images(reg).get(image_id)
    if found is None:
        raise Ec2Error("InvalidAMIID.NotFound", f"The image id '[{image_id[:80]}]' does not exist")
    if found.id not in _saved(call):
        raise Ec2Error(
            "UnauthorizedOperation", f"the image {image_id} is the provider's: it cannot go", 403
        )
    call.service.remove_user_mixins(call.ctx, [CategoryRef(found.scheme, found.term, "mixin")])
    call.records.delete_tags(call.ctx, [image_id])
    return {"return": True}


ACTIONS = {
    "DescribeImages": Action(describe_images, "image", "read"),
    "CreateImage": Action(create_image, "instance", "act"),
    "DeregisterImage": Action(deregister_image, "image", "remove_mixin"),
}


def _saved(call: Call) -> set[str]:
    """The ids of the images (os_tpl mixins) the caller's project saved from its computes."""
    return {m.id for m in call.service.saved_images(call.ctx)}
