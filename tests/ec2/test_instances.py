"""Instances through boto3 against the real server: the lifecycle with botocore's waiters,
DescribeInstances' filters and paginator, and the tombstone of a terminated instance."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

FAST = {"Delay": 1, "MaxAttempts": 30}


def instances(ec2: Any, **kw: Any) -> list[dict[str, Any]]:
    return [i for r in ec2.describe_instances(**kw)["Reservations"] for i in r["Instances"]]


def tag(key: str, value: str) -> list[dict[str, Any]]:
    return [{"ResourceType": "instance", "Tags": [{"Key": key, "Value": value}]}]


def test_lifecycle_with_waiters(ec2: Any) -> None:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    openssh = public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    name = f"life-{uuid.uuid4().hex[:6]}"
    imported = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=openssh)
    assert imported["KeyName"] == name and imported["KeyPairId"].startswith("key-")
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    image = next(i for i in ec2.describe_images()["Images"] if i["Name"] == "cirros")
    run = ec2.run_instances(
        ImageId=image["ImageId"],
        InstanceType="medium",
        MinCount=2,
        MaxCount=2,
        KeyName=name,
        UserData="#cloud-config\nhostname: web\n",
        Placement={"AvailabilityZone": zone},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )
    ids = [i["InstanceId"] for i in run["Instances"]]
    assert len(ids) == 2 and all(i.startswith("i-") for i in ids)
    assert run["ReservationId"].startswith("r-")
    assert [i["AmiLaunchIndex"] for i in run["Instances"]] == [0, 1]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=FAST)
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=ids, WaiterConfig=FAST)
    status = ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    assert {s["InstanceStatus"]["Status"] for s in status} == {"ok"}
    seen = instances(ec2, InstanceIds=ids)
    assert {i["InstanceId"] for i in seen} == set(ids)
    for i in seen:
        assert i["State"] == {"Code": 16, "Name": "running"}
        assert i["KeyName"] == name
        assert i["ImageId"] == image["ImageId"]
        assert i["InstanceType"] == "medium"
        assert i["CpuOptions"]["CoreCount"] == 2
        assert i["Placement"]["AvailabilityZone"] == zone
        assert {"Key": "Name", "Value": name} in i["Tags"]

    stopped = ec2.stop_instances(InstanceIds=ids[:1])["StoppingInstances"][0]
    assert stopped["PreviousState"]["Name"] == "running"
    assert stopped["CurrentState"]["Name"] in ("stopping", "stopped")
    ec2.get_waiter("instance_stopped").wait(InstanceIds=ids[:1], WaiterConfig=FAST)
    assert instances(ec2, InstanceIds=ids[:1])[0]["State"] == {"Code": 80, "Name": "stopped"}
    # a stopped instance has no status unless every one is asked for
    assert ec2.describe_instance_status(InstanceIds=ids[:1])["InstanceStatuses"] == []
    (every,) = ec2.describe_instance_status(InstanceIds=ids[:1], IncludeAllInstances=True)[
        "InstanceStatuses"
    ]
    assert every["InstanceState"]["Name"] == "stopped"
    # stopping what is stopped is no error (EC2 answers the state it is in)
    again = ec2.stop_instances(InstanceIds=ids[:1])["StoppingInstances"][0]
    assert again["CurrentState"]["Name"] == "stopped"
    # rebooting a stopped instance is
    with pytest.raises(ClientError) as err:
        ec2.reboot_instances(InstanceIds=ids[:1])
    assert err.value.response["Error"]["Code"] == "IncorrectInstanceState"

    started = ec2.start_instances(InstanceIds=ids[:1])["StartingInstances"][0]
    assert started["PreviousState"]["Name"] == "stopped"
    ec2.get_waiter("instance_running").wait(InstanceIds=ids[:1], WaiterConfig=FAST)
    ec2.reboot_instances(InstanceIds=ids)
    assert {i["State"]["Name"] for i in instances(ec2, InstanceIds=ids)} == {"running"}

    gone = ec2.terminate_instances(InstanceIds=ids)["TerminatingInstances"]
    assert {g["PreviousState"]["Name"] for g in gone} == {"running"}
    assert {g["CurrentState"]["Name"] for g in gone} <= {"shutting-down", "terminated"}
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig=FAST)
    # the tombstone: still listed (an hour), terminated, with what it was
    tomb = instances(ec2, InstanceIds=ids)
    assert [(i["State"]["Code"], i["State"]["Name"]) for i in tomb] == [(48, "terminated")] * 2
    assert tomb[0]["ImageId"] == image["ImageId"] and tomb[0]["KeyName"] == name
    # terminating again is no error; starting a terminated instance is
    again = ec2.terminate_instances(InstanceIds=ids[:1])["TerminatingInstances"][0]
    assert again["CurrentState"]["Name"] == "terminated"
    with pytest.raises(ClientError) as err:
        ec2.start_instances(InstanceIds=ids[:1])
    assert err.value.response["Error"]["Code"] == "IncorrectInstanceState"


def test_filters_and_paginator(ec2: Any) -> None:
    run = f"run-{uuid.uuid4().hex[:8]}"
    made = ec2.run_instances(
        ImageId="cirros",
        InstanceType="small",
        MinCount=6,
        MaxCount=6,
        TagSpecifications=tag("run", run),
    )
    ids = sorted(i["InstanceId"] for i in made["Instances"])
    odd = ec2.run_instances(
        ImageId="debian12",
        InstanceType="large",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=tag("run", run),
    )["Instances"][0]
    ec2.stop_instances(InstanceIds=[ids[0]])
    mine = {"Name": "tag:run", "Values": [run]}

    def found(*filters: dict[str, Any]) -> list[str]:
        return sorted(i["InstanceId"] for i in instances(ec2, Filters=[mine, *filters]))

    assert found() == sorted([*ids, odd["InstanceId"]])
    assert found({"Name": "instance-state-name", "Values": ["stopped"]}) == [ids[0]]
    assert found({"Name": "instance-state-code", "Values": ["16"]}) == sorted(
        [*ids[1:], odd["InstanceId"]]
    )
    assert found({"Name": "instance-type", "Values": ["large"]}) == [odd["InstanceId"]]
    assert found({"Name": "image-id", "Values": [odd["ImageId"]]}) == [odd["InstanceId"]]
    assert found({"Name": "instance-id", "Values": ids[:2]}) == ids[:2]
    zone = odd["Placement"]["AvailabilityZone"]
    assert len(found({"Name": "availability-zone", "Values": [zone]})) == 7
    assert found({"Name": "availability-zone", "Values": ["nowhere"]}) == []
    assert found({"Name": "tag:run", "Values": ["other"]}) == []
    assert len(found({"Name": "tag-key", "Values": ["run"]})) == 7
    # wildcards
    assert len(found({"Name": "tag:run", "Values": [run[:6] + "*"]})) == 7

    pages = list(
        ec2.get_paginator("describe_instances").paginate(
            Filters=[mine], PaginationConfig={"PageSize": 5}
        )
    )
    assert len(pages) == 2
    listed = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
    assert sorted(listed) == sorted([*ids, odd["InstanceId"]])  # each once
    assert "NextToken" in pages[0] and "NextToken" not in pages[1]
    with pytest.raises(ClientError) as err:
        ec2.describe_instances(Filters=[mine], MaxResults=5, NextToken="bm90IGEgdG9rZW4")
    assert err.value.response["Error"]["Code"] == "InvalidPaginationToken"
    # a token is bound to the request that made it
    token = pages[0]["NextToken"]
    with pytest.raises(ClientError) as err:
        ec2.describe_instances(MaxResults=5, NextToken=token)
    assert err.value.response["Error"]["Code"] == "InvalidPaginationToken"
    with pytest.raises(ClientError) as err:
        ec2.describe_instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    ec2.terminate_instances(InstanceIds=[*ids, odd["InstanceId"]])


def test_unknown_and_malformed_instance_ids(ec2: Any) -> None:
    for bad, code in (
        ("i-zzz", "InvalidInstanceID.Malformed"),
        ("vol-" + "0" * 32, "InvalidInstanceID.Malformed"),
        ("i-" + "0" * 32, "InvalidInstanceID.NotFound"),
        ("i-" + "a" * 17, "InvalidInstanceID.NotFound"),
    ):
        with pytest.raises(ClientError) as err:
            ec2.describe_instances(InstanceIds=[bad])
        assert err.value.response["Error"]["Code"] == code, bad
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as err:
        ec2.terminate_instances(InstanceIds=["i-" + "1" * 32])
    assert err.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"


def test_user_data_reaches_the_compute(ec2: Any, ec2_server: Any) -> None:
    """UserData arrives Base64-encoded (botocore encodes it) and is the compute's userdata."""
    from tests.ec2.test_visibility import occi_get

    made = ec2.run_instances(ImageId="cirros", MinCount=1, MaxCount=1, UserData="hello")
    iid = made["Instances"][0]["InstanceId"]
    entity = occi_get(ec2_server, "/compute/" + str(uuid.UUID(hex=iid[2:])))
    assert base64.b64decode(entity["attributes"]["occi.compute.userdata"]) == b"hello"
    ec2.terminate_instances(InstanceIds=[iid])


def test_boto3_resources(ec2_server: Any) -> None:
    """boto3's resource layer (what many scripts use) reads the same answers."""
    key = ec2_server.keys["member"]
    res = boto3.resource(
        "ec2",
        endpoint_url=ec2_server.endpoint,
        region_name="RegionOne",
        aws_access_key_id=key.access_key,
        aws_secret_access_key=key.secret,
    )
    mark = uuid.uuid4().hex[:8]
    (made,) = res.create_instances(
        ImageId="cirros", MinCount=1, MaxCount=1, TagSpecifications=tag("res", mark)
    )
    made.wait_until_running(WaiterConfig=FAST)
    made.reload()
    assert made.state["Name"] == "running" and made.instance_type == "small"
    found = list(res.instances.filter(Filters=[{"Name": "tag:res", "Values": [mark]}]))
    assert [i.id for i in found] == [made.id]
    volume = res.create_volume(Size=1, AvailabilityZone=made.placement["AvailabilityZone"])
    volume.attach_to_instance(InstanceId=made.id, Device="/dev/sdg")
    volume.reload()
    assert volume.state == "in-use" and volume.attachments[0]["InstanceId"] == made.id
    made.stop()
    made.wait_until_stopped(WaiterConfig=FAST)
    made.terminate()
    made.wait_until_terminated(WaiterConfig=FAST)
    volume.reload()
    assert volume.state == "available"  # the compute's links went with it
    volume.delete()
