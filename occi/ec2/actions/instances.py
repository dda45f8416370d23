"""EC2 instances are the project's computes: RunInstances creates them (ImageId an os_tpl,
InstanceType a resource template, KeyName an ssh_key, UserData a user_data mixin,
Placement.AvailabilityZone a zone), DescribeInstances lists them (and the tombstones of those
terminated in the last hour), Start/Stop/Reboot run the compute's actions and Terminate
deletes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from occi import errors
from occi import infrastructure as infra
from occi.ec2 import ids
from occi.ec2.actions import common
from occi.ec2.actions.describe import DEFAULT_GROUP_ID
from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Action, Call
from occi.ec2.records import InstanceRecord
from occi.model import ActionInvocation, Entity, Link, Resource
from occi.registry import Registry
from occi.service import Filter, Page

#: how long a terminated instance stays visible
TOMBSTONE = timedelta(hours=1)
#: most instances one RunInstances makes
MAX_COUNT = 100
#: the type of a RunInstances that names none
DEFAULT_TYPE = "small"
ARCHITECTURES = {"x64": "x86_64", "x86": "i386"}


@dataclass
class Seen:
    """An instance as DescribeInstances lists it: its description and its tags."""

    description: dict[str, Any]
    reservation: str
    tags: dict[str, str]


# ---------------------------------------------------------------------------------- reading
def _computes(call: Call) -> tuple[list[Entity], Registry]:
    it, reg = call.service.list_collection(call.ctx, infra.COMPUTE.location or "", Filter(), Page())
    return list(it), reg


def _links(call: Call) -> list[Link]:
    """The project's storage links (attached volumes)."""
    it, _ = call.service.list_collection(
        call.ctx, infra.STORAGELINK.location or "", Filter(), Page()
    )
    return [e for e in it if isinstance(e, Link)]


def describe(
    call: Call,
    e: Entity,
    reg: Registry,
    record: InstanceRecord | None,
    tags: dict[str, str],
    links: Iterable[Link] = (),
) -> dict[str, Any]:
    """EC2's Instance of a compute."""
    a = e.attributes
    state = ids.instance_state(a)
    image = next((m for m in e.mixins if m in reg.mixins and common.is_image(reg.mixins[m])), None)
    itype = next(
        (reg.mixins[m].term for m in e.mixins if m in reg.mixins and common.is_type(reg.mixins[m])),
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
        ],
        "virtualizationType": "hvm",
        "hypervisor": "xen",
        "tagSet": common.tag_set(tags),
        "cpuOptions": {"coreCount": a.get("occi.compute.cores") or 1, "threadsPerCore": 1},
    }
    if a.get("occi.compute.hostname"):
        out["privateDnsName"] = str(a["occi.compute.hostname"])
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
    computes, reg = _computes(call)
    by_source: dict[str, list[Link]] = {}
    for ln in _links(call):
        by_source.setdefault(ln.source or "", []).append(ln)
    now = datetime.now(UTC)
    with call.records(readonly=True) as rec:
        records = rec.instances()
        tags = rec.tags()
    expired = now - TOMBSTONE
    if any(r.terminated_at is not None and r.terminated_at < expired for r in records.values()):
        with call.records() as rec:  # a write only when a tombstone is due to go
            rec.purge(expired)
            records = rec.instances()
            tags = rec.tags()
    out = []
    live = set()
    for e in computes:
        eid = e.id or ""
        live.add(eid)
        r = records.get(eid)
        iid = ids.ec2_id(ids.INSTANCE, eid)
        d = describe(call, e, reg, r, tags.get(iid, {}), by_source.get(e.location or "", []))
        out.append(Seen(d, r.reservation_id if r else "r-" + iid[2:19], tags.get(iid, {})))
    for eid, r in records.items():
        if eid in live or r.snapshot is None or r.terminated_at is None:
            continue
        d = dict(r.snapshot)
        d["instanceState"] = {"code": ids.TERMINATED.code, "name": ids.TERMINATED.name}
        d["launchTime"] = r.launch_time
        d["blockDeviceMapping"] = []
        iid = str(d.get("instanceId"))
        d["tagSet"] = common.tag_set(tags.get(iid, {}))
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


def _not_found(missing: list[str]) -> Ec2Error:
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
            raise _not_found(missing)
        seen = [s for s in seen if s.description["instanceId"] in wanted]
    seen = common.apply_filters(seen, call.params.filters(), FILTERS, lambda s: s.tags)
    chunk, token = common.page(call, seen)
    reservations: list[dict[str, Any]] = []
    for s in chunk:
        if reservations and reservations[-1]["reservationId"] == s.reservation:
            reservations[-1]["instancesSet"].append(s.description)
            continue
        reservations.append(_reservation(call, s.reservation, [s.description]))
    return {"reservationSet": reservations, "nextToken": token}


def _reservation(call: Call, rid: str, instances: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "reservationId": rid,
        "ownerId": call.ctx.project,
        "groupSet": [{"groupId": DEFAULT_GROUP_ID, "groupName": "default"}],
        "instancesSet": instances,
    }


# ---------------------------------------------------------------------------------- running
#: the resource types a TagSpecification may name (those of other actions are skipped)
TAGGABLE = (
    "instance",
    "volume",
    "key-pair",
    "image",
    "network-interface",
    "spot-instances-request",
)


def tag_specs(call: Call, resource_type: str) -> list[tuple[str, str]]:
    """The tags TagSpecification.N gives to resources of `resource_type`."""
    out: list[tuple[str, str]] = []
    for spec in call.params.members("TagSpecification"):
        kind = spec.get("ResourceType")
        if not isinstance(kind, str):
            raise Ec2Error("MissingParameter", "TagSpecification.N.ResourceType is required")
        if kind not in TAGGABLE:
            raise invalid(f"'{kind[:40]}' is not a valid taggable resource type for this operation")
        if kind != resource_type:
            continue
        tags = spec.get("Tag", {})
        if not isinstance(tags, dict):
            raise invalid("TagSpecification.N.Tag.M.Key and .Value name the tags")
        from occi.ec2.params import tag_of

        for i in sorted(tags):
            key, value = tag_of(tags[i], "TagSpecification.N.Tag")
            out.append((key, value or ""))
    return out


def run_instances(call: Call) -> dict[str, Any]:
    p = call.params
    call.service.authorize(call.ctx, "create", infra.COMPUTE.id)
    reg = call.service.registry(project=call.ctx.project)
    image = common.find_image(reg, p.required("ImageId"))
    low = p.integer("MinCount", None, 1, MAX_COUNT)
    high = p.integer("MaxCount", None, 1, MAX_COUNT)
    if low is None:
        raise Ec2Error("MissingParameter", "The request must contain the parameter MinCount")
    if high is None:
        raise Ec2Error("MissingParameter", "The request must contain the parameter MaxCount")
    if low > high:
        raise invalid("MinCount must not be above MaxCount")
    type_name = p.get("InstanceType") or DEFAULT_TYPE
    types = common.instance_types(reg)
    itype = types.get(type_name)
    if itype is None:
        raise invalid(
            f"The instance type '{type_name[:60]}' does not exist; the types are "
            + ", ".join(sorted(types))
        )
    mixins = [image.id, itype.id]
    attributes: dict[str, Any] = {}
    key_name = p.get("KeyName")
    if key_name:
        with call.records(readonly=True) as rec:
            pair = next((k for k in rec.keypairs() if k.name == key_name), None)
        if pair is None:
            raise Ec2Error(
                "InvalidKeyPair.NotFound", f"The key pair '{key_name[:80]}' does not exist"
            )
        mixins.append(infra.SSH_KEY.id)
        attributes["occi.credentials.ssh.publickey"] = pair.public_key
    user_data = p.get("UserData")
    if user_data:
        mixins.append(infra.USER_DATA.id)
        attributes["occi.compute.userdata"] = user_data
    zone = p.get("Placement.AvailabilityZone")
    if zone:
        if zone not in common.zones(call, reg):
            raise invalid(f"Invalid availability zone: [{zone[:80]}]")
        mixins.append(call.service.zone_scheme + zone)
    tags = tag_specs(call, "instance")
    title = dict(tags).get("Name")
    reservation = ids.random_id("r-")

    def made(count: int) -> list[Entity]:
        return [
            Resource(
                infra.COMPUTE.id,
                str(uuid.uuid4()),
                title,
                list(mixins),
                dict(attributes),
            )
            for _ in range(count)
        ]

    try:
        created = _create(call, made(high))
    except (errors.QuotaExceeded, errors.NoCapacity):
        if low == high:
            raise
        created = _create(call, made(low))  # EC2 launches at least MinCount, if it can
    created = [_launch(call, e) for e in created]
    now = datetime.now(UTC)
    with call.records() as rec:
        for e in created:
            rec.record_instance(InstanceRecord(e.id or "", reservation, key_name or None, now))
        if tags:
            rec.set_tags([ids.ec2_id(ids.INSTANCE, e.id or "") for e in created], tags)
        records = rec.instances()
    described = []
    for n, e in enumerate(created):
        d = describe(call, e, reg, records.get(e.id or ""), dict(tags))
        d["amiLaunchIndex"] = n
        described.append(d)
    return _reservation(call, reservation, described)


def _launch(call: Call, e: Entity) -> Entity:
    """Start a compute just made (OCCI makes them inactive; EC2 launches them)."""
    if e.attributes.get("occi.compute.state") != "inactive":
        return e  # in error: EC2 shows it terminated with the reason
    result = call.service.act(call.ctx, infra.COMPUTE, e.id or "", "start", ActionInvocation(None))
    return result if isinstance(result, Entity) else e


def _create(call: Call, entities: list[Entity]) -> list[Entity]:
    try:
        return call.service.create(call.ctx, infra.COMPUTE.location or "", entities)
    except errors.OcciError as exc:
        if exc.location and exc.status >= 500 and not isinstance(exc, errors.NoCapacity):
            # made, in state error: EC2 shows it (terminated, Server.InternalError)
            got, _ = _computes(call)
            made = {e.id for e in entities}
            return [e for e in got if e.id in made]
        raise


# ---------------------------------------------------------------------------------- changing
def _targets(call: Call) -> tuple[list[tuple[str, Seen]], Registry]:
    """(instance id, what is seen of it) for each InstanceId.N, in order; NotFound for any
    the project does not have."""
    wanted = wanted_ids(call)
    if not wanted:
        raise Ec2Error("MissingParameter", "The request must contain the parameter InstanceId")
    seen = {s.description["instanceId"]: s for s in listing(call)}
    missing = [w for w in wanted if w not in seen]
    if missing:
        raise _not_found(missing)
    reg = call.service.registry(project=call.ctx.project)
    return [(w, seen[w]) for w in dict.fromkeys(wanted)], reg


def instance_entity(call: Call, iid: str) -> str:
    """The entity id of a live instance of the project; EC2's NotFound otherwise."""
    if not ids.well_formed(ids.INSTANCE, iid):
        raise Ec2Error("InvalidInstanceID.Malformed", f'Invalid id: "{iid[:80]}"')
    found = _entity_ids(call).get(iid)
    if found is None:
        raise _not_found([iid])
    return found


def _entity_ids(call: Call) -> dict[str, str]:
    computes, _ = _computes(call)
    return {ids.ec2_id(ids.INSTANCE, e.id or ""): e.id or "" for e in computes}


def _state_change(iid: str, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {"instanceId": iid, "currentState": after, "previousState": before}


def _act(
    call: Call, term: str, skip_when: str | None, params: dict[str, Any]
) -> list[dict[str, Any]]:
    targets, reg = _targets(call)
    entities = _entity_ids(call)
    out = []
    for iid, s in targets:
        before = s.description["instanceState"]
        eid = entities.get(iid)
        if eid is None or before["name"] == "terminated":
            raise Ec2Error("IncorrectInstanceState", f"The instance '{iid}' is terminated")
        if before["name"] == skip_when:
            out.append(_state_change(iid, before, before))
            continue
        result = call.service.act(
            call.ctx, infra.COMPUTE, eid, term, ActionInvocation(None, params)
        )
        state = ids.instance_state(result.attributes) if isinstance(result, Entity) else None
        after = {"code": state.code, "name": state.name} if state else before
        out.append(_state_change(iid, before, after))
    return out


def start_instances(call: Call) -> dict[str, Any]:
    return {"instancesSet": _act(call, "start", "running", {})}


def stop_instances(call: Call) -> dict[str, Any]:
    method = "poweroff" if call.params.flag("Force") else "graceful"
    return {"instancesSet": _act(call, "stop", "stopped", {"method": method})}


def reboot_instances(call: Call) -> dict[str, Any]:
    _act(call, "restart", None, {})
    return {}  # EC2's model: only the request id


def terminate_instances(call: Call) -> dict[str, Any]:
    targets, _ = _targets(call)
    entities = _entity_ids(call)
    out = []
    for iid, s in targets:
        before = s.description["instanceState"]
        eid = entities.get(iid)
        if eid is None:  # a tombstone: terminated already
            out.append(_state_change(iid, before, before))
            continue
        try:
            call.service.delete(call.ctx, infra.COMPUTE, eid)
        except errors.NotFound:
            pass  # gone meanwhile: terminated all the same
        snapshot = {k: v for k, v in s.description.items() if k != "tagSet"}
        with call.records() as rec:
            rec.terminate(
                eid, snapshot, InstanceRecord(eid, s.reservation, None, datetime.now(UTC))
            )
        still = _entity_ids(call).get(iid)
        after = ids.SHUTTING_DOWN if still else ids.TERMINATED
        out.append(_state_change(iid, before, {"code": after.code, "name": after.name}))
    return {"instancesSet": out}


def describe_instance_status(call: Call) -> dict[str, Any]:
    """The running instances' (every instance's with IncludeAllInstances) state and checks:
    the platform's own checks are the state, so a running instance is ok."""
    wanted = wanted_ids(call)
    seen = listing(call)
    if wanted:
        have = {s.description["instanceId"] for s in seen}
        missing = [w for w in wanted if w not in have]
        if missing:
            raise _not_found(missing)
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
    items = common.apply_filters(
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
    chunk, token = common.page(call, items)
    return {"instanceStatusSet": chunk, "nextToken": token}


ACTIONS = {
    "DescribeInstances": Action(describe_instances, "instance", "read"),
    "DescribeInstanceStatus": Action(describe_instance_status, "instance", "read"),
    "RunInstances": Action(run_instances, "instance", "create"),
    "StartInstances": Action(start_instances, "instance", "act"),
    "StopInstances": Action(stop_instances, "instance", "act"),
    "RebootInstances": Action(reboot_instances, "instance", "act"),
    "TerminateInstances": Action(terminate_instances, "instance", "delete"),
}
