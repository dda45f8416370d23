"""What EC2 makes is OCCI's and the reverse (same project, same ids but for EC2's prefix),
another project sees nothing of it, and each front takes only its own credentials."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from occi.identity.store import IdentityTx
from occi.store.sql import SqlStore
from tests.ec2.conftest import Ec2Server, signed

JSON = "application/json"


@functools.cache
def token_of(url: str, user: str) -> str:
    store = SqlStore(url)
    try:
        with store.begin() as tx:
            return IdentityTx(tx).create_token(user)[1]
    finally:
        store.close()


def occi_get(server: Ec2Server, path: str, user: str = "alice") -> dict[str, Any]:
    r = requests.get(
        server.live.url + path,
        headers={"X-Auth-Token": token_of(server.url, user), "Accept": JSON},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_an_ec2_instance_is_an_occi_compute_and_the_reverse(
    ec2: Any, ec2_server: Ec2Server
) -> None:
    made = ec2.run_instances(ImageId="cirros", InstanceType="small", MinCount=1, MaxCount=1)
    iid = made["Instances"][0]["InstanceId"]
    entity_id = str(uuid.UUID(hex=iid[2:]))
    entity = occi_get(ec2_server, "/compute/" + entity_id)
    assert entity["id"] == entity_id
    assert entity["attributes"]["occi.compute.state"] == "active"
    assert any(m.endswith("#small") for m in entity["mixins"])
    assert any(m.endswith("#cirros") for m in entity["mixins"])
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": "renamed"}])
    entity = occi_get(ec2_server, "/compute/" + entity_id)
    assert entity["attributes"]["occi.core.title"] == "renamed"  # the Name tag is the title

    # made through OCCI (JSON), seen through EC2
    token = token_of(ec2_server.url, "alice")
    own = str(uuid.uuid4())
    body = {
        "id": own,
        "kind": "http://schemas.ogf.org/occi/infrastructure#compute",
        "mixins": ["http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#large"],
        "attributes": {"occi.core.title": "from-occi"},
    }
    r = requests.post(
        ec2_server.live.url + "/compute/",
        json=body,
        headers={"X-Auth-Token": token, "Accept": JSON, "Content-Type": JSON},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    seen = ec2.describe_instances(InstanceIds=["i-" + uuid.UUID(own).hex])
    (instance,) = seen["Reservations"][0]["Instances"]
    assert instance["InstanceType"] == "large"
    assert instance["State"]["Name"] == "stopped"  # OCCI makes computes inactive
    ec2.start_instances(InstanceIds=[instance["InstanceId"]])
    state = occi_get(ec2_server, "/compute/" + own)["attributes"]["occi.compute.state"]
    assert state == "active"
    ec2.terminate_instances(InstanceIds=[iid, instance["InstanceId"]])
    r = requests.get(
        ec2_server.live.url + "/compute/" + own,
        headers={"X-Auth-Token": token, "Accept": JSON},
        timeout=30,
    )
    assert r.status_code == 404


def test_another_project_sees_nothing(ec2: Any, ec2_client: Any) -> None:
    made = ec2.run_instances(ImageId="cirros", MinCount=1, MaxCount=1)
    iid = made["Instances"][0]["InstanceId"]
    other = ec2_client("other")
    listed = [
        i["InstanceId"] for r in other.describe_instances()["Reservations"] for i in r["Instances"]
    ]
    assert iid not in listed
    for call in (other.describe_instances, other.terminate_instances, other.stop_instances):
        with pytest.raises(ClientError) as err:
            call(InstanceIds=[iid])
        assert err.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    ec2.terminate_instances(InstanceIds=[iid])


def test_each_front_takes_only_its_own_credentials(ec2_server: Ec2Server) -> None:
    # an EC2 signature on an OCCI path is no credential there
    r = signed(ec2_server, {"Action": "DescribeRegions", "Version": "2016-11-15"})
    assert r.status_code == 200
    sig = r.request.headers["Authorization"]
    occi = requests.get(
        ec2_server.live.url + "/compute/",
        headers={"Authorization": sig, "X-Amz-Date": r.request.headers["X-Amz-Date"]},
        timeout=30,
    )
    assert occi.status_code == 401
    # an OCCI token on /ec2/ is no signature
    r = requests.post(
        ec2_server.endpoint,
        data={"Action": "DescribeRegions", "Version": "2016-11-15"},
        headers={"X-Auth-Token": token_of(ec2_server.url, "alice")},
        timeout=30,
    )
    assert r.status_code == 401
    assert b"<Code>AuthFailure</Code>" in r.content


def test_an_occi_id_that_is_no_uuid_gets_a_stable_hashed_instance_id(
    ec2: Any, ec2_server: Ec2Server
) -> None:
    import hashlib

    own = f"vm-{uuid.uuid4().hex[:8]}"
    body = {
        "kind": "http://schemas.ogf.org/occi/infrastructure#compute",
        "mixins": ["http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#small"],
    }
    r = requests.put(
        f"{ec2_server.live.url}/compute/{own}",
        json=body,
        headers={"X-Auth-Token": token_of(ec2_server.url, "alice"), "Content-Type": JSON},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    iid = "i-" + hashlib.sha256(own.encode()).hexdigest()[:17]  # as the README says
    ec2.start_instances(InstanceIds=[iid])
    seen = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert seen["State"]["Name"] == "running"
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(
        InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )


def test_an_interface_made_through_occi_is_the_private_address(
    ec2: Any, ec2_server: Ec2Server
) -> None:
    iid = ec2.run_instances(ImageId="cirros", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    compute = "/compute/" + str(uuid.UUID(hex=iid[2:]))
    headers = {
        "X-Auth-Token": token_of(ec2_server.url, "alice"),
        "Content-Type": JSON,
        "Accept": JSON,
    }
    infra = "http://schemas.ogf.org/occi/infrastructure#"
    net = requests.post(
        ec2_server.live.url + "/network/",
        json={"kind": infra + "network", "attributes": {"occi.core.title": "lan"}},
        headers=headers,
        timeout=30,
    )
    assert net.status_code == 201, net.text
    network = "/network/" + net.json()["id"]
    link = {
        "kind": infra + "networkinterface",
        "mixins": [
            "http://schemas.ogf.org/occi/infrastructure/networkinterface#ipnetworkinterface"
        ],
        "source": {"location": compute},
        "target": {"location": network},
        "attributes": {"occi.networkinterface.address": "10.1.2.3"},
    }
    r = requests.post(
        ec2_server.live.url + "/link/networkinterface/", json=link, headers=headers, timeout=30
    )
    assert r.status_code == 201, r.text
    seen = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert seen["PrivateIpAddress"] == "10.1.2.3"
    ec2.terminate_instances(InstanceIds=[iid])
