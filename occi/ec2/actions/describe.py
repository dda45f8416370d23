"""EC2's descriptions of the cloud itself: DescribeRegions (the one region, a setting),
DescribeAvailabilityZones (the inventory's zones), DescribeInstanceTypes (the resource
templates) and DescribeSecurityGroups (one `default` group; the server has no firewall rules).
"""

from __future__ import annotations

from typing import Any

from occi.ec2.actions import lists
from occi.ec2.actions.catalog import instance_types, registry, zones
from occi.ec2.actions.lists import apply_filters
from occi.ec2.errors import Ec2Error, invalid
from occi.ec2.front import Action, Call

DEFAULT_GROUP_ID = "sg-00000000000000000"


def describe_regions(call: Call) -> dict[str, Any]:
    registry(call)  # authorizes a read
    region = call.front.region
    wanted = call.params.listed("RegionName")
    if wanted and region not in wanted:
        raise invalid(f"Invalid region: {', '.join(w[:40] for w in wanted)}; this is {region}")
    items = [
        {
            "regionName": region,
            "regionEndpoint": call.endpoint,
            "optInStatus": "opt-in-not-required",
        }
    ]
    items = apply_filters(
        items,
        call.params.filters(),
        {"region-name": lambda r: r["regionName"], "endpoint": lambda r: r["regionEndpoint"]},
    )
    return {"regionInfo": items}


def describe_availability_zones(call: Call) -> dict[str, Any]:
    reg = registry(call)
    region = call.front.region
    names = zones(call, reg)
    wanted = call.params.listed("ZoneName")
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise invalid(f"The zone '{unknown[0][:80]}' does not exist in region {region}")
    items = [
        {
            "zoneName": name,
            "zoneState": "available",
            "regionName": region,
            "zoneId": name,
            "zoneType": "availability-zone",
            "groupName": region,
            "optInStatus": "opt-in-not-required",
            "messageSet": [],
        }
        for name in names
        if not wanted or name in wanted
    ]
    items = apply_filters(
        items,
        call.params.filters(),
        {
            "zone-name": lambda z: z["zoneName"],
            "zone-id": lambda z: z["zoneId"],
            "state": lambda z: z["zoneState"],
            "region-name": lambda z: z["regionName"],
        },
    )
    return {"availabilityZoneInfo": items}


def describe_instance_types(call: Call) -> dict[str, Any]:
    reg = registry(call)
    types = instance_types(reg)
    wanted = call.params.listed("InstanceType")
    unknown = [w for w in wanted if w not in types]
    if unknown:
        raise invalid(f"The instance type '{unknown[0][:80]}' does not exist")
    items: list[dict[str, Any]] = []
    for name, mixin in sorted(types.items()):
        if wanted and name not in wanted:
            continue
        attrs = mixin.attributes
        cores = attrs.get("occi.compute.cores")
        memory = attrs.get("occi.compute.memory")
        vcpus = int(cores.default) if cores is not None and cores.default else 1
        mib = int(float(memory.default) * 1024) if memory is not None and memory.default else 1024
        items.append(
            {
                "instanceType": name,
                "currentGeneration": True,
                "supportedUsageClasses": ["on-demand"],
                "supportedRootDeviceTypes": ["ebs"],
                "supportedVirtualizationTypes": ["hvm"],
                "bareMetal": False,
                "processorInfo": {"supportedArchitectures": ["x86_64"]},
                "vCpuInfo": {
                    "defaultVCpus": vcpus,
                    "defaultCores": vcpus,
                    "defaultThreadsPerCore": 1,
                },
                "memoryInfo": {"sizeInMiB": mib},
                "instanceStorageSupported": False,
                "freeTierEligible": False,
            }
        )
    items = apply_filters(
        items,
        call.params.filters(),
        {
            "instance-type": lambda t: t["instanceType"],
            "vcpu-info.default-vcpus": lambda t: str(t["vCpuInfo"]["defaultVCpus"]),
            "memory-info.size-in-mib": lambda t: str(t["memoryInfo"]["sizeInMiB"]),
        },
    )
    chunk, token = lists.page(call, items)
    return {"instanceTypeSet": chunk, "nextToken": token}


def default_group(call: Call) -> dict[str, Any]:
    return {
        "ownerId": call.ctx.project,
        "groupId": DEFAULT_GROUP_ID,
        "groupName": "default",
        "groupDescription": "default group: this cloud does not filter traffic",
        "ipPermissions": [],
        "ipPermissionsEgress": [],
    }


def describe_security_groups(call: Call) -> dict[str, Any]:
    registry(call)
    group = default_group(call)
    names = call.params.listed("GroupName")
    group_ids = call.params.listed("GroupId")
    for name in [n for n in names if n != "default"] + [
        g for g in group_ids if g != DEFAULT_GROUP_ID
    ]:
        raise Ec2Error("InvalidGroup.NotFound", f"The security group '{name[:80]}' does not exist")
    items = apply_filters(
        [group],
        call.params.filters(),
        {
            "group-name": lambda g: g["groupName"],
            "group-id": lambda g: g["groupId"],
            "description": lambda g: g["groupDescription"],
        },
    )
    chunk, token = lists.page(call, items)
    return {"securityGroupInfo": chunk, "nextToken": token}


ACTIONS = {
    "DescribeRegions": Action(describe_regions, "", "read"),
    "DescribeAvailabilityZones": Action(describe_availability_zones, "", "read"),
    "DescribeInstanceTypes": Action(describe_instance_types, "", "read"),
    "DescribeSecurityGroups": Action(describe_security_groups, "", "read"),
}
