"""How EC2 sees the project's computes: an instance's description (from the compute, its
storagelinks, its EC2 record and tags), the listing with the tombstones of the last hour,
DescribeInstances (ids, filters, pages, reservations) and DescribeInstanceStatus.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from occi import infrastructure as infra
from occi.ec2 import ids
from occi.ec2.actions import catalog, lists
from occi.ec2.actions.describe import DEFAULT_GROUP_ID
from occi.ec2.errors import Ec2Error
from occi.ec2.front import Call
from occi.model import Entity, Link
from occi.registry import Registry
from occi.service import Filter, Page
from occi.service.ec2_records import InstanceRecord

#: how long a terminated instance stays visible
TOMBSTONE = timedelta(hours=1)
#: how old an instance record without its compute must be to be forgotten
STALE = timedelta(minutes=10)
ARCHITECTURES = {"x64": "x86_64", "x86": "i386"}


@dataclass
class Seen:
    """An instance as DescribeInstances lists it: its description, its tags, and its
    compute's id (None for a tombstone)."""

    description: dict[str, Any]
    reservation: str
    tags: dict[str, str]
    entity_id: str | None = None


# ---------------------------------------------------------------------------------- reading
def project_computes(call: Call) -> tuple[list[Entity], Registry]:
    it, reg = call.service.list_collection(call.ctx, infra.COMPUTE.location or "", Filter(), Page())
    return list(it), reg


def _links(call: Call) -> list[Link]:
    """The project's links: storage links (attached volumes) and network interfaces."""
    it, _ = call.service.list_collection(call.ctx, infra.LINK.location or "", Filter(), Page())
    kinds = (infra.STORAGELINK.id, infra.NETWORKINTERFACE.id)
    return [e for e in it if isinstance(e, Link) and e.kind in kinds]


def describe(
    call: Call,
    e: Entity,
    reg: Registry,
    record: InstanceRecord | None,
    tags: dict[str, str],
    links: Iterable[Link] = (),
    queued: Sequence[str] = (),
) -> dict[str, Any]:
    """EC2's Instance of a compute (`queued`: the work queued for it)."""
    a = e.attributes
    state = ids.instance_state(a, queued)
    image = next((m for m in e.mixins if m in reg.mixins and catalog.is_image(reg.mixins[m])), None)
    itype = next(
        (
            reg.mixins[m].term
            for m in e.mixins
            if m in reg.mixins and catalog.is_type(reg.mixins[m])
        ),
        "custom",
    )
    scheme = call.service.zone_scheme
    zone = next((m[len(scheme) :] for m in e.mixins if m.startswith(scheme)), "")
    entity_id = e.id or ""
    out: dict[str, Any] = {
        "instanceId": ids.ec2_id(ids.INSTANCE, entity_id),
        "imageId": ids.image_id(image) if image else None,
        "instanceState": {"code": state.code, "name": state.name},
        "privateDnsName": "",
        "dnsName": "",
        "reason": "",
        "keyName": record.key_name if record else None,
        "amiLaunchIndex": 0,
        "instanceType": itype,
        "launchTime": record.launch_time if record else None,
        "placement": {"availabilityZone": zone, "tenancy": "default"},
        "monitoring": {"state": "disabled"},
        "groupSet": [{"groupId": DEFAULT_GROUP_ID, "groupName": "default"}],
        "architecture": ARCHITECTURES.get(str(a.get("occi.compute.architecture")), "x86_64"),
        "rootDeviceType": "ebs",
        "rootDeviceName": "/dev/sda1",
        "blockDeviceMapping": [
            {
                "deviceName": ln.attributes.get("occi.storagelink.deviceid") or "",
                "ebs": {
                    "volumeId": ids.ec2_id(ids.VOLUME, (ln.target or "").rsplit("/", 1)[-1]),
                    "status": "attached",
                    "deleteOnTermination": False,
                },
            }
            for ln in links
            if ln.kind == infra.STORAGELINK.id
        ],
        "virtualizationType": "hvm",
        "hypervisor": "xen",
        "tagSet": lists.tag_set(tags),
        "cpuOptions": {"coreCount": a.get("occi.compute.cores") or 1, "threadsPerCore": 1},
    }
    if a.get("occi.compute.hostname"):
        out["privateDnsName"] = str(a["occi.compute.hostname"])
    address = next(
        (
            str(ln.attributes["occi.networkinterface.address"])
            for ln in links
            if ln.kind == infra.NETWORKINTERFACE.id
            and ln.attributes.get("occi.networkinterface.address")
        ),
        None,
    )
    if address:  # the first interface's address, as EC2 shows the primary one
        out["privateIpAddress"] = address
    if a.get("occi.compute.state") in ("error", "suspended"):
        code = (
            "Server.InternalError"
            if a["occi.compute.state"] == "error"
            else "Client.UserInitiatedHibernate"
        )
        message = str(a.get("occi.compute.state.message") or a["occi.compute.state"])
        out["stateReason"] = {"code": code, "message": f"{code}: {message}"}
        out["reason"] = message
    return out


def listing(call: Call) -> list[Seen]:
    """Every instance of the project, live and tombstones, by launch time then id."""
    computes, reg = project_computes(call)
    queued = call.service.queued_work(call.ctx, computes)
    by_source: dict[str, list[Link]] = {}
    for ln in _links(call):
        by_source.setdefault(ln.source or "", []).append(ln)
    now = datetime.now(UTC)
    records, tags = call.records.instances(call.ctx)
    expired = now - TOMBSTONE
    live_ids = {e.id for e in computes}
    # records of computes deleted through OCCI (launched long enough ago not to be a
    # RunInstances under way, whose compute this listing may not hold yet)
    stale = [
        eid
        for eid, r in records.items()
        if eid not in live_ids and r.terminated_at is None and r.launch_time < now - STALE
    ]
    if stale or any(
        r.terminated_at is not None and r.terminated_at < expired for r in records.values()
    ):
        # a write only when something is due to go
        records, tags = call.records.tidy_instances(call.ctx, expired, stale)
    out = []
    live = set()
    for e in computes:
        eid = e.id or ""
        live.add(eid)
        r = records.get(eid)
        iid = ids.ec2_id(ids.INSTANCE, eid)
        links = by_source.get(e.location or "", [])
        d = describe(call, e, reg, r, tags.get(iid, {}), links, queued.get(eid, []))
        reservation = r.reservation_id if r else "r-" + iid[2:19]
        out.append(Seen(d, reservation, tags.get(iid, {}), eid))
    for eid, r in records.items():
        if eid in live or r.snapshot is None or r.terminated_at is None:
            continue
        d = dict(r.snapshot)
        d["instanceState"] = {"code": ids.TERMINATED.code, "name": ids.TERMINATED.name}
        d["launchTime"] = r.launch_time
        d["blockDeviceMapping"] = []
        iid = str(d.get("instanceId"))
        d["tagSet"] = lists.tag_set(tags.get(iid, {}))
        out.append(Seen(d, r.reservation_id, tags.get(iid, {})))
    far = datetime.max.replace(tzinfo=UTC)
    out.sort(key=lambda s: (s.description.get("launchTime") or far, s.description["instanceId"]))
    return out


def wanted_ids(call: Call) -> list[str]:
    listed = call.params.listed("InstanceId")
    for value in listed:
        if not ids.well_formed(ids.INSTANCE, value):
            raise Ec2Error("InvalidInstanceID.Malformed", f'Invalid id: "{value[:80]}"')
    return listed


def not_found(missing: list[str]) -> Ec2Error:
    names = ", ".join(missing[:10])
    return Ec2Error(
        "InvalidInstanceID.NotFound",
        f"The instance IDs '{names}' do not exist"
        if len(missing) > 1
        else f"The instance ID '{names}' does not exist",
    )


FILTERS = {
    "instance-id": lambda s: s.description["instanceId"],
    "instance-state-name": lambda s: s.description["instanceState"]["name"],
    "instance-state-code": lambda s: str(s.description["instanceState"]["code"]),
    "image-id": lambda s: s.description.get("imageId"),
    "instance-type": lambda s: s.description.get("instanceType"),
    "availability-zone": lambda s: s.description["placement"]["availabilityZone"],
    "key-name": lambda s: s.description.get("keyName"),
    "reservation-id": lambda s: s.reservation,
    "architecture": lambda s: s.description.get("architecture"),
}


def describe_instances(call: Call) -> dict[str, Any]:
    wanted = wanted_ids(call)
    if wanted and call.params.get("MaxResults") is not None:
        raise Ec2Error(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        )
    seen = listing(call)
    if wanted:
        have = {s.description["instanceId"] for s in seen}
        missing = [w for w in wanted if w not in have]
        if missing:
            raise not_found(missing)
        seen = [s for s in seen if s.description["instanceId"] in wanted]
    seen = lists.apply_filters(seen, call.params.filters(), FILTERS, lambda s: s.tags)
    chunk, token = lists.page(call, seen)
    reservations: list[dict[str, Any]] = []
    for s in chunk:
        if reservations and reservations[-1]["reservationId"] == s.reservation:
            reservations[-1]["instancesSet"].append(s.description)
            continue
        reservations.append(reservation(call, s.reservation, [s.description]))
    return {"reservationSet": reservations, "nextToken": token}


def reservation(call: Call, rid: str, instances: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reservationId": rid,
        "ownerId": call.ctx.project,
        "groupSet": [{"groupId": DEFAULT_GROUP_ID, "groupName": "default"}],
        "instancesSet": instances,
    }


def describe_instance_status(call: Call) -> dict[str, Any]:
    """The running instances' (every instance's with IncludeAllInstances) state and checks:
    the platform's own checks are the state, so a running instance is ok."""
    wanted = wanted_ids(call)
    seen = listing(call)
    if wanted:
        have = {s.description["instanceId"] for s in seen}
        missing = [w for w in wanted if w not in have]
        if missing:
            raise not_found(missing)
        seen = [s for s in seen if s.description["instanceId"] in wanted]
    if not call.params.flag("IncludeAllInstances"):
        seen = [s for s in seen if s.description["instanceState"]["name"] == "running"]
    items = []
    for s in seen:
        d = s.description
        running = d["instanceState"]["name"] == "running"
        check = "ok" if running else "not-applicable"
        details = [{"name": "reachability", "status": "passed" if running else "initializing"}]
        items.append(
            {
                "instanceId": d["instanceId"],
                "availabilityZone": d["placement"]["availabilityZone"],
                "instanceState": d["instanceState"],
                "systemStatus": {"status": check, "details": details if running else []},
                "instanceStatus": {"status": check, "details": details if running else []},
            }
        )
    items = lists.apply_filters(
        items,
        call.params.filters(),
        {
            "instance-state-name": lambda i: i["instanceState"]["name"],
            "instance-state-code": lambda i: str(i["instanceState"]["code"]),
            "availability-zone": lambda i: i["availabilityZone"],
            "system-status.status": lambda i: i["systemStatus"]["status"],
            "instance-status.status": lambda i: i["instanceStatus"]["status"],
        },
    )
    chunk, token = lists.page(call, items)
    return {"instanceStatusSet": chunk, "nextToken": token}
