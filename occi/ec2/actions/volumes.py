"""EC2 volumes are the project's storages, and their attachments storagelinks from a compute:
CreateVolume makes a storage of Size GiB in a zone, AttachVolume links it to an instance,
DetachVolume deletes that link, DeleteVolume the storage (refused while it is attached).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from occi import errors
from occi import infrastructure as infra
from occi.ec2 import ids
from occi.ec2.actions import catalog, lists
from occi.ec2.actions.instances import instance_entity, tag_specs
from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Action, Call
from occi.model import Entity, Link, Resource
from occi.service import Filter, Page

#: largest volume, in GiB (EC2's own limit)
MAX_SIZE = 16384
_ATTACHMENT = {"attaching": "attaching", "deleting": "detaching"}


def _list(call: Call, kind: Any) -> list[Entity]:
    it, _ = call.service.list_collection(call.ctx, kind.location or "", Filter(), Page())
    return list(it)


def _attachments(call: Call) -> dict[str, list[Link]]:
    """Storage location -> its storagelinks."""
    out: dict[str, list[Link]] = {}
    for e in _list(call, infra.STORAGELINK):
        if isinstance(e, Link):
            out.setdefault(e.target or "", []).append(e)
    return out


def _attachment(volume_id: str, ln: Link) -> dict[str, Any]:
    message = str(ln.attributes.get("occi.storagelink.state.message") or "")
    return {
        "volumeId": volume_id,
        "instanceId": ids.ec2_id(ids.INSTANCE, (ln.source or "").rsplit("/", 1)[-1]),
        "device": ln.attributes.get("occi.storagelink.deviceid") or "",
        "status": _ATTACHMENT.get(message, "attached"),
        "deleteOnTermination": False,
    }


def describe(
    call: Call, e: Entity, links: list[Link], tags: dict[str, str], queued: Sequence[str] = ()
) -> dict[str, Any]:
    vid = ids.ec2_id(ids.VOLUME, e.id or "")
    scheme = call.service.zone_scheme
    size = e.attributes.get("occi.storage.size") or 0
    return {
        "volumeId": vid,
        "size": int(round(float(size))),
        "snapshotId": "",
        "availabilityZone": next((m[len(scheme) :] for m in e.mixins if m.startswith(scheme)), ""),
        "status": ids.volume_state(e.attributes, bool(links), queued),
        "attachmentSet": [_attachment(vid, ln) for ln in links],
        "volumeType": "standard",
        "encrypted": False,
        "multiAttachEnabled": False,
        "tagSet": lists.tag_set(tags),
    }


def volumes_of(call: Call) -> dict[str, Entity]:
    """EC2 volume id -> storage of the project."""
    return {ids.ec2_id(ids.VOLUME, e.id or ""): e for e in _list(call, infra.STORAGE)}


def _volume(call: Call, vid: str) -> Entity:
    if not ids.well_formed(ids.VOLUME, vid):
        raise Ec2Error("InvalidVolumeID.Malformed", f'Invalid id: "{vid[:80]}"')
    found = volumes_of(call).get(vid)
    if found is None:
        raise Ec2Error("InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")
    return found


def create_volume(call: Call) -> dict[str, Any]:
    p = call.params
    size = p.integer("Size", None, 1, MAX_SIZE)
    if size is None:
        raise Ec2Error("MissingParameter", "The request must contain the parameter size")
    if p.get("SnapshotId"):
        raise invalid("this cloud has no snapshots: create a volume of a Size")
    call.service.authorize(call.ctx, "create", infra.STORAGE.id)
    reg = call.service.registry(project=call.ctx.project)
    mixins = []
    zone = p.get("AvailabilityZone")
    if zone:
        if zone not in catalog.zones(call, reg):
            raise invalid(f"Invalid availability zone: [{zone[:80]}]")
        mixins.append(call.service.zone_scheme + zone)
    tags = tag_specs(call, "volume")
    entity = Resource(
        infra.STORAGE.id,
        str(uuid.uuid4()),
        dict(tags).get("Name"),
        mixins,
        {"occi.storage.size": float(size)},
    )
    (made,) = call.service.create(call.ctx, infra.STORAGE.location or "", [entity])
    vid = ids.ec2_id(ids.VOLUME, made.id or "")
    if tags:
        call.records.set_tags(call.ctx, [vid], tags)
    queued = call.service.queued_work(call.ctx, [made]).get(made.id or "", [])
    return describe(call, made, [], dict(tags), queued)


def describe_volumes(call: Call) -> dict[str, Any]:
    wanted = call.params.listed("VolumeId")
    if wanted and call.params.get("MaxResults") is not None:
        raise Ec2Error(
            "InvalidParameterCombination", "VolumeId and MaxResults cannot be used together"
        )
    volumes = volumes_of(call)
    missing = [w for w in wanted if w not in volumes]
    if missing:
        raise Ec2Error("InvalidVolume.NotFound", f"The volume '{missing[0][:80]}' does not exist.")
    links = _attachments(call)
    tags = call.records.tags(call.ctx, list(volumes))
    queued = call.service.queued_work(call.ctx, volumes.values())
    items = [
        describe(
            call, e, links.get(e.location or "", []), tags.get(vid, {}), queued.get(e.id or "", [])
        )
        for vid, e in sorted(volumes.items())
        if not wanted or vid in wanted
    ]
    items = lists.apply_filters(
        items,
        call.params.filters(),
        {
            "volume-id": lambda v: v["volumeId"],
            "status": lambda v: v["status"],
            "size": lambda v: str(v["size"]),
            "availability-zone": lambda v: v["availabilityZone"],
            "volume-type": lambda v: v["volumeType"],
            "attachment.instance-id": lambda v: [a["instanceId"] for a in v["attachmentSet"]],
            "attachment.device": lambda v: [a["device"] for a in v["attachmentSet"]],
            "attachment.status": lambda v: [a["status"] for a in v["attachmentSet"]],
        },
        lambda v: {t["key"]: t["value"] for t in v["tagSet"]},
    )
    chunk, token = lists.page(call, items)
    return {"volumeSet": chunk, "nextToken": token}


def attach_volume(call: Call) -> dict[str, Any]:
    p = call.params
    volume = _volume(call, p.required("VolumeId"))
    instance = instance_entity(call, p.required("InstanceId"))
    device = p.required("Device")
    if len(device) > 64:
        raise invalid("the device name is longer than 64 characters")
    if _attachments(call).get(volume.location or ""):
        raise Ec2Error("VolumeInUse", f"{p.get('VolumeId')} is already attached to an instance")
    link = Link(
        infra.STORAGELINK.id,
        str(uuid.uuid4()),
        None,
        [],
        {"occi.storagelink.deviceid": device},
        source=f"{infra.COMPUTE.location}{instance}",
        target=volume.location,
    )
    (made,) = call.service.create(call.ctx, infra.STORAGELINK.location or "", [link])
    assert isinstance(made, Link)
    out = _attachment(ids.ec2_id(ids.VOLUME, volume.id or ""), made)
    if out["status"] == "attached" and made.attributes.get("occi.storagelink.state") == "error":
        out["status"] = "attaching"
    return out


def detach_volume(call: Call) -> dict[str, Any]:
    p = call.params
    vid = p.required("VolumeId")
    volume = _volume(call, vid)
    instance = p.get("InstanceId")
    links = [
        ln
        for ln in _attachments(call).get(volume.location or "", [])
        if not instance
        or ids.ec2_id(ids.INSTANCE, (ln.source or "").rsplit("/", 1)[-1]) == instance
    ]
    if not links:
        raise Ec2Error("IncorrectState", f"Volume '{vid}' is in the 'available' state.")
    out = _attachment(vid, links[0])
    for ln in links:
        try:
            call.service.delete(call.ctx, infra.STORAGELINK, ln.id or "")
        except errors.NotFound:
            pass  # detached meanwhile
    still = _attachments(call).get(volume.location or "")
    out["status"] = "detaching" if still else "detached"
    return out


def delete_volume(call: Call) -> dict[str, Any]:
    vid = call.params.required("VolumeId")
    volume = _volume(call, vid)
    if _attachments(call).get(volume.location or ""):
        raise Ec2Error("VolumeInUse", f"Volume {vid} is currently attached")
    call.service.delete(call.ctx, infra.STORAGE, volume.id or "")
    call.records.delete_tags(call.ctx, [vid])
    return {}  # EC2's model: only the request id


ACTIONS = {
    "CreateVolume": Action(create_volume, "volume", "create"),
    "DescribeVolumes": Action(describe_volumes, "volume", "read"),
    "AttachVolume": Action(attach_volume, "volume", "create"),
    "DetachVolume": Action(detach_volume, "volume", "delete"),
    "DeleteVolume": Action(delete_volume, "volume", "delete"),
}
