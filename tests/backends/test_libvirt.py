"""The libvirt backend on its own: XML it writes, the state mapping table, settings, seeds, and
on the test driver (`test:///default`) idempotency, changes made outside the server, events.

The test driver's state is shared within this process: every test uses fresh entity ids.
"""

from __future__ import annotations

import shutil
import threading
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest

from backends.base import (
    LINK_HOTPLUG,
    STORAGE_RESIZE,
    InvalidTransition,
    NotFoundOnPlatform,
    PlatformError,
    Unsupported,
)
from backends.common import disk_names
from backends.libvirt import LibvirtBackend, mac_for, platform_name
from backends.libvirt import states as st
from backends.libvirt.backend import translate
from backends.libvirt.config import ConfigError, LibvirtConfig, parse_templates
from backends.libvirt.contract import TEST_POOL, TEST_URI, on_test_driver
from backends.libvirt.seed import build_iso, decode_user_data, writer
from backends.libvirt.xmldesc import (
    DiskSpec,
    DomainSpec,
    Metadata,
    NetworkSpec,
    NicSpec,
    ip_plan,
    network_xml,
    parse_domain,
)
from occi import infrastructure as infra
from occi.model import Resource


def new_id() -> str:
    return "u-" + uuid.uuid4().hex[:12]


@pytest.fixture
def backend():
    b = on_test_driver()
    yield b
    b.close()


def compute(backend: LibvirtBackend, **attributes) -> Resource:
    image = next(m.id for m in backend.provider_mixins() if infra.OS_TPL.id in m.depends)
    return Resource(
        kind=infra.COMPUTE.id,
        id=new_id(),
        mixins=[image],
        attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.25, **attributes},
    )


# ---------------------------------------------------------------------------- pure parts
def test_domain_xml_carries_sizes_disks_nics_console_and_metadata():
    md = Metadata(entity="abc", os_tpl="tiny", links={"l1": {"kind": "disk", "dev": "vdb"}})
    xml = ET.fromstring(
        __import__("backends.libvirt.xmldesc", fromlist=["x"]).domain_xml(
            DomainSpec(
                name="occi-abc",
                domain_type="qemu",
                cores=2,
                max_vcpus=4,
                memory_kib=262144,
                max_memory_kib=524288,
                title="My  VM",
                console_path="/var/log/x/occi-abc.log",
                disks=[
                    DiskSpec("p", "occi-abc-root.qcow2", "vda"),
                    DiskSpec(
                        "p", "occi-abc-seed.iso", "sda", format="raw", device="cdrom", bus="sata"
                    ),
                ],
                nics=[NicSpec("occi-net", "52:54:00:aa:bb:cc")],
                metadata=md.element(),
            )
        )
    )
    assert xml.get("type") == "qemu" and xml.findtext("name") == "occi-abc"
    assert xml.findtext("title") == "My VM"
    assert xml.find("vcpu").get("current") == "2" and xml.findtext("vcpu") == "4"
    assert xml.findtext("memory") == "524288" and xml.findtext("currentMemory") == "262144"
    assert xml.find("features/acpi") is not None  # graceful shutdown needs ACPI
    disks = xml.findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "sda"]
    assert disks[1].get("device") == "cdrom" and disks[1].find("readonly") is not None
    assert xml.find("devices/interface/mac").get("address") == "52:54:00:aa:bb:cc"
    assert xml.find("devices/serial/source").get("path") == "/var/log/x/occi-abc.log"
    parsed = parse_domain(ET.tostring(xml, encoding="unicode"))
    assert (parsed.cores, parsed.max_vcpus, parsed.memory_kib) == (2, 4, 262144)
    back = Metadata.parse(ET.tostring(xml, encoding="unicode"))
    assert back.entity == "abc" and back.os_tpl == "tiny" and back.links["l1"]["dev"] == "vdb"


@pytest.mark.parametrize(
    ("state", "reason", "managed", "occi", "words"),
    [
        (st.RUNNING, 1, False, "active", "running"),
        (st.BLOCKED, 0, False, "active", "running"),
        (st.PAUSED, 1, False, "suspended", "memory kept in RAM"),
        (st.PAUSED, 5, False, "error", "I/O error"),
        (st.SHUTDOWN, 0, False, "active", "shutting down"),
        (st.SHUTOFF, 1, False, "inactive", "shut itself down"),
        (st.SHUTOFF, 2, False, "inactive", "destroyed"),
        (st.SHUTOFF, 0, True, "suspended", "hibernated"),
        (st.SHUTOFF, 3, False, "error", "crashed"),
        (st.SHUTOFF, 6, False, "error", "failed to start"),
        (st.CRASHED, 0, False, "error", "crashed"),
        (st.PMSUSPENDED, 0, False, "suspended", "guest"),
    ],
)
def test_state_mapping_table(state, reason, managed, occi, words):
    got, message = st.describe(state, reason, managed)
    assert got == occi and words in message


def test_pending_stop_reads_as_stopping_then_stopped_then_overdue():
    pending = {"op": "stop", "method": "graceful", "since": "1000"}
    assert st.with_pending(st.RUNNING, 1, False, pending, 1010, 120) == (
        "active",
        "stopping (graceful shutdown requested)",
    )
    state, message = st.with_pending(st.RUNNING, 1, False, pending, 1500, 120)
    assert state == "active" and "still running after 500 s" in message
    assert st.with_pending(st.SHUTOFF, 1, False, pending, 1011, 120) == (
        "inactive",
        "stopped by a graceful guest shutdown",
    )


def test_isolated_network_xml_with_address_plan():
    xml = ET.fromstring(network_xml(NetworkSpec("occi-n", "10.5.0.0/24", None, True)))
    assert xml.find("forward") is None  # isolated: never NAT
    ip = xml.find("ip")
    assert (ip.get("address"), ip.get("prefix")) == ("10.5.0.1", "24")
    rng = xml.find("ip/dhcp/range")
    assert (rng.get("start"), rng.get("end")) == ("10.5.0.2", "10.5.0.254")
    static = ET.fromstring(network_xml(NetworkSpec("occi-n", "10.5.0.0/24", "10.5.0.254", False)))
    assert static.find("ip").get("address") == "10.5.0.254" and static.find("ip/dhcp") is None
    with pytest.raises(ValueError):
        ip_plan("10.5.0.0/24", "10.6.0.1", True)


def test_settings_and_templates():
    cfg = LibvirtConfig.from_settings({})
    assert (cfg.uri, cfg.domain_type, cfg.pool, cfg.image_pool) == (
        "qemu:///system",
        "kvm",
        "default",
        "default",
    )
    cfg = LibvirtConfig.from_settings(
        {
            "libvirt_uri": "qemu:///session",
            "libvirt_domain_type": "QEMU",
            "libvirt_pool": "vols",
            "libvirt_templates": "xl:8:32:100",
        }
    )
    assert cfg.domain_type == "qemu" and cfg.image_pool == "vols"
    assert parse_templates("xlarge:8:32, tiny:1:0.25")[1].memory == 0.25
    for bad in ({"libvirt_domain_type": "xen"}, {"libvirt_templates": "xl:eight:32"}):
        with pytest.raises(ConfigError):
            LibvirtConfig.from_settings(bad)
    b = LibvirtBackend(
        {"libvirt_uri": TEST_URI, "libvirt_pool": TEST_POOL, "libvirt_templates": "xlarge:8:32:100"}
    )
    xl = next(m for m in b.provider_mixins() if m.term == "xlarge")
    assert infra.RESOURCE_TPL.id in xl.depends
    assert xl.attributes["occi.compute.cores"].default == 8
    assert xl.attributes["occi.compute.ephemeral_storage.size"].default == 100
    assert {"small", "medium", "large"} <= {m.term for m in b.provider_mixins()}
    # the test driver cannot hot-plug or resize: declared, so the contract suite checks it
    assert LINK_HOTPLUG not in b.capabilities and STORAGE_RESIZE not in b.capabilities
    b.close()


def test_names_macs_and_device_ids_are_deterministic():
    e = Resource(kind=infra.COMPUTE.id, id="abc")
    assert platform_name(e) == "occi-abc"
    assert mac_for("link-1") == mac_for("link-1") != mac_for("link-2")
    assert mac_for("x").startswith("52:54:00:")
    names = disk_names()
    assert [next(names) for _ in range(3)] == ["vdb", "vdc", "vdd"]


@pytest.mark.skipif(writer() is None, reason="needs genisoimage or xorriso")
def test_cloud_init_seed_is_a_nocloud_iso():
    data = build_iso(
        "occi-x",
        "web1",
        ["ssh-ed25519 AAAA k@x"],
        decode_user_data("I2Nsb3VkLWNvbmZpZwpydW5jbWQ6IFtlY2hvXQo="),
    )
    assert data[0x8001:0x8006] == b"CD001"  # ISO 9660 primary volume descriptor
    assert b"CIDATA" in data[0x8000:0x8100].upper()
    assert b"#cloud-config\nruncmd: [echo]" in data
    assert b'"local-hostname": "web1"' in data and b"ssh-ed25519 AAAA k@x" in data
    assert decode_user_data("not base64!") == b"not base64!"


def test_libvirt_errors_translate_to_backend_faults():
    class FakeError(libvirt.libvirtError):
        def __init__(self, code: int):
            Exception.__init__(self, f"code {code}")
            self.err = (code, 0, f"message {code}", 0, "", None, None, 0, 0)

    assert isinstance(translate(FakeError(libvirt.VIR_ERR_NO_DOMAIN), "x"), NotFoundOnPlatform)
    assert isinstance(translate(FakeError(libvirt.VIR_ERR_NO_SUPPORT), "x"), Unsupported)
    assert isinstance(
        translate(FakeError(libvirt.VIR_ERR_OPERATION_INVALID), "x"), InvalidTransition
    )
    fault = translate(FakeError(libvirt.VIR_ERR_INTERNAL_ERROR), "starting occi-x")
    assert isinstance(fault, PlatformError) and "starting occi-x" in str(fault)


# ---------------------------------------------------------------------------- test driver
def test_create_is_idempotent_on_the_platform(backend):
    c = compute(backend, **{"occi.compute.architecture": "x86"})
    backend.create(c)
    backend.create(c)
    names = [d.name() for d in backend.conn.listAllDomains()]
    assert names.count(platform_name(c)) == 1
    vols = backend.volume_pool.listVolumes()
    assert vols.count(f"{platform_name(c)}-root.qcow2") == 1
    xml = ET.fromstring(backend.conn.lookupByName(platform_name(c)).XMLDesc(0))
    assert xml.find("os/type").get("arch") == "i686"
    assert xml.find("devices/disk/source").get("volume") == f"{platform_name(c)}-root.qcow2"
    backend.delete(c)
    assert f"{platform_name(c)}-root.qcow2" not in backend.volume_pool.listVolumes()


def test_changes_made_outside_the_server_are_observed(backend):
    c = compute(backend)
    backend.create(c)
    backend.action(c, "start", {})
    dom = backend.conn.lookupByName(platform_name(c))  # as `virsh` would
    dom.shutdown()  # the guest powers itself off
    seen = backend.observe(c).attributes
    assert seen["occi.compute.state"] == "inactive"
    assert "shut itself down" in seen["occi.compute.state.message"]
    dom.create()
    assert backend.observe(c).attributes["occi.compute.state"] == "active"
    dom.destroy()  # virsh destroy
    seen = backend.observe(c).attributes
    assert (
        seen["occi.compute.state"] == "inactive"
        and "destroyed" in seen["occi.compute.state.message"]
    )
    dom.setVcpusFlags(3, libvirt.VIR_DOMAIN_AFFECT_CONFIG | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
    dom.setVcpusFlags(3, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    assert backend.observe(c).attributes["occi.compute.cores"] == 3
    dom.undefine()  # virsh undefine
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(c)
    backend.delete(c)  # still fine: the volumes go


def test_graceful_stop_message_survives_later_reads(backend):
    c = compute(backend)
    backend.create(c)
    backend.action(c, "start", {})
    out = backend.action(c, "stop", {"method": "graceful"})
    assert out.attributes["occi.compute.state"] == "inactive"  # the test driver stops at once
    for _ in range(2):
        assert backend.observe(c).attributes["occi.compute.state.message"] == (
            "stopped by a graceful guest shutdown"
        )
    assert backend.action(c, "start", {}).attributes["occi.compute.state.message"] == (
        "running; booting"
    )
    backend.action(c, "stop", {"method": "poweroff"})
    backend.delete(c)


def test_live_update_beyond_the_maximum_waits_for_the_next_boot(backend):
    c = compute(backend)
    backend.create(c)
    backend.action(c, "start", {})
    out = backend.update(c, {"occi.compute.cores": 2})
    assert out.attributes["occi.compute.state"] == "active"
    assert "2 cores from the next boot" in out.attributes["occi.compute.state.message"]
    assert out.attributes["occi.compute.cores"] == 2
    backend.action(c, "stop", {"method": "poweroff"})
    backend.delete(c)


def test_deferred_save_happens_when_the_compute_stops(backend):
    c = compute(backend)
    backend.create(c)
    backend.action(c, "start", {})
    term = "deferred-" + uuid.uuid4().hex[:8]
    out = backend.action(c, "save", {"method": "deferred", "name": term})
    assert out.mixin is not None and out.mixin.term == term
    assert term not in {m.term for m in backend.provider_mixins()}
    stopped = backend.action(c, "stop", {"method": "poweroff"})
    assert f"saved as os_tpl {term}" in stopped.attributes["occi.compute.state.message"]
    assert term in {m.term for m in backend.provider_mixins()}
    backend.volume_pool.storageVolLookupByName(f"{term}.qcow2").delete(0)
    backend.delete(c)


def test_missing_pool_is_a_platform_error_not_a_crash():
    b = LibvirtBackend({"libvirt_uri": TEST_URI, "libvirt_pool": "no-such-pool"})
    c = Resource(kind=infra.STORAGE.id, id=new_id(), attributes={"occi.storage.size": 1.0})
    with pytest.raises(NotFoundOnPlatform):
        b.create(c)
    bad = LibvirtBackend({"libvirt_uri": "qemu+ssh://nobody@invalid.invalid/system"})
    assert bad.ping() is False
    b.close()


def test_lifecycle_events_reach_the_callback(backend):
    c = compute(backend)
    backend.create(c)
    seen: list[str] = []
    got = threading.Event()

    def callback(entity_id: str) -> None:
        seen.append(entity_id)
        if entity_id == c.id:
            got.set()

    assert backend.start_events(callback) is True
    try:
        other = libvirt.open(TEST_URI)
        other.lookupByName(platform_name(c)).create()  # started outside the server
        assert got.wait(5), f"no event for {c.id}; got {seen}"
        assert backend.observe(c).attributes["occi.compute.state"] == "active"
        other.close()
    finally:
        backend.stop_events()
    backend.action(c, "stop", {"method": "poweroff"})
    backend.delete(c)


@pytest.mark.skipif(shutil.which("virsh") is None, reason="virsh is installed with libvirt-clients")
def test_network_with_address_is_isolated_on_the_platform(backend):
    n = Resource(
        kind=infra.NETWORK.id,
        id=new_id(),
        mixins=[infra.IPNETWORK.id],
        attributes={"occi.network.address": "10.66.1.0/24", "occi.network.gateway": "10.66.1.1"},
    )
    backend.create(n)
    xml = ET.fromstring(backend.conn.networkLookupByName(platform_name(n)).XMLDesc(0))
    assert xml.find("forward") is None and xml.find("ip").get("address") == "10.66.1.1"
    up = backend.action(n, "up", {}).attributes
    assert up["occi.network.state"] == "active" and "10.66.1.1" in up["occi.network.state.message"]
    backend.delete(n)
    with pytest.raises(NotFoundOnPlatform):
        backend.observe(n)


def test_delete_succeeds_when_the_volume_pool_is_missing():
    """A pool that does not exist: nothing was made, so everything deletes."""
    pool = f"occi-missing-{uuid.uuid4().hex[:8]}"
    b = LibvirtBackend({"libvirt_uri": TEST_URI, "libvirt_pool": pool, "libvirt_console_dir": ""})
    try:
        c = Resource(
            kind=infra.COMPUTE.id,
            id=new_id(),
            attributes={"occi.compute.cores": 1, "occi.compute.memory": 0.25},
        )
        with pytest.raises(NotFoundOnPlatform, match=pool):
            b.create(c)  # the create fails: the entity goes to error
        for e in (
            c,
            Resource(kind=infra.STORAGE.id, id=new_id(), attributes={"occi.storage.size": 1.0}),
            Resource(kind=infra.NETWORK.id, id=new_id()),
        ):
            b.delete(e)
        with pytest.raises(NotFoundOnPlatform):
            b.observe(c)
    finally:
        b.close()
