"""EC2 instances are the project's computes: RunInstances creates and starts them (ImageId an
os_tpl, InstanceType a resource template, KeyName an ssh_key, UserData a user_data mixin,
Placement.AvailabilityZone a zone), Start/Stop/Reboot run the compute's actions and Terminate
deletes it, leaving a tombstone. How they are listed is instance_views'.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from occi import errors
from occi import infrastructure as infra
from occi.ec2 import ids
from occi.ec2.actions import catalog
from occi.ec2.actions import instance_views as views
from occi.ec2.actions.instance_views import Seen
from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Action, Call
from occi.model import ActionInvocation, Entity, Resource
from occi.service.ec2_records import InstanceRecord

#: most instances one RunInstances makes
MAX_COUNT = 100
#: the type of a RunInstances that names none
DEFAULT_TYPE = "small"


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
    image = catalog.find_image(reg, p.required("ImageId"))
    low = p.integer("MinCount", None, 1, MAX_COUNT)
    high = p.integer("MaxCount", None, 1, MAX_COUNT)
    if low is None:
        raise Ec2Error("MissingParameter", "The request must contain the parameter MinCount")
    if high is None:
        raise Ec2Error("MissingParameter", "The request must contain the parameter MaxCount")
    if low > high:
        raise invalid("MinCount must not be above MaxCount")
    type_name = p.get("InstanceType") or DEFAULT_TYPE
    types = catalog.instance_types(reg)
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
        pair = next((k for k in call.records.keypairs(call.ctx) if k.name == key_name), None)
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
        if zone not in catalog.zones(call, reg):
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
    records = call.records.record_instances(
        call.ctx,
        [InstanceRecord(e.id or "", reservation, key_name or None, now) for e in created],
        [ids.ec2_id(ids.INSTANCE, e.id or "") for e in created],
        tags,
    )
    described = []
    queued = call.service.queued_work(call.ctx, created)
    for n, e in enumerate(created):
        eid = e.id or ""
        d = views.describe(call, e, reg, records.get(eid), dict(tags), (), queued.get(eid, []))
        d["amiLaunchIndex"] = n
        described.append(d)
    return views.reservation(call, reservation, described)


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
            got, _ = views.project_computes(call)
            made = {e.id for e in entities}
            return [e for e in got if e.id in made]
        raise


# ---------------------------------------------------------------------------------- changing
def _targets(call: Call) -> list[tuple[str, Seen]]:
    """(instance id, what is seen of it) for each InstanceId.N, in order; NotFound for any
    the project does not have."""
    wanted = views.wanted_ids(call)
    if not wanted:
        raise Ec2Error("MissingParameter", "The request must contain the parameter InstanceId")
    seen = {s.description["instanceId"]: s for s in views.listing(call)}
    missing = [w for w in wanted if w not in seen]
    if missing:
        raise views.not_found(missing)
    return [(w, seen[w]) for w in dict.fromkeys(wanted)]


def instance_entity(call: Call, iid: str) -> str:
    """The entity id of a live instance of the project; EC2's NotFound otherwise."""
    if not ids.well_formed(ids.INSTANCE, iid):
        raise Ec2Error("InvalidInstanceID.Malformed", f'Invalid id: "{iid[:80]}"')
    found = _entity_ids(call).get(iid)
    if found is None:
        raise views.not_found([iid])
    return found


def _entity_ids(call: Call) -> dict[str, str]:
    computes, _ = views.project_computes(call)
    return {ids.ec2_id(ids.INSTANCE, e.id or ""): e.id or "" for e in computes}


def _state_change(iid: str, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {"instanceId": iid, "currentState": after, "previousState": before}


def _act(
    call: Call, term: str, skip_when: str | None, params: dict[str, Any]
) -> list[dict[str, Any]]:
    targets = _targets(call)
    out = []
    for iid, s in targets:
        before = s.description["instanceState"]
        eid = s.entity_id
        if eid is None or before["name"] == "terminated":
            raise Ec2Error("IncorrectInstanceState", f"The instance '{iid}' is terminated")
        if before["name"] == skip_when:
            out.append(_state_change(iid, before, before))
            continue
        result = call.service.act(
            call.ctx, infra.COMPUTE, eid, term, ActionInvocation(None, params)
        )
        state = None
        if isinstance(result, Entity):
            queued = call.service.queued_work(call.ctx, [result]).get(eid, [])
            state = ids.instance_state(result.attributes, queued)
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
    targets = _targets(call)
    deleted: dict[str, str] = {}  # instance id -> entity id
    for iid, s in targets:
        eid = s.entity_id
        if eid is None:  # a tombstone: terminated already
            continue
        try:
            call.service.delete(call.ctx, infra.COMPUTE, eid)
        except errors.NotFound:
            pass  # gone meanwhile: terminated all the same
        snapshot = {k: v for k, v in s.description.items() if k != "tagSet"}
        call.records.terminate_instance(
            call.ctx, eid, snapshot, InstanceRecord(eid, s.reservation, None, datetime.now(UTC))
        )
        deleted[iid] = eid
    left = _entity_ids(call) if deleted else {}
    out = []
    for iid, s in targets:
        before = s.description["instanceState"]
        if iid not in deleted:
            out.append(_state_change(iid, before, before))
            continue
        after = ids.SHUTTING_DOWN if iid in left else ids.TERMINATED
        out.append(_state_change(iid, before, {"code": after.code, "name": after.name}))
    return {"instancesSet": out}


ACTIONS = {
    "DescribeInstances": Action(views.describe_instances, "instance", "read"),
    "DescribeInstanceStatus": Action(views.describe_instance_status, "instance", "read"),
    "RunInstances": Action(run_instances, "instance", "create"),
    "StartInstances": Action(start_instances, "instance", "act"),
    "StopInstances": Action(stop_instances, "instance", "act"),
    "RebootInstances": Action(reboot_instances, "instance", "act"),
    "TerminateInstances": Action(terminate_instances, "instance", "delete"),
}
