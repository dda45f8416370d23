"""The helpers every backend shares (backends/common.py): the names and addresses they promise
stay what they were when each backend kept its own copy (a retried job, or a server upgraded
under running guests, must find the same objects and MACs)."""

from __future__ import annotations

from itertools import islice

from backends import common
from backends.libvirt import mac_for as libvirt_mac
from backends.simulator import platform_name as simulator_name
from occi import infrastructure as infra
from occi.model import Resource


def test_platform_names_and_volume_names():
    e = Resource(kind=infra.COMPUTE.id, id="abc")
    assert common.platform_name(e) == simulator_name(e) == "occi-abc"
    assert common.name_at("/compute/abc/") == "occi-abc"
    assert common.name_at(None) is None and common.name_at("/") is None
    assert common.root_volume("occi-abc") == "occi-abc-root.qcow2"
    assert common.seed_volume("occi-abc") == "occi-abc-seed.iso"
    assert common.storage_volume("occi-abc") == "occi-abc.qcow2"


def test_macs_keep_each_backends_range_and_values():
    assert common.mac_for("link-1") == "02:8e:9f:a2:24:f4"  # the simulator's
    assert libvirt_mac("link-1") == "52:54:00:8e:9f:a2"
    assert common.mac_for("link-1", common.QEMU_MAC_PREFIX) == libvirt_mac("link-1")
    assert common.mac_for("link-2") != common.mac_for("link-1")


def test_device_names():
    assert list(islice(common.disk_names(), 27))[-3:] == ["vdz", "vdaa", "vdab"]
    assert common.next_free(common.nic_names(), ["eth0", "eth2"]) == "eth1"
    assert common.next_free(common.disk_names(), ["vdb"]) == "vdc"


def test_templates():
    assert common.clean_term(" My image! ") == "My-image"
    assert common.clean_term("!!!") == ""
    image = common.os_tpl("http://x.example/os_tpl#", "deb", "Debian")
    assert image.depends == (infra.OS_TPL.id,) and image.location == "/mixin/os_tpl/deb/"
    size = common.resource_tpl("http://x.example/resource_tpl#", "big", "Big", 8, 32.0, 100.0)
    assert size.attributes["occi.compute.cores"].default == 8
    assert size.attributes["occi.compute.memory"].default == 32.0
    assert size.attributes["occi.compute.ephemeral_storage.size"].default == 100.0
    assert (
        "occi.compute.ephemeral_storage.size"
        not in common.resource_tpl(
            "http://x.example/resource_tpl#", "small", "Small", 1, 1.0
        ).attributes
    )
