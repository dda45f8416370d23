"""libvirt's declaration for the contract suite (see backends/contract.py), and the test-driver
helpers the libvirt tests share.

The cluster is libvirt's test driver with two hosts of different sizes. The test driver loads a
host from a description file (`test:///<absolute path>`); the files are written into the test's
directory from `host_xml`, so an installed package (which has no tests/ directory) declares
its cluster too. Such a host keeps its state per connection, and the backend keeps one
connection per host: each test's fresh backend starts with empty hosts. The backend's own
libvirt_uri is the first host, so an entity without a placement lives there.

Imported only through the entry point, whose `[libvirt]` extra names what it needs.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from backends.contract import ContractCluster, ContractHost, ContractTarget
from backends.libvirt.backend import LibvirtBackend

#: the test driver's built-in host, its pool, and the image the tests put there
TEST_URI = "test:///default"
TEST_POOL = "default-pool"
CONTRACT_IMAGE = "contract-image.qcow2"
#: the image every generated host holds in its pool (so a compute can be created on any host)
HOST_IMAGE = "host-image.qcow2"
#: generated hosts: name -> (cores, memory in MiB, third octet of its default network)
HOST_SIZES = {"lv-large": (8, 16 * 1024, 210), "lv-small": (2, 4 * 1024, 211)}


def host_xml(name: str, cores: int, memory_mb: int, pool_path: Path, octet: int) -> str:
    """A test-driver host description: `cores` CPUs at 2400 MHz, `memory_mb` MiB, the pool
    `default-pool` holding HOST_IMAGE, and a `default` network (as test:///default has)."""
    return f"""<?xml version="1.0"?>
<node>
  <cpu>
    <mhz>2400</mhz>
    <active>{cores}</active>
    <nodes>1</nodes>
    <sockets>1</sockets>
    <cores>{cores}</cores>
    <threads>1</threads>
  </cpu>
  <memory>{memory_mb * 1024}</memory>
  <pool type='dir'>
    <name>{TEST_POOL}</name>
    <uuid>{uuid.uuid4()}</uuid>
    <capacity unit='bytes'>107374182400</capacity>
    <allocation unit='bytes'>67108864</allocation>
    <available unit='bytes'>107307073536</available>
    <source/>
    <target>
      <path>{pool_path}</path>
    </target>
    <volume type='file'>
      <name>{HOST_IMAGE}</name>
      <capacity unit='bytes'>67108864</capacity>
      <allocation unit='bytes'>67108864</allocation>
      <target>
        <format type='qcow2'/>
      </target>
    </volume>
  </pool>
  <network>
    <name>default</name>
    <uuid>{uuid.uuid4()}</uuid>
    <bridge name='virbr-{name}' stp='on' delay='0'/>
    <ip address='192.168.{octet}.1' netmask='255.255.255.0'/>
  </network>
</node>
"""


def write_hosts(directory: Path) -> tuple[ContractHost, ...]:
    """Write the HOST_SIZES hosts' files into `directory`; the hosts, their URIs naming them."""
    hosts = []
    for name, (cores, memory_mb, octet) in HOST_SIZES.items():
        path = directory / f"{name}.xml"
        path.write_text(host_xml(name, cores, memory_mb, directory / name / TEST_POOL, octet))
        hosts.append(ContractHost(name, f"test://{path}", cores, memory_mb))
    return tuple(hosts)


def settings(uri: str, **extra: Any) -> dict[str, Any]:
    """Backend settings for a test-driver host (no console files: the test driver has none)."""
    return {"libvirt_uri": uri, "libvirt_pool": TEST_POOL, "libvirt_console_dir": "", **extra}


def on_test_driver(**extra: Any) -> LibvirtBackend:
    """A backend on test:///default, whose pool holds CONTRACT_IMAGE. That driver's state is
    shared by every connection of the process: callers use fresh entity ids."""
    backend = LibvirtBackend(settings(TEST_URI, **extra))
    pool = backend.volume_pool
    if CONTRACT_IMAGE not in pool.listVolumes():
        pool.createXML(
            f"<volume><name>{CONTRACT_IMAGE}</name><capacity>67108864</capacity>"
            "<target><format type='qcow2'/></target></volume>",
            0,
        )
    return backend


def make(tmp: Path) -> ContractCluster:
    hosts = write_hosts(tmp)
    return ContractCluster(LibvirtBackend(settings(hosts[0].uri)), hosts)


TARGET = ContractTarget(
    name="libvirt", make=make, description="libvirt's test driver, two hosts from files"
)
