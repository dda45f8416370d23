"""libvirt XML documents: domains, devices, volumes, pools and networks, built and read back.

Pure functions over xml.etree; no libvirt calls. The backend keeps what OCCI needs and libvirt
has no field for (the os_tpl, links by id, an operation under way) in the domain's <metadata>
under METADATA_NS, so every server process and worker sees it.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

METADATA_NS = "http://occi.libvirt.local/metadata/1"
METADATA_KEY = "occi"
ARCHES = {"x64": "x86_64", "x86": "i686"}
ARCH_TO_OCCI = {v: k for k, v in ARCHES.items()}
ET.register_namespace(METADATA_KEY, METADATA_NS)


def _el(parent: ET.Element, tag: str, text: Any = None, **attrs: Any) -> ET.Element:
    e = ET.SubElement(
        parent, tag, {k.rstrip("_"): str(v) for k, v in attrs.items() if v is not None}
    )
    if text is not None:
        e.text = str(text)
    return e


def _text(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# ---------------------------------------------------------------------------- domains
@dataclass
class DiskSpec:
    pool: str
    volume: str
    dev: str
    format: str = "qcow2"
    device: str = "disk"  # disk | cdrom
    bus: str = "virtio"
    readonly: bool = False


@dataclass
class NicSpec:
    network: str
    mac: str
    model: str = "virtio"


@dataclass
class DomainSpec:
    name: str
    domain_type: str
    arch: str = "x86_64"
    cores: int = 1
    max_vcpus: int = 1
    memory_kib: int = 1 << 20
    max_memory_kib: int = 1 << 20
    title: str | None = None
    machine: str | None = None
    console_path: str | None = None
    disks: list[DiskSpec] = field(default_factory=list)
    nics: list[NicSpec] = field(default_factory=list)
    metadata: ET.Element | None = None


def disk_element(d: DiskSpec) -> ET.Element:
    disk = ET.Element("disk", {"type": "volume", "device": d.device})
    _el(disk, "driver", name="qemu", type=d.format)
    _el(disk, "source", pool=d.pool, volume=d.volume)
    _el(disk, "target", dev=d.dev, bus=d.bus)
    if d.readonly or d.device == "cdrom":
        _el(disk, "readonly")
    return disk


def nic_element(n: NicSpec) -> ET.Element:
    iface = ET.Element("interface", {"type": "network"})
    _el(iface, "mac", address=n.mac)
    _el(iface, "source", network=n.network)
    _el(iface, "model", type=n.model)
    return iface


def disk_xml(d: DiskSpec) -> str:
    return _text(disk_element(d))


def nic_xml(n: NicSpec) -> str:
    return _text(nic_element(n))


def domain_xml(spec: DomainSpec) -> str:
    root = ET.Element("domain", {"type": spec.domain_type})
    _el(root, "name", spec.name)
    if spec.title:
        _el(root, "title", " ".join(spec.title.split())[:200])
    if spec.metadata is not None:
        _el(root, "metadata").append(spec.metadata)
    _el(root, "memory", spec.max_memory_kib, unit="KiB")
    _el(root, "currentMemory", spec.memory_kib, unit="KiB")
    _el(root, "vcpu", spec.max_vcpus, placement="static", current=spec.cores)
    os_el = _el(root, "os")
    _el(os_el, "type", "hvm", arch=spec.arch, machine=spec.machine)
    _el(os_el, "boot", dev="hd")
    features = _el(root, "features")
    _el(features, "acpi")
    _el(features, "apic")
    _el(root, "clock", offset="utc")
    _el(root, "on_poweroff", "destroy")
    _el(root, "on_reboot", "restart")
    _el(root, "on_crash", "destroy")
    devices = _el(root, "devices")
    for d in spec.disks:
        devices.append(disk_element(d))
    for n in spec.nics:
        devices.append(nic_element(n))
    if spec.console_path:
        serial = _el(devices, "serial", type="file")
        _el(serial, "source", path=spec.console_path, append="on")
        _el(serial, "target", port=0)
    else:
        serial = _el(devices, "serial", type="pty")
        _el(serial, "target", port=0)
    return _text(root)


@dataclass
class DomainDevices:
    """What a domain's XML holds that OCCI reports: sizes, disks and NICs."""

    cores: int = 1
    max_vcpus: int = 1
    memory_kib: int = 0
    max_memory_kib: int = 0
    arch: str | None = None
    disks: list[dict[str, str]] = field(default_factory=list)  # dev, pool, volume, file, device
    nics: list[dict[str, str]] = field(default_factory=list)  # mac, network, dev


def _kib(e: ET.Element | None) -> int:
    if e is None or not e.text:
        return 0
    unit = (e.get("unit") or "KiB").lower()
    factor = {
        "b": 1 / 1024,
        "bytes": 1 / 1024,
        "k": 1,
        "kib": 1,
        "kb": 1000 / 1024,
        "m": 1024,
        "mib": 1024,
        "mb": 1000**2 / 1024,
        "g": 1 << 20,
        "gib": 1 << 20,
        "gb": 1000**3 / 1024,
    }.get(unit, 1)
    return int(int(e.text) * factor)


def parse_domain(xml: str) -> DomainDevices:
    root = ET.fromstring(xml)
    out = DomainDevices()
    vcpu = root.find("vcpu")
    if vcpu is not None and vcpu.text:
        out.max_vcpus = int(vcpu.text)
        out.cores = int(vcpu.get("current") or vcpu.text)
    out.max_memory_kib = _kib(root.find("memory"))
    out.memory_kib = _kib(root.find("currentMemory")) or out.max_memory_kib
    t = root.find("os/type")
    out.arch = t.get("arch") if t is not None else None
    for disk in root.findall("devices/disk"):
        src = disk.find("source")
        tgt = disk.find("target")
        out.disks.append(
            {
                "dev": tgt.get("dev", "") if tgt is not None else "",
                "device": disk.get("device", "disk"),
                "pool": src.get("pool", "") if src is not None else "",
                "volume": src.get("volume", "") if src is not None else "",
                "file": src.get("file", "") if src is not None else "",
            }
        )
    for iface in root.findall("devices/interface"):
        mac = iface.find("mac")
        src = iface.find("source")
        tgt = iface.find("target")
        out.nics.append(
            {
                "mac": (mac.get("address", "") if mac is not None else "").lower(),
                "network": src.get("network", "") if src is not None else "",
                "dev": tgt.get("dev", "") if tgt is not None else "",
            }
        )
    return out


def with_device(xml: str, device: ET.Element) -> str:
    """A domain XML with one more device (for editing the persistent config of a stopped
    domain, which every driver allows through defineXML)."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        devices = _el(root, "devices")
    devices.append(device)
    return _text(root)


def without_device(xml: str, *, disk_dev: str | None = None, mac: str | None = None) -> str | None:
    """A domain XML without the disk at `disk_dev` or the NIC with `mac`; None if absent."""
    root = ET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        return None
    for el in list(devices):
        if disk_dev and el.tag == "disk":
            tgt = el.find("target")
            if tgt is not None and tgt.get("dev") == disk_dev:
                devices.remove(el)
                return _text(root)
        if mac and el.tag == "interface":
            m = el.find("mac")
            if m is not None and m.get("address", "").lower() == mac.lower():
                devices.remove(el)
                return _text(root)
    return None


# ---------------------------------------------------------------------------- metadata
@dataclass
class Metadata:
    """The OCCI bookkeeping kept in a domain's <metadata>."""

    entity: str = ""
    os_tpl: str = ""
    hostname: str = ""
    pending: dict[str, str] = field(default_factory=dict)  # op, method, since, ...
    links: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # link id -> kind, dev, mac, target
    deferred_save: dict[str, str] = field(default_factory=dict)  # term
    last: dict[str, str] = field(default_factory=dict)  # how the last stop ended: message, reasons

    def element(self) -> ET.Element:
        root = ET.Element(f"{{{METADATA_NS}}}instance")
        ns = f"{{{METADATA_NS}}}"
        root.set("entity", self.entity)
        if self.os_tpl:
            root.set("os_tpl", self.os_tpl)
        if self.hostname:
            root.set("hostname", self.hostname)
        if self.pending:
            ET.SubElement(root, ns + "pending", dict(self.pending))
        if self.deferred_save:
            ET.SubElement(root, ns + "save", dict(self.deferred_save))
        if self.last:
            ET.SubElement(root, ns + "last", dict(self.last))
        for link_id, info in sorted(self.links.items()):
            ET.SubElement(root, ns + "link", {"id": link_id, **info})
        return root

    def xml(self) -> str:
        """The element as setMetadata wants it (the namespace is given separately)."""
        root = ET.Element("instance")
        src = self.element()
        root.attrib.update(src.attrib)
        for child in src:
            ET.SubElement(root, _local(child.tag), dict(child.attrib))
        return _text(root)

    @classmethod
    def parse(cls, xml: str | None) -> Metadata:
        if not xml:
            return cls()
        root = ET.fromstring(xml)
        if _local(root.tag) == "domain":  # a whole domain document
            found = None
            for el in root.iter():
                if _local(el.tag) == "instance" and el.tag.startswith(f"{{{METADATA_NS}}}"):
                    found = el
                    break
            if found is None:
                return cls()
            root = found
        md = cls(
            entity=root.get("entity", ""),
            os_tpl=root.get("os_tpl", ""),
            hostname=root.get("hostname", ""),
        )
        for child in root:
            tag = _local(child.tag)
            if tag == "pending":
                md.pending = dict(child.attrib)
            elif tag == "save":
                md.deferred_save = dict(child.attrib)
            elif tag == "last":
                md.last = dict(child.attrib)
            elif tag == "link" and child.get("id"):
                info = dict(child.attrib)
                md.links[info.pop("id")] = info
        return md


# ---------------------------------------------------------------------------- storage
def volume_xml(name: str, capacity_bytes: int, fmt: str = "qcow2") -> str:
    root = ET.Element("volume")
    _el(root, "name", name)
    _el(root, "capacity", int(capacity_bytes), unit="bytes")
    target = _el(root, "target")
    _el(target, "format", type=fmt)
    return _text(root)


def parse_volume(xml: str) -> dict[str, Any]:
    root = ET.fromstring(xml)
    fmt = root.find("target/format")
    cap = root.find("capacity")
    return {
        "name": root.findtext("name", ""),
        "format": fmt.get("type", "raw") if fmt is not None else "raw",
        "capacity": int(cap.text or 0) if cap is not None else 0,
        "path": root.findtext("target/path", ""),
    }


def pool_xml(name: str, path: str) -> str:
    root = ET.Element("pool", {"type": "dir"})
    _el(root, "name", name)
    target = _el(root, "target")
    _el(target, "path", path)
    return _text(root)


# ---------------------------------------------------------------------------- networks
@dataclass
class NetworkSpec:
    name: str
    address: str | None = None  # CIDR
    gateway: str | None = None
    dhcp: bool = True
    vlan: int | None = None


def ip_plan(address: str, gateway: str | None, dhcp: bool) -> dict[str, Any]:
    """Gateway, prefix and DHCP range for an ipnetwork mixin's values.

    The gateway defaults to the first host address; the DHCP range is every host address
    after the gateway (at most the first 1000, to keep dnsmasq's lease table small)."""
    net = ipaddress.ip_network(address, strict=False)
    if net.num_addresses < 4 and net.version == 4:
        raise ValueError(f"{address} is too small for a network with a gateway")
    hosts = net.hosts()
    first = next(iter(hosts))
    gw = ipaddress.ip_address(gateway) if gateway else first
    if gw not in net:
        raise ValueError(f"the gateway {gw} is not inside {net}")
    plan: dict[str, Any] = {
        "family": "ipv6" if net.version == 6 else "ipv4",
        "gateway": str(gw),
        "prefix": net.prefixlen,
        "network": str(net),
    }
    if dhcp:
        start = int(gw) + 1 if int(gw) + 1 < int(net.broadcast_address) else int(first)
        end = min(int(net.broadcast_address) - 1, start + 999)
        if net.version == 6:
            end = min(int(net.broadcast_address), start + 999)
        if end < start:
            raise ValueError(f"{net} has no room for DHCP addresses beside the gateway")
        plan["dhcp"] = (str(ipaddress.ip_address(start)), str(ipaddress.ip_address(end)))
    return plan


def network_xml(spec: NetworkSpec) -> str:
    """An isolated network: a bridge with no <forward>, so the host's firewall is untouched."""
    root = ET.Element("network")
    _el(root, "name", spec.name)
    _el(root, "bridge", stp="on", delay=0)
    if spec.address:
        plan = ip_plan(spec.address, spec.gateway, spec.dhcp)
        ip = _el(root, "ip", family=plan["family"], address=plan["gateway"], prefix=plan["prefix"])
        if "dhcp" in plan:
            dhcp = _el(ip, "dhcp")
            _el(dhcp, "range", start=plan["dhcp"][0], end=plan["dhcp"][1])
    return _text(root)


def parse_network(xml: str) -> dict[str, Any]:
    root = ET.fromstring(xml)
    out: dict[str, Any] = {
        "name": root.findtext("name", ""),
        "forward": root.find("forward") is not None,
    }
    ip = root.find("ip")
    if ip is not None:
        prefix = ip.get("prefix")
        if prefix is None and ip.get("netmask"):
            prefix = str(ipaddress.ip_network(f"0.0.0.0/{ip.get('netmask')}").prefixlen)
        gw = ip.get("address", "")
        net = ipaddress.ip_interface(f"{gw}/{prefix}").network if gw and prefix else None
        out["gateway"] = gw
        out["address"] = str(net) if net else None
        rng = ip.find("dhcp/range")
        out["dhcp"] = (rng.get("start"), rng.get("end")) if rng is not None else None
    bridge = root.find("bridge")
    out["bridge"] = bridge.get("name") if bridge is not None else None
    return out


def macs_in_use(devices: Iterable[Mapping[str, str]]) -> set[str]:
    return {d.get("mac", "").lower() for d in devices}
