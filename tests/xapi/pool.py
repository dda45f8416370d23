"""The pool the test xapi server starts with: two hosts of different sizes (with their metrics
and control domains), a shared SR, a pool-wide network and installable templates."""

from __future__ import annotations

from dataclasses import dataclass

from tests.xapi.power import RUNNING, Power
from tests.xapi.store import NULL, Store
from tests.xapi.vm import vm_record

GIB = 1 << 30
DOM0_MEMORY = 2 * GIB


@dataclass(frozen=True)
class HostSpec:
    name: str
    cores: int
    memory_gib: int
    mhz: int
    address: str


HOSTS = (
    HostSpec("xen-host-1", 16, 64, 2600, "192.0.2.11"),
    HostSpec("xen-host-2", 8, 32, 2200, "192.0.2.12"),
)
#: name, has PV drivers once installed (clean shutdown works), root disk size in GiB
TEMPLATES = (
    ("Debian Bookworm 12", True, 10),
    ("Ubuntu Noble Numbat 24.04", True, 10),
    ("Other install media", False, 8),
)


def disks_xml(size_gib: int) -> str:
    return (
        f'<provision><disk device="0" size="{size_gib * GIB}" sr="" bootable="true" '
        'type="system"/></provision>'
    )


def populate(store: Store, power: Power, hosts: tuple[HostSpec, ...] = HOSTS) -> None:
    with store.lock:
        sr = store.add(
            "SR",
            {
                "name_label": "NFS shared storage",
                "name_description": "",
                "type": "nfs",
                "content_type": "",
                "shared": True,
                "physical_size": 2048 * GIB,
                "physical_utilisation": 0,
                "VDIs": [],
                "PBDs": [],
                "tags": [],
                "other_config": {},
            },
        )
        host_refs = []
        for spec in hosts:
            metrics = store.add(
                "host_metrics",
                {
                    "memory_total": spec.memory_gib * GIB,
                    "memory_free": spec.memory_gib * GIB,
                    "live": True,
                    "last_updated": "20260101T00:00:00Z",
                    "other_config": {},
                },
            )
            ref = store.add(
                "host",
                {
                    "name_label": spec.name,
                    "name_description": "",
                    "hostname": spec.name,
                    "address": spec.address,
                    "enabled": True,
                    "metrics": metrics,
                    "resident_VMs": [],
                    "cpu_info": {
                        "cpu_count": str(spec.cores),
                        "socket_count": "1",
                        "vendor": "GenuineIntel",
                        "speed": f"{spec.mhz}.000",
                        "modelname": "Test CPU",
                    },
                    "API_version_major": 2,
                    "API_version_minor": 21,
                    "software_version": {"product_brand": "XCP-ng", "product_version": "8.3.0"},
                    "tags": [],
                    "other_config": {},
                },
            )
            host_refs.append(ref)
            store.add(
                "VM",
                vm_record(
                    f"Control domain on host: {spec.name}",
                    is_control_domain=True,
                    power_state=RUNNING,
                    resident_on=ref,
                    domid=0,
                    VCPUs_max=spec.cores,
                    VCPUs_at_startup=spec.cores,
                    memory_static_max=DOM0_MEMORY,
                    memory_dynamic_max=DOM0_MEMORY,
                    memory_dynamic_min=DOM0_MEMORY,
                    memory_static_min=DOM0_MEMORY,
                ),
            )
        store.add(
            "pool",
            {
                "name_label": "xapi test pool",
                "name_description": "",
                "master": host_refs[0],
                "default_SR": sr,
                "other_config": {},
            },
        )
        store.add(
            "network",
            {
                "name_label": "Pool-wide network associated with eth0",
                "name_description": "",
                "MTU": 1500,
                "bridge": "xenbr0",
                "VIFs": [],
                "PIFs": [],
                "tags": [],
                "other_config": {},
            },
        )
        for name, pv, size in TEMPLATES:
            store.add(
                "VM",
                vm_record(
                    name,
                    is_a_template=True,
                    is_default_template=True,
                    other_config={"default_template": "true", "disks": disks_xml(size)},
                    _pv_drivers=pv,
                ),
            )
        power.refresh_metrics()
        assert NULL not in host_refs
