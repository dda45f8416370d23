"""A platform slower than the requests' job_wait (the simulator's delay): RunInstances answers
pending instances that the instance_running waiter then sees running (never stopped between
the create and the start), CreateImage still answers the image's id (it waits for the save
rather than have the client send it again), Stop answers stopping and Terminate shutting-down
until the instance is terminated."""

from __future__ import annotations

import time
from typing import Any

from botocore.credentials import Credentials
from falcon import testing
from lxml import etree

from occi.api.wsgi import build
from occi.ec2 import credentials
from occi.identity.store import IdentityTx
from occi.inventory.secrets import Cipher
from occi.settings import Settings
from tests.ec2.test_fuzz import KEY, send

NS = {"e": "http://ec2.amazonaws.com/doc/2016-11-15/"}


def test_a_slow_platform(tmp_path: Any) -> None:
    mapping = {
        "database_url": f"sqlite:///{tmp_path}/slow.db",
        "auth": "basic,token",
        "secret_key": KEY,
        "job_wait": "0",
        "simulator_delay": "0.3",
    }
    app, service = build(Settings.from_mapping(mapping), upgrade=True)
    try:
        with service.store.begin() as tx:
            ident = IdentityTx(tx)
            ident.create_project("slow")
            ident.create_user("patient")
            ident.grant("patient", "slow", "member")
            key, secret = credentials.create(ident, Cipher(KEY, "tests"), "patient", "slow")
        client = testing.TestClient(app)
        creds = Credentials(key.access_key, secret)

        def call(action: str, **params: str) -> Any:
            r = send(client, creds, {"Action": action, "Version": "2016-11-15", **params})
            assert r.status_code == 200, r.text
            return etree.fromstring(r.content)

        run = call("RunInstances", ImageId="cirros", MinCount="1", MaxCount="1")
        iid = run.findtext(".//e:instanceId", namespaces=NS)
        assert run.findtext(".//e:instanceState/e:name", namespaces=NS) == "pending"
        states = []
        for _ in range(60):  # as the instance_running waiter polls
            seen = call("DescribeInstances", **{"InstanceId.1": iid})
            states.append(seen.findtext(".//e:instanceState/e:name", namespaces=NS))
            if states[-1] == "running":
                break
            time.sleep(0.25)
        assert states[-1] == "running" and set(states) <= {"pending", "running"}, states
        image = call("CreateImage", InstanceId=iid, Name="slow-save")
        image_id = image.findtext("e:imageId", namespaces=NS)
        listed = call("DescribeImages", **{"ImageId.1": image_id})
        assert listed.findtext(".//e:name", namespaces=NS) is not None
        stop = call("StopInstances", **{"InstanceId.1": iid})
        assert stop.findtext(".//e:currentState/e:name", namespaces=NS) == "stopping"
        gone = call("TerminateInstances", **{"InstanceId.1": iid})
        assert gone.findtext(".//e:currentState/e:name", namespaces=NS) == "shutting-down"
        states = []
        for _ in range(60):  # as the instance_terminated waiter polls
            seen = call("DescribeInstances", **{"InstanceId.1": iid})
            states.append(seen.findtext(".//e:instanceState/e:name", namespaces=NS))
            if states[-1] == "terminated":
                break
            time.sleep(0.25)
        assert states[-1] == "terminated" and set(states) <= {"shutting-down", "terminated"}
    finally:
        assert service.runner is not None
        service.runner.stop()
        service.store.close()
