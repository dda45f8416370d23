"""Key pairs, images, volumes and tags through boto3, and what EC2 answers when a request asks
for too much (quotas, capacity) or makes no sense (bad parameters: never a 500)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.ec2.conftest import Ec2Server, signed
from tests.ec2.model_check import check_answer
from tests.ec2.test_auth import error_of

FAST = {"Delay": 1, "MaxAttempts": 30}


def test_key_pairs(ec2: Any, ec2_server: Ec2Server) -> None:
    name = f"kp-{uuid.uuid4().hex[:6]}"
    made = ec2.create_key_pair(KeyName=name)
    assert made["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    ed = ec2.create_key_pair(KeyName=name + "-ed", KeyType="ed25519")
    assert "OPENSSH PRIVATE KEY" in ed["KeyMaterial"]
    with pytest.raises(ClientError) as err:
        ec2.create_key_pair(KeyName=name)
    assert error_of(err) == ("InvalidKeyPair.Duplicate", 400)
    listed = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    assert [k["KeyName"] for k in listed] == [name]
    assert listed[0]["KeyFingerprint"] == made["KeyFingerprint"]
    assert listed[0]["PublicKey"].startswith("ssh-rsa ")
    by_filter = ec2.describe_key_pairs(Filters=[{"Name": "key-type", "Values": ["ed25519"]}])
    assert name + "-ed" in [k["KeyName"] for k in by_filter["KeyPairs"]]
    with pytest.raises(ClientError) as err:
        ec2.import_key_pair(KeyName=name + "-bad", PublicKeyMaterial=b"ssh-rsa not-a-key")
    assert error_of(err) == ("InvalidParameterValue", 400)
    # a hand-made request may send the OpenSSH line as it is (the SDKs send it in Base64)
    line = listed[0]["PublicKey"]
    r = signed(
        ec2_server,
        {"Action": "ImportKeyPair", "KeyName": name + "-raw", "PublicKeyMaterial": line},
    )
    assert r.status_code == 200, r.text
    raw = ec2.describe_key_pairs(KeyNames=[name + "-raw"])["KeyPairs"][0]
    assert raw["KeyFingerprint"] == made["KeyFingerprint"]
    ec2.delete_key_pair(KeyName=name)
    ec2.delete_key_pair(KeyName=name)  # gone already: still true, as EC2
    with pytest.raises(ClientError) as err:
        ec2.describe_key_pairs(KeyNames=[name])
    assert error_of(err) == ("InvalidKeyPair.NotFound", 400)
    with pytest.raises(ClientError) as err:
        ec2.run_instances(ImageId="cirros", MinCount=1, MaxCount=1, KeyName=name)
    assert error_of(err) == ("InvalidKeyPair.NotFound", 400)


def test_images_saved_from_an_instance(ec2: Any) -> None:
    provided = ec2.describe_images()["Images"]
    assert {"cirros", "debian12"} <= {i["Name"] for i in provided}
    assert all(i["State"] == "available" and i["Public"] for i in provided)
    iid = ec2.run_instances(ImageId="debian12", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    name = f"img-{uuid.uuid4().hex[:6]}"
    image_id = ec2.create_image(InstanceId=iid, Name=name)["ImageId"]
    assert image_id.startswith("ami-")
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig=FAST)
    mine = ec2.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in mine] == [image_id]
    assert mine[0]["Name"] == name and not mine[0]["Public"]
    found = ec2.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"]
    assert [i["ImageId"] for i in found] == [image_id]
    # it launches
    again = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]
    assert again["ImageId"] == image_id
    ec2.terminate_instances(InstanceIds=[iid, again["InstanceId"]])
    provider = next(i["ImageId"] for i in provided if i["Name"] == "cirros")
    with pytest.raises(ClientError) as err:
        ec2.deregister_image(ImageId=provider)
    assert error_of(err) == ("UnauthorizedOperation", 403)
    ec2.deregister_image(ImageId=image_id)
    with pytest.raises(ClientError) as err:
        ec2.describe_images(ImageIds=[image_id])
    assert error_of(err) == ("InvalidAMIID.NotFound", 400)


def test_volumes_attach_and_detach(ec2: Any) -> None:
    zone = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    vol = ec2.create_volume(
        Size=2,
        AvailabilityZone=zone,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}],
    )
    vid = vol["VolumeId"]
    assert vid.startswith("vol-") and vol["Size"] == 2
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=FAST)
    iid = ec2.run_instances(ImageId="cirros", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    att = ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    assert att["InstanceId"] == iid and att["Device"] == "/dev/sdf"
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vid], WaiterConfig=FAST)
    (seen,) = ec2.describe_volumes(VolumeIds=[vid])["Volumes"]
    assert seen["State"] == "in-use"
    assert seen["Attachments"][0]["InstanceId"] == iid
    assert {"Key": "Name", "Value": "data"} in seen["Tags"]
    by_instance = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}]
    )["Volumes"]
    assert [v["VolumeId"] for v in by_instance] == [vid]
    mapped = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert mapped["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] == vid
    with pytest.raises(ClientError) as err:
        ec2.delete_volume(VolumeId=vid)
    assert error_of(err) == ("VolumeInUse", 400)
    detached = ec2.detach_volume(VolumeId=vid)
    assert detached["State"] in ("detaching", "detached")
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=FAST)
    with pytest.raises(ClientError) as err:
        ec2.detach_volume(VolumeId=vid)
    assert error_of(err) == ("IncorrectState", 400)
    ec2.delete_volume(VolumeId=vid)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[vid], WaiterConfig=FAST)
    with pytest.raises(ClientError) as err:
        ec2.describe_volumes(VolumeIds=[vid])
    assert error_of(err) == ("InvalidVolume.NotFound", 400)
    ec2.terminate_instances(InstanceIds=[iid])


def test_tags(ec2: Any) -> None:
    iid = ec2.run_instances(ImageId="cirros", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    vid = ec2.create_volume(Size=1, AvailabilityZone="default")["VolumeId"]
    mark = uuid.uuid4().hex[:8]
    ec2.create_tags(
        Resources=[iid, vid], Tags=[{"Key": "team", "Value": mark}, {"Key": "tier", "Value": "db"}]
    )
    tags = ec2.describe_tags(Filters=[{"Name": "value", "Values": [mark]}])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"]) for t in tags) == sorted(
        [(iid, "instance"), (vid, "volume")]
    )
    found = ec2.describe_instances(Filters=[{"Name": "tag:team", "Values": [mark]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [iid]
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "team"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])["Tags"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("tier", "db")]
    with pytest.raises(ClientError) as err:
        ec2.create_tags(Resources=["i-" + "0" * 32], Tags=[{"Key": "k", "Value": "v"}])
    assert error_of(err) == ("InvalidID", 400)
    # 50 tags at most on a resource: past it, none of the request's is kept
    ec2.create_tags(Resources=[vid], Tags=[{"Key": f"k{n}", "Value": "v"} for n in range(40)])
    with pytest.raises(ClientError) as err:
        ec2.create_tags(Resources=[vid], Tags=[{"Key": f"x{n}", "Value": "v"} for n in range(20)])
    assert error_of(err) == ("TagLimitExceeded", 400)
    kept = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vid]}])["Tags"]
    assert len(kept) == 42 and not any(t["Key"].startswith("x") for t in kept)
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.delete_volume(VolumeId=vid)


def test_quotas_and_capacity(ec2_client: Any, ec2: Any) -> None:
    tight = ec2_client("tight")
    first = tight.run_instances(ImageId="cirros", MinCount=1, MaxCount=1)["Instances"][0]
    with pytest.raises(ClientError) as err:
        tight.run_instances(ImageId="cirros", MinCount=1, MaxCount=1)
    assert error_of(err) == ("InstanceLimitExceeded", 400)
    with pytest.raises(ClientError) as err:
        tight.create_volume(Size=1, AvailabilityZone="default")
    assert error_of(err) == ("VolumeLimitExceeded", 400)
    tight.terminate_instances(InstanceIds=[first["InstanceId"]])
    # no host has room for 32 GB (tests/ec2/conftest.py)
    with pytest.raises(ClientError) as err:
        ec2.run_instances(ImageId="cirros", InstanceType="xlarge", MinCount=1, MaxCount=1)
    assert error_of(err) == ("InsufficientInstanceCapacity", 500)


def test_bad_parameters_are_4xx(ec2_client: Any, ec2_server: Ec2Server) -> None:
    loose = ec2_client(parameter_validation=False)  # what the SDK would refuse, sent
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (
            loose.run_instances,
            {"ImageId": "ami-00000000000000000", "MinCount": 1, "MaxCount": 1},
            "InvalidAMIID.NotFound",
        ),
        (
            loose.run_instances,
            {"ImageId": "cirros", "MinCount": 1, "MaxCount": 1, "InstanceType": "t9.huge"},
            "InvalidParameterValue",
        ),
        (
            loose.run_instances,
            {"ImageId": "cirros", "MinCount": 3, "MaxCount": 1},
            "InvalidParameterValue",
        ),
        (
            loose.run_instances,
            {"ImageId": "cirros", "MinCount": 1, "MaxCount": 100000},
            "InvalidParameterValue",
        ),
        (
            loose.run_instances,
            {
                "ImageId": "cirros",
                "MinCount": 1,
                "MaxCount": 1,
                "Placement": {"AvailabilityZone": "mars"},
            },
            "InvalidParameterValue",
        ),
        (loose.run_instances, {"MinCount": 1, "MaxCount": 1}, "MissingParameter"),
        (loose.run_instances, {"ImageId": "cirros"}, "MissingParameter"),
        (loose.create_volume, {"AvailabilityZone": "default"}, "MissingParameter"),
        (loose.create_volume, {"Size": -1}, "InvalidParameterValue"),
        (loose.describe_instances, {"MaxResults": 2}, "InvalidParameterValue"),
        (
            loose.describe_instances,
            {"InstanceIds": ["i-" + "0" * 32], "MaxResults": 5},
            "InvalidParameterCombination",
        ),
        (
            loose.attach_volume,
            {"VolumeId": "vol-x", "InstanceId": "i-x", "Device": "/dev/sdf"},
            "InvalidVolumeID.Malformed",
        ),
    ]
    for call, kw, code in cases:
        with pytest.raises(ClientError) as err:
            call(**kw)
        assert error_of(err) == (code, 400), (call, kw)
    for params, code in (
        ({"Action": "LaunchRockets", "Version": "2016-11-15"}, "InvalidAction"),
        ({"Version": "2016-11-15"}, "MissingParameter"),
        ({"Action": "DescribeInstances", "InstanceId.0": "i-x"}, "InvalidParameterValue"),
        ({"Action": "DescribeInstances", "Filter.1.Value.1": "x"}, "MissingParameter"),
        ({"Action": "DescribeInstances", "DryRun": "maybe"}, "InvalidParameterValue"),
        ({"Action": "DescribeInstances", "x" * 300: "y"}, "InvalidParameterValue"),
        (
            {"Action": "RunInstances", "ImageId": "cirros", "MinCount": "1", "MaxCount": "9" * 40},
            "InvalidParameterValue",
        ),
    ):
        r = signed(ec2_server, params)
        assert r.status_code == 400, (params, r.text)
        check_answer("DescribeRegions", r.status_code, r.content)
        assert f"<Code>{code}</Code>".encode() in r.content, (params, r.text)
