"""The vSphere backend's pure parts: settings (the password never shown), the state tables, the
guestinfo keys cloud-init reads, extraConfig records and MACs of VMware's manual range, and
template terms. No simulator needed."""

from __future__ import annotations

import base64
import json

import pytest

from backends.vsphere import catalog, devices, guestinfo, states
from backends.vsphere.config import ConfigError, VsphereConfig
from backends.vsphere.core import instance_uuid


def test_settings_take_credentials_out_of_the_url_and_never_show_the_password():
    c = VsphereConfig.from_settings(
        {"vsphere_url": "https://admin:s3cret@vc.example.org:8443/sdk", "vsphere_insecure": "1"}
    )
    assert (c.url, c.user, c.password) == ("https://vc.example.org:8443/sdk", "admin", "s3cret")
    assert c.address == ("vc.example.org", 8443, "/sdk")
    assert c.insecure and "s3cret" not in repr(c)
    bare = VsphereConfig.from_settings(
        {"vsphere_url": "vc.example.org", "vsphere_user": "u", "vsphere_password": "p"}
    )
    assert bare.url == "https://vc.example.org/sdk" and not bare.insecure
    for bad in (
        {"vsphere_url": "http://vc/sdk", "vsphere_user": "u", "vsphere_password": "hunter2pw"},
        {"vsphere_url": "https://vc/sdk", "vsphere_user": "u"},
        {"vsphere_url": "https://vc/sdk", "vsphere_user": "u", "vsphere_password": "hunter2pw",
         "vsphere_task_wait": "soon"},
    ):  # fmt: skip
        with pytest.raises(ConfigError) as exc:
            VsphereConfig.from_settings(bad)
        assert "hunter2pw" not in str(exc.value)  # the password is not echoed


def test_power_states_map_to_occi_states_with_an_unknown_default():
    assert states.describe("poweredOn") == ("active", "running")
    assert states.describe("poweredOff") == ("inactive", "inactive")
    assert states.describe("suspended")[0] == "suspended"
    assert states.describe("somethingNew") == ("error", "unknown power state 'somethingNew'")
    assert states.describe("poweredOn", "orphaned")[0] == "error"
    assert states.describe("poweredOn", "weird") == ("error", "connection state weird")


def test_a_guest_shutdown_reads_stopping_then_stopped_or_overdue():
    pending = {"op": "stop", "method": "graceful", "since": 1000.0}
    assert states.with_pending("poweredOn", "connected", pending, 1010.0, 120) == (
        "active",
        "stopping (graceful shutdown requested)",
        False,
    )
    state, message, overdue = states.with_pending("poweredOn", "connected", pending, 1200.0, 120)
    assert (state, overdue) == ("active", True) and "overdue" in message
    assert states.with_pending("poweredOff", "connected", pending, 1200.0, 120) == (
        "inactive",
        "stopped by a graceful guest shutdown",
        False,
    )
    assert states.with_pending("poweredOff", "connected", None, 0, 120)[1] == "inactive"


def test_guestinfo_carries_user_data_and_keys_for_cloud_init():
    assert guestinfo.extra_config("e1", "occi-e1", {}) == {}
    user_data = base64.b64encode(b"#cloud-config\nruncmd: [touch /ok]\n").decode()
    keys = guestinfo.extra_config(
        "e1",
        "occi-e1",
        {
            "occi.compute.userdata": user_data,
            "occi.credentials.ssh.publickey": "ssh-ed25519 AAA a@b\nssh-rsa BBB c@d",
            "occi.compute.hostname": "web1",
        },
    )
    assert keys["guestinfo.userdata.encoding"] == keys["guestinfo.metadata.encoding"] == "base64"
    assert base64.b64decode(keys["guestinfo.userdata"]).startswith(b"#cloud-config\nruncmd")
    meta = json.loads(base64.b64decode(keys["guestinfo.metadata"]))
    assert meta == {
        "instance-id": "e1",
        "local-hostname": "web1",
        "public-keys": ["ssh-ed25519 AAA a@b", "ssh-rsa BBB c@d"],
    }
    plain = guestinfo.extra_config("e2", "occi-e2", {"occi.compute.userdata": "not base64!"})
    assert base64.b64decode(plain["guestinfo.userdata"]) == b"not base64!"
    only_key = guestinfo.extra_config("e3", "occi-e3", {"occi.credentials.ssh.publickey": "k"})
    assert b"ssh_authorized_keys" in base64.b64decode(only_key["guestinfo.userdata"])


def test_extra_config_records_macs_and_identity():
    class Option:
        def __init__(self, key: str, value: str):
            self.key, self.value = key, value

    extra = devices.extra_dict(
        [Option("a", "1"), Option("b", "2"), Option("a", "3"), Option("b", "")]
    )
    assert extra == {"a": "3"}  # the last value wins, an empty one removes the key
    records = devices.link_records(
        {"occi.link.l1": devices.record("disk", "vdb", file="[ds] occi/occi-s.vmdk"), "x": "y"}
    )
    assert records == {"l1": {"k": "disk", "dev": "vdb", "file": "[ds] occi/occi-s.vmdk"}}
    for link in ("l1", "l2", "a-much-longer-link-id"):
        mac = devices.vmware_mac(link)
        assert mac == devices.vmware_mac(link) and mac.startswith("00:50:56:")
        assert int(mac.split(":")[3], 16) <= 0x3F  # VMware's manual range
    assert devices.is_volume("[ds] occi/occi-s.vmdk")
    assert not devices.is_volume("[ds] occi-c/occi-c.vmdk")
    uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    assert instance_uuid(uid) == uid
    assert instance_uuid("c-1") == instance_uuid("c-1") != instance_uuid("c-2")


def test_template_terms():
    assert catalog.images(["Debian 12 (cloud)", "tiny-linux", "???"]) == {
        "Debian-12-cloud": "Debian 12 (cloud)",
        "tiny-linux": "tiny-linux",
    }
    assert catalog.free_term("golden", ["golden", "golden-2"]) == "golden-3"
    assert catalog.free_term("new one", []) == "new-one"
